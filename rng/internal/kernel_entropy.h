// File: rng/internal/kernel_entropy.h
//
// The kernel's RNG: seed material for every reseed, the whole output in kernel-backed
// mode, and the fallback whenever the buffered path must not be used (a signal handler
// interrupting a draw, a generation that cannot be read). getrandom(2) only, blocking
// until the kernel RNG is initialised; no fallback to anything else: if the kernel
// refuses (ENOSYS, EPERM under seccomp), the caller fails closed.
#pragma once

#include <cstddef>

namespace snapsafe::rng_internal {

// Fills all `size` bytes or returns the errno that stopped it (0 on success). On failure
// the buffer is zeroed: no partial output escapes. Async-signal-safe.
int kernel_fill(void* out, size_t size) noexcept;

}  // namespace snapsafe::rng_internal
