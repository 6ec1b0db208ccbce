// File: rng/internal/draw.h
// Not API: internal to snapsafe, installed only because rng/fill.h includes it
// (the inline fast path). It may change in any release; include rng/fill.h instead.
//
// The draw: every public API ends here. This header holds the whole fast path; draw.cc
// holds everything else (first use, refill, reseed, kernel-backed mode, re-entry).
//
// Orderings, each one load-bearing (after Linux lib/vdso/getrandom.c):
//  1. in_use is set before the buffer is touched and cleared after: a signal handler
//     that draws on this thread meanwhile sees it and is served by the kernel, so it can
//     never be handed bytes the interrupted draw also returns.
//  2. The generation is checked before any buffered byte is used: a state seeded under
//     another generation (a restored snapshot) or never seeded (first use, fork-wiped
//     page: remaining == 0) goes to the slow path, which reseeds first.
//  3. Handed-out bytes are zeroed in the buffer at once: a later memory dump or snapshot
//     cannot recover them.
//  4. The generation is read again after the copy: a snapshot taken between the check and
//     the copy leaves a clone holding bytes its twin also returns; the re-read catches it
//     and the slow path redoes the draw from a fresh seed. The state's own stamp is read
//     again too: a fork() from a signal handler that interrupted this draw stamps the
//     child's state (thread_state.cc), so the child redoes the draw instead of returning
//     the bytes its parent returns (or zeros, from a page the fork wiped). `remaining` is
//     stored from the value checked, never re-read: in such a child the page was reset
//     meanwhile, and `remaining -= size` would wrap.
// What no ordering can cover: a snapshot taken after the re-read, while the value is on
// its way back to the caller (docs/DESIGN.md, threat model).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>

#include "genid/generation.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"

namespace snapsafe::rng_internal {

// Requests above this size are generated straight into the caller's memory.
inline constexpr size_t kMaxBufferedDraw = 1024;

// Output made by a reseed's step, before the first full refill (kBufferBytes, made when
// these are used up): a reseed costs the keystream a small draw needs, not 8 KiB.
inline constexpr size_t kFirstRefillBytes = 64;

// The slow paths (draw.cc): first use, refill, reseed, and every draw the buffer must not
// serve (kernel-backed mode, re-entry, an unknown generation, a retired source), which
// kernel_output.h serves. Each returns 0 or an errno; on error `out` is zeroed.
int draw_slow(void* out, size_t size) noexcept;                          // no state, or re-entry
int draw_slow_in_use(ThreadState* st, void* out, size_t size) noexcept;  // in_use is held

// What the fast path did: served the draw, or left it to a slow path.
enum class Fast {
  kServed,   // `out` holds the bytes; in_use released
  kNoState,  // no state, or re-entered from a signal handler: draw_slow()
  kInUse,    // the state must reseed or refill: draw_slow_in_use(), in_use held
};

// The fast path: serves `size` bytes from this thread's buffer when it may. On kInUse,
// `out` may hold bytes the slow path must not return (the caller gives the slow path
// another buffer, or lets it overwrite these). kCheckGeneration = false exists only so
// bench/ can measure what the check costs: it skips both generation reads and is never
// snapshot-safe. Always inlined: with the caller's constant size the copy and the zeroing
// become plain moves (measured: out of line, memcpy/memset calls made a u64 draw 3.5x
// slower). kReadByCall = false (the C API's fixed-size entry points): a generation read by
// a call (a source with no mapped word) is left to the slow path, which reads it and serves
// the draw from the buffer as well; the fast path then calls nothing and needs no stack
// frame (measured through the shared library: six registers saved and restored per call).
template <bool kCheckGeneration, bool kReadByCall = true>
[[gnu::always_inline]] inline Fast draw_fast(void* out, size_t size) noexcept {
  ThreadState* const st = t_state;
  if (__builtin_expect(st == nullptr, 0)) return Fast::kNoState;  // first use / kernel mode
  if (__builtin_expect(st->in_use && !SNAPSAFE_TEST_FLAG(disable_signal_guard), 0)) {
    return Fast::kNoState;  // (1) re-entered from a signal handler
  }
  st->in_use = 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // One pointer, copied: the stores below cannot alias it. A null word (a source read by
  // a call) is rare; its function pointer is loaded only then.
  const uint64_t* const word = __atomic_load_n(&genid::g_reader.word, __ATOMIC_RELAXED);
  if (!kReadByCall && kCheckGeneration && __builtin_expect(word == nullptr, 0)) {
    return Fast::kInUse;  // the slow path reads the generation (in_use held)
  }
  const genid::Generation generation = !kCheckGeneration ? st->generation
                                       : __builtin_expect(word != nullptr, 1)
                                           ? __atomic_load_n(word, __ATOMIC_ACQUIRE)
                                           : genid::read_generation();
  const uint32_t remaining = st->remaining;  // one load: the store below never re-reads it
  if (__builtin_expect(
          generation == st->generation && size <= remaining && size <= kMaxBufferedDraw,
          1)) {  // (2)
    SNAPSAFE_TEST_HOOK(after_check);
    uint8_t* const bytes = st->buffer + (kBufferBytes - remaining);
    std::memcpy(out, bytes, size);
    SNAPSAFE_TEST_HOOK(after_copy);
    std::memset(bytes, 0, size);  // (3)
    st->remaining = remaining - static_cast<uint32_t>(size);
    std::atomic_thread_fence(std::memory_order_acquire);  // the copy is done before (4)
    const genid::Generation again = !kCheckGeneration ? generation
                                    : __builtin_expect(word != nullptr, 1)
                                        ? __atomic_load_n(word, __ATOMIC_ACQUIRE)
                                        : genid::read_generation();
    if (__builtin_expect(again == generation && st->generation == generation, 1) ||
        SNAPSAFE_TEST_FLAG(disable_recheck)) {
      std::atomic_signal_fence(std::memory_order_seq_cst);  // (4)
      st->in_use = 0;
      return Fast::kServed;
    }
  }
  return Fast::kInUse;
}

// Fills `size` bytes of `out`; 0 on success, else an errno and `out` zeroed (fail closed).
template <bool kCheckGeneration>
[[gnu::always_inline]] inline int draw_with(void* out, size_t size) noexcept {
  if (size == 0) return 0;  // `out` may be null then (folded away for constant sizes)
  const Fast fast = draw_fast<kCheckGeneration>(out, size);
  if (__builtin_expect(fast == Fast::kServed, 1)) return 0;
  return fast == Fast::kNoState ? draw_slow(out, size) : draw_slow_in_use(t_state, out, size);
}

// The draw every public API uses.
[[gnu::always_inline]] inline int draw(void* out, size_t size) noexcept {
  return draw_with<true>(out, size);
}

// One value of type T (an integer): on the fast path it never touches memory outside the
// state (the slow path writes a separate variable, so the value stays in a register).
// 0 on success, else an errno and `*value` zero.
template <typename T>
[[gnu::always_inline]] inline int draw_value(T* value) noexcept {
  T fast_value;
  const Fast fast = draw_fast<true>(&fast_value, sizeof fast_value);
  if (__builtin_expect(fast == Fast::kServed, 1)) {
    *value = fast_value;
    return 0;
  }
  T slow_value;
  const int error = fast == Fast::kNoState
                        ? draw_slow(&slow_value, sizeof slow_value)
                        : draw_slow_in_use(t_state, &slow_value, sizeof slow_value);
  *value = slow_value;
  return error;
}

}  // namespace snapsafe::rng_internal
