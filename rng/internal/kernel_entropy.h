// File: rng/internal/kernel_entropy.h
//
// The kernel's RNG: seed material for every reseed, the whole output in kernel-backed
// mode, and the fallback whenever the buffered path must not be used (a signal handler
// interrupting a draw, a generation that cannot be read). getrandom(2) only, blocking
// until the kernel RNG is initialised; no fallback to anything else: if the kernel
// refuses (ENOSYS, EPERM under seccomp), the caller fails closed. The vDSO getrandom
// (vdso_getrandom.h) is the same RNG, faster, and fails the same way.
//
// kernel_fill is also defined here in line (kernel_fill_inline) for the reseed, which
// calls it with as few frames pending as it can: on this project's hosts the return-stack
// predictor comes back from a system call empty (their kernels report the SRSO "Safe RET"
// and RSB-filling mitigations), so every frame a system call returns through afterwards
// costs a mispredicted return (measured on AMD EPYC: getrandom(32) 441 ns called at depth
// 0, 491 at depth 4, 531 at depth 8).
#pragma once

#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "rng/internal/test_hooks.h"

namespace snapsafe::rng_internal {

// One getrandom(2) system call with flags 0: the count of bytes, or -errno. The raw call,
// never glibc's getrandom(), which is a cancellation point (a pthread_cancel unwinding
// through a noexcept draw would terminate the process); on x86-64 the instruction itself,
// so no wrapper's frame is pending across it.
[[gnu::always_inline]] inline long getrandom_syscall(void* out, size_t size) noexcept {
#if defined(__x86_64__)
  long result;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "0"(long{SYS_getrandom}), "D"(out), "S"(size), "d"(0L)
                   : "rcx", "r11", "memory");
  return result;
#else
  const long n = syscall(SYS_getrandom, out, size, 0);
  return n < 0 ? -errno : n;
#endif
}

// kernel_fill() (below) in line: fills all `size` bytes or returns the errno that stopped
// it, the buffer zeroed. (Test hooks: cloned_kernel answers the same bytes on every read;
// cancellable_getrandom takes glibc's wrapper, the negative control of the raw call.)
[[gnu::always_inline]] inline int kernel_fill_inline(void* out, size_t size) noexcept {
  if (SNAPSAFE_TEST_FLAG(cloned_kernel)) {  // a clone's kernel that was not told it is one
    std::memset(out, 0x5a, size);
    return 0;
  }
  auto* p = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < size) {
    long n;
    if (SNAPSAFE_TEST_FLAG(cancellable_getrandom)) {
      n = getrandom(p + done, size - done, 0);
      if (n < 0) n = -errno;
    } else {
      n = getrandom_syscall(p + done, size - done);
    }
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n != -EINTR) {
      std::memset(out, 0, size);
      return n < 0 ? static_cast<int>(-n) : EIO;
    }
  }
  return 0;
}

// Fills all `size` bytes or returns the errno that stopped it (0 on success). On failure
// the buffer is zeroed: no partial output escapes. Async-signal-safe.
int kernel_fill(void* out, size_t size) noexcept;

// The same through the vDSO getrandom where the kernel has it (~30 ns against ~500 ns
// a call here), else the system call. Not async-signal-safe on a thread's first call.
int kernel_fill_fast(void* out, size_t size) noexcept;

}  // namespace snapsafe::rng_internal
