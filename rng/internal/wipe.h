// File: rng/internal/wipe.h
//
// wipe(): zeroes memory that held a secret, as stores the compiler cannot drop. A memset
// of a local that is never read again is a dead store, and compilers remove it;
// explicit_bzero() and OPENSSL_cleanse() keep it by calling into libc or libcrypto (~5 ns
// a call here). wipe() keeps it with an empty asm statement that takes the memory's
// address and clobbers memory, as the Linux kernel's memzero_explicit() does: inline, no
// call. For the few words of a hot path (the RDRAND words of a kernel-backed draw); a
// local that lived only in registers gets a stack slot that is zeroed, which is harmless.
// tests/stack_wipe_test.cc reads the dead frames back.
#pragma once

#include <cstddef>
#include <cstring>

namespace snapsafe::rng_internal {

// Zeroes `size` bytes at `memory`; never optimised away.
inline void wipe(void* memory, size_t size) noexcept {
  std::memset(memory, 0, size);
  __asm__ __volatile__("" : : "r"(memory) : "memory");
}

}  // namespace snapsafe::rng_internal
