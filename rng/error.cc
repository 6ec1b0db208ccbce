#include "rng/error.h"

#include <cstring>

namespace snapsafe {

entropy_error::entropy_error(int code)
    : std::runtime_error(std::string("snapsafe: no entropy from the kernel (getrandom: ") +
                         std::strerror(code) + "); no output was produced"),
      code_(code) {}

namespace rng_internal {
void throw_entropy_error(int code) { throw entropy_error(code); }
}  // namespace rng_internal

}  // namespace snapsafe
