// Storage for the test-only hooks (compiled into //rng:snapsafe_testing only).
#include "rng/internal/test_hooks.h"

namespace snapsafe::rng_internal {
TestHooks g_test_hooks;
}  // namespace snapsafe::rng_internal
