// File: rng/internal/thread_state.h
// Not API: internal to snapsafe, installed only because rng/internal/draw.h includes it
// (the inline fast path). It may change in any release; include rng/fill.h instead.
//
// The per-thread generator state, and its memory.
//
// Each thread that draws owns one ThreadState in its own anonymous mapping with
//  - MADV_WIPEONFORK: a fork() child sees the page all zero, i.e. "never seeded", so it
//    reseeds before its first draw (fork detection without getpid() on the draw path);
//  - MADV_DONTDUMP: keys and unread output never land in a core dump.
// If the kernel refuses MADV_WIPEONFORK (older than 4.14), no state is created and the
// thread is served from the kernel instead: never buffered without fork detection.
//
// Page flags alone are not enough: CRIU restores every byte of this page but not its
// MADV_WIPEONFORK (measured: after a restore, parent and fork child printed the same
// values). So the flag is applied again at the first reseed after a generation change when
// a counter file is watched (thread_state_reflag: a restore's hook bumps it), and a
// pthread_atfork child handler also wipes, in the child, every state of the process: the
// forking thread's is reset to "never seeded", and every other thread's (no such thread
// exists in the child, but its key and unread output would) is zeroized and unmapped with
// its cipher context. A registry of live states makes them reachable. Not covered: children
// made without fork()'s handlers (_Fork(), raw clone()) of a restored process before the
// forking thread's first reseed after the restore; its state is then stamped with the old
// generation, so parent and child each reseed, from the kernel, before they draw
// (docs/DESIGN.md).
//
// The state is zeroized when the thread exits, and kept (under evp with its parked cipher
// context) for the next new thread (up to 64; beyond, unmapped and freed): a first draw
// costs no mapping, no madvise calls, no page faults and no new cipher context. The exiting thread
// also seeds the state afresh for its next owner (seed_for_next_thread below: a new
// key from the kernel, stamped with the current generation), so the first draw on a new
// thread is served like any other, without a reseed (measured: p50 ~9 us -> ~1.5 us),
// and a generation change meanwhile makes it reseed as usual. Nothing of the previous
// owner survives: its key and unread output are wiped before the new key is made. A
// pooled state is seeded, or wiped but for the generation its page flag was applied
// under; the fork child wipes the seeded ones, like live states. The key, and with the
// in-page keystream its key schedule, live in the state page (state_keystream.h); only under
// the evp variant is there an OpenSSL cipher context, in ordinary heap, which holds no live
// key between steps (keystream.h: it is parked on a public all-zero key).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "genid/generation.h"
#include "rng/internal/aes_ctr_in_page.h"

namespace snapsafe::rng_internal {

// The mapping: three pages. The first two hold the header and the buffer; the third the
// in-page keystream's key schedule and counter (state_keystream.h), the rest of it unused.
inline constexpr size_t kStateBytes = 12288;
inline constexpr size_t kHeaderBytes = 64;                   // one cache line for the hot fields
inline constexpr size_t kBufferBytes = 8192 - kHeaderBytes;  // 8128: the KAT vectors' size

// A generation no source ever reports (like kGenerationUnknown, it is reserved): a state
// stamped with it fails the next check and reseeds.
inline constexpr genid::Generation kGenerationNever = ~genid::Generation{0} - 1;

// The fields stored on every draw (remaining, in_use) sit at page offsets 16..23, away
// from the generation words of the mapped sources (SysGenID at offset 0, the counter file
// at 8): a load whose page offset matches a pending store's waits on it (4K aliasing).
struct ThreadState {
  genid::Generation generation;  // generation the current key was seeded under
  uint32_t seeded;               // 0 on first use and after a fork wiped the page
  uint32_t unused;
  uint32_t remaining;                 // unread bytes at the end of `buffer`; 0 = refill/reseed
  volatile uint32_t in_use;           // nonzero while a draw runs on this thread
  uint8_t key[32];                    // the next step's key (keystream.h)
  genid::Generation flag_generation;  // generation MADV_WIPEONFORK was last applied under
                                      // (thread_state_reflag); kept when the state is pooled
  alignas(64) uint8_t buffer[kBufferBytes];  // keystream; consumed bytes are zero
  // The in-page keystream (aes_ctr_in_page.h; unused under the evp variant): the key's 15
  // round keys during a step, zero between steps; and the big-endian counter block, which
  // runs on across keys since the last reseed (public: no key can be derived from it).
  alignas(64) AesSchedule schedule;
  uint8_t counter[kAesBlockBytes];
  uint8_t unused_page[kStateBytes - 8192 - sizeof(AesSchedule) - kAesBlockBytes];
};
static_assert(sizeof(ThreadState) == kStateBytes);
static_assert(offsetof(ThreadState, schedule) == 8192);

// This thread's state, or nullptr before its first buffered draw (and always in
// kernel-backed mode). Read by the inline fast path; initial-exec TLS: one load.
extern constinit thread_local ThreadState* t_state __attribute__((tls_model("initial-exec")));

// Applies MADV_WIPEONFORK to `st` again if the generation moved since it was last applied:
// a CRIU restore (which bumps the generation) drops the flag from every page, and fork()'s
// handlers alone do not cover children made without them (_Fork(), raw clone()). One
// madvise call per state per generation change (~0.4-0.9 us), at its reseed; draw.cc
// calls it only when a counter file is watched (restores are announced there; a VM
// snapshot keeps page flags).
void thread_state_reflag(ThreadState* st, genid::Generation generation) noexcept;

// Creates this thread's state and its cipher context slot; nullptr if memory or
// MADV_WIPEONFORK is unavailable, or the thread is exiting. Not async-signal-safe.
ThreadState* thread_state_create() noexcept;

// Wipes and unmaps every pooled state (and frees its cipher context). For tests that
// select another generation source: a state pooled under the old one is stamped with that
// source's generation, which the new one may reach too.
void thread_state_pool_clear() noexcept;

// This thread's cipher context slot (ordinary TLS; see top): nullptr unless the keystream
// is the evp variant's (state_keystream.h).
EVP_CIPHER_CTX*& thread_cipher_context() noexcept;

// Whether this thread is inside thread_state_create() (a signal handler must not
// re-enter it).
bool thread_state_creating() noexcept;

// Whether the kernel refused MADV_WIPEONFORK: then no thread state is ever created and
// every draw is served from the kernel (status() reports it as not buffered).
bool thread_states_unavailable() noexcept;
#ifdef SNAPSAFE_TESTING
void reset_wipe_on_fork_refusal_for_testing() noexcept;  // test-only: forget a refusal
#endif

// Number of live thread states in the process (for tests and status).
uint64_t live_thread_states() noexcept;

// Seeds an exiting thread's state for the thread that will take it from the pool (above;
// defined in draw.cc, which owns the reseed): a fresh key from the kernel for the current
// generation, stamped with it, and a first short refill, exactly as a reseed (acknowledged
// too: a process whose draws all come from pooled states has adapted, and must say so). The
// new owner's first draw then checks the generation like any draw, and reseeds if it moved
// meanwhile. False (and `st` forgotten) when it cannot: the new owner reseeds then. Called
// with `st` wiped and owned by no thread.
bool seed_for_next_thread(ThreadState* st, EVP_CIPHER_CTX*& ctx) noexcept;

// Process-wide counters (draw.cc), for status and tests: reseeds of live threads'
// states, and states seeded at thread exit for the next thread.
uint64_t reseed_count() noexcept;
uint64_t pool_seed_count() noexcept;

}  // namespace snapsafe::rng_internal
