#include "rng/internal/kernel_entropy.h"

#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::rng_internal {

namespace {
// Test-only: the kernel RNG of a clone that was not told it is one (the same bytes on
// every read). Returns true when it answered.
bool cloned_kernel_fill([[maybe_unused]] void* out, [[maybe_unused]] size_t size) {
  if (!SNAPSAFE_TEST_FLAG(cloned_kernel)) return false;
  std::memset(out, 0x5a, size);
  return true;
}
}  // namespace

int kernel_fill(void* out, size_t size) noexcept {
  if (cloned_kernel_fill(out, size)) return 0;
  auto* p = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < size) {
    // The raw system call: glibc's getrandom() is a cancellation point, and a
    // pthread_cancel unwinding through this noexcept draw would terminate the process.
    const long n = SNAPSAFE_TEST_FLAG(cancellable_getrandom)
                       ? getrandom(p + done, size - done, 0)
                       : syscall(SYS_getrandom, p + done, size - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      const int error = n < 0 ? errno : EIO;
      std::memset(out, 0, size);
      return error;
    }
  }
  return 0;
}

int kernel_fill_fast(void* out, size_t size) noexcept {
  if (cloned_kernel_fill(out, size)) return 0;
  if (!vdso_getrandom_available()) return kernel_fill(out, size);
  const int error = vdso_getrandom(out, size);
  return error == ENOMEM ? kernel_fill(out, size) : error;  // no state mapping: syscall
}

}  // namespace snapsafe::rng_internal
