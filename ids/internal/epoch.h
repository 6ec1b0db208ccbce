// File: ids/internal/epoch.h  (not API: internal to ids/)
//
// Which copy of the process memory a piece of ID state belongs to: the fork token and the
// Epoch (generation, fork token) that uuid.cc and nonce.cc stamp their state with, and the
// ID code's test-only seams. Included by ids/*.cc and tests only; no public header
// includes it.
#pragma once

#include <cstdint>

#include "genid/generation.h"

namespace snapsafe {

#ifdef SNAPSAFE_TESTING
// Test-only seams (compiled into //rng:snapsafe_testing only).
namespace ids_testing {
struct Hooks {
  uint64_t (*unix_ms)() = nullptr;  // replaces the v7 clock (e.g. a frozen one)
  bool ignore_generation = false;   // negative control: states ignore generation changes
  bool ignore_fork = false;         // states ignore the fork token (a restore, simulated
                                    // by fork(), does not look like a fork)
};
extern Hooks g_hooks;
// The calling thread's v7 state: the timestamp and counter of its last UUID.
uint64_t v7_last_ms_for_testing();
uint32_t v7_counter_for_testing();
}  // namespace ids_testing
#endif

// Internal to uuid.cc and nonce.cc (not API): which copy of the process memory a piece
// of ID state belongs to.
namespace ids_internal {

// A number that differs in every fork child from any value the parent ever had: a word
// in a MADV_WIPEONFORK page (the kernel zeroes it in the child; a pthread_atfork child
// handler also zeroes it, for pages that lost the flag in a CRIU restore) is refilled
// from a process-wide counter on the next call. Where the kernel refuses
// MADV_WIPEONFORK (before Linux 4.14) it is the process ID (one getpid() per call).
// Never 0. One load on the fast path.
extern uint64_t* g_fork_word;
uint64_t fork_token_slow() noexcept;
inline uint64_t fork_token() noexcept {
  const uint64_t* word = __atomic_load_n(&g_fork_word, __ATOMIC_ACQUIRE);
  if (__builtin_expect(word != nullptr, 1)) {
    const uint64_t token = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (__builtin_expect(token != 0, 1)) return token;
  }
  return fork_token_slow();
}

// The copy of the process a state is valid for.
struct Epoch {
  genid::Generation generation;
  uint64_t fork_token;
};

// The current epoch. genid::init() must have run in this process or an ancestor (the
// generation reader is installed by it).
inline Epoch current_epoch() noexcept { return {genid::read_generation(), fork_token()}; }

// Whether a state stamped with `stamp` may go on being used in epoch `now`. A generation
// that cannot be read right now (genid::kGenerationUnknown) is no evidence of a change.
inline bool same_epoch(const Epoch& stamp, const Epoch& now) noexcept {
  bool generation_same =
      now.generation == stamp.generation || now.generation == genid::kGenerationUnknown;
  bool process_same = now.fork_token == stamp.fork_token;
#ifdef SNAPSAFE_TESTING
  generation_same |= ids_testing::g_hooks.ignore_generation;
  process_same |= ids_testing::g_hooks.ignore_fork;
#endif
  return generation_same && process_same;
}

}  // namespace ids_internal

}  // namespace snapsafe
