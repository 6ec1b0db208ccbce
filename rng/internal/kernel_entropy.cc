#include "rng/internal/kernel_entropy.h"

#include <cerrno>

#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::rng_internal {

int kernel_fill(void* out, size_t size) noexcept { return kernel_fill_inline(out, size); }

int kernel_fill_fast(void* out, size_t size) noexcept {
  if (SNAPSAFE_TEST_FLAG(cloned_kernel)) return kernel_fill(out, size);
  if (!vdso_getrandom_available()) return kernel_fill(out, size);
  const int error = vdso_getrandom(out, size);
  return error == ENOMEM ? kernel_fill(out, size) : error;  // no state mapping: syscall
}

}  // namespace snapsafe::rng_internal
