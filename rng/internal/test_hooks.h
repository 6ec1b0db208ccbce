// File: rng/internal/test_hooks.h
// Not API: internal to snapsafe, installed only because rng/internal/draw.h includes it
// (the inline fast path). It may change in any release; include rng/fill.h instead.
//
// Test-only hooks into the draw path. They exist only in the `//rng:snapsafe_testing`
// build (SNAPSAFE_TESTING defined); in the production library every hook below is a
// compile-time no-op, so the fast path carries no trace of them.
//
// Each hook lets a test either provoke a hazard at an exact point (a snapshot between the
// generation check and the copy, a signal in the middle of a draw) or switch one guard
// off, for the negative controls that prove the hazard is real without the guard.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapsafe::rng_internal {

#ifdef SNAPSAFE_TESTING
struct TestHooks {
  void (*after_check)() = nullptr;         // between the generation check and the copy-out
  void (*after_copy)() = nullptr;          // after the copy-out, before the bytes are consumed
  void (*after_slow_produce)() = nullptr;  // slow path: output produced, before the re-read
  void (*mid_refill)() = nullptr;  // refill: new keystream in the buffer, `remaining` not set
  void (*mid_reseed)() = nullptr;  // reseed: keyed, first output made, not yet marked seeded
  void (*seed_material)(const void* material, size_t size) = nullptr;  // what is hashed
  bool fail_keystream = false;         // OpenSSL "fails" the next keystream step
  bool cancellable_getrandom = false;  // negative control: glibc's getrandom() wrapper,
                                       // a cancellation point, instead of the raw call
  bool disable_recheck = false;        // negative control: no generation re-read after copy
  bool disable_signal_guard = false;   // negative control: no in_use re-entry guard
  bool disable_wipe_on_fork = false;   // new thread states without MADV_WIPEONFORK
  bool refuse_wipe_on_fork = false;    // the kernel "refuses" MADV_WIPEONFORK (pre-4.14)
  bool disable_state_pool = false;     // exited threads' states (thread and vDSO) are
                                       // unmapped, not reused, and new threads map their own
  bool pool_without_wipe = false;      // negative control: a pooled state (thread or vDSO)
                                       // keeps its bytes
  bool disable_reflag = false;         // negative control: MADV_WIPEONFORK is never applied again
                                       // after a generation change (a restore dropped it)
  bool disable_pool_seeding = false;   // exiting threads pool their states wiped, unseeded
  bool disable_pool_wipe_in_child = false;     // negative control: the fork child keeps the
                                               // pooled (seeded) states as they were
  const uint8_t* injected_seed = nullptr;      // 32 bytes: derive_seed returns exactly these
  bool disable_hardware_rng = false;           // the CPU "has no" RDRAND
  uint64_t (*hardware_rng_value)() = nullptr;  // replaces each RDRAND value (health tests)
  bool cloned_kernel = false;  // every kernel RNG read returns the same bytes (a VM clone
                               // whose kernel was not told, or a replayed vDSO state)
  bool frozen_clocks = false;  // derive_seed's clock word is 0 (two clones reseeding at
                               // "the same instant": only the generation can tell them apart)
  bool unmasked_vdso_output = false;        // negative control: kernel-backed output from the
                                            // vDSO alone, as before the restore fixes
  bool keep_key_in_cipher = false;          // negative control: the cipher context keeps the
                                            // next key between steps (heap, not wiped on fork)
  bool keep_stack_secrets = false;          // negative control: the secrets the library keeps on
                                            // its own stack frames are left there (not wiped)
  bool disable_fork_handler = false;        // negative control: no pthread_atfork wipe
  bool disable_teardown_guard = false;      // negative control: the vDSO state is unmapped at
                                            // thread exit but still used afterwards
  bool disable_state_exit_guard = false;    // negative control: a draw after the thread's
                                            // state was released at exit maps a new one
  bool disable_exit_guard = false;          // negative control: OpenSSL used after its atexit
                                            // cleanup (draws from exit handlers)
  void (*inside_setup)() = nullptr;         // inside a one-time initialization (the RDRAND probe's
                                            // static guard), for a fork to land in
  bool disable_setup_fork_lock = false;     // negative control: fork() does not wait for the
                                            // one-time setup (rng/internal/setup.h)
  void (*after_kernel_output)() = nullptr;  // kernel_output: served, before the fork re-check
  bool disable_fork_recheck = false;        // negative control: a slow-path or kernel-served draw
                                            // a fork() landed in is not redone in the child (no
                                            // re-read of the state's stamp, nor of the fork count)
  bool kernel_output_skips_setup = false;   // negative control: kernel_output() runs its
                                            // one-time probes outside the fork-safe setup
  bool status_trusts_cpuid = false;         // negative control: status() reports RDRAND by its
                                            // CPUID bit, without the health checks
};
extern TestHooks g_test_hooks;
#define SNAPSAFE_TEST_HOOK(name)                     \
  do {                                               \
    if (::snapsafe::rng_internal::g_test_hooks.name) \
      ::snapsafe::rng_internal::g_test_hooks.name(); \
  } while (0)
#define SNAPSAFE_TEST_FLAG(name) (::snapsafe::rng_internal::g_test_hooks.name)
#else
#define SNAPSAFE_TEST_HOOK(name) \
  do {                           \
  } while (0)
#define SNAPSAFE_TEST_FLAG(name) false
#endif

}  // namespace snapsafe::rng_internal
