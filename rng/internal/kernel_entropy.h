// File: rng/internal/kernel_entropy.h
//
// The kernel's RNG: seed material for every reseed, the whole output in kernel-backed
// mode, and the fallback whenever the buffered path must not be used (a signal handler
// interrupting a draw, a generation that cannot be read). getrandom(2) only, blocking
// until the kernel RNG is initialised; no fallback to anything else: if the kernel
// refuses (ENOSYS, EPERM under seccomp), the caller fails closed. The vDSO getrandom
// (vdso_getrandom.h) is the same RNG, faster, and fails the same way.
#pragma once

#include <cstddef>

namespace snapsafe::rng_internal {

// Fills all `size` bytes or returns the errno that stopped it (0 on success). On failure
// the buffer is zeroed: no partial output escapes. Async-signal-safe.
int kernel_fill(void* out, size_t size) noexcept;

// The same through the vDSO getrandom where the kernel has it (~30 ns against ~500 ns
// a call here), else the system call. Not async-signal-safe on a thread's first call.
int kernel_fill_fast(void* out, size_t size) noexcept;

}  // namespace snapsafe::rng_internal
