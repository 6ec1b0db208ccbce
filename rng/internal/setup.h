// File: rng/internal/setup.h
//
// The library's one-time setup, made safe against fork().
//
// Everything a draw initializes once per process (the source selection, the vDSO lookup,
// the RDRAND probe, OpenSSL's initialization and the objects fetched from it) used to be
// left to C++ static guards, std::call_once and OpenSSL's own once-locks. A fork() while
// another thread was in the middle of one of them left the child with the half-done
// guard, and the child's first draw waited on it forever (found by tests/soak; then
// measured with forks during other threads' first draws: 2-4 of 300 processes had a child
// hang, in __cxa_guard_acquire under the AES fetch, hardware_rng_present(), or our own
// progress flag). Now each step runs under one lock that pthread_atfork handlers,
// registered when the library is loaded, take around every fork(): a fork waits for a
// setup in progress, and none begins while a fork runs, so a child never inherits a
// half-done one (0 of 600 processes since). Not covered: a fork from a signal handler that
// interrupted the setup on its own thread (it cannot wait for itself), and one-time state
// reached outside a draw first (status(), the genid API) while another thread forks.
#pragma once

#include <openssl/evp.h>

namespace snapsafe::rng_internal {

// The source selection, the vDSO lookup and the RDRAND probe: done before a thread's first
// draw (draw_slow). No OpenSSL.
void library_setup() noexcept;

// The OpenSSL objects every draw uses, fetched once per process (a fetch per use costs
// ~0.2-0.5 us), with OpenSSL's initialization and the exit guard below: done at the first
// use of OpenSSL. Null members: OpenSSL is unusable (or the process was already exiting).
struct OpensslObjects {
  const EVP_CIPHER* aes_256_ctr = nullptr;
};
const OpensslObjects& openssl_objects() noexcept;

// Whether OpenSSL must no longer be used because the process is exiting. OpenSSL registers
// its cleanup (OPENSSL_cleanup) with atexit() when it initializes; a draw from an exit
// handler or static destructor registered before that (an object built before the first
// draw) ran after it and crashed in EVP (measured: SIGSEGV in EVP_CIPHER_fetch). The setup
// initializes OpenSSL and registers an exit handler of ours after OpenSSL's, so it runs
// before it (exit handlers run in reverse order); from then on this is true, and the draw
// is served by the kernel with the hardware RNG mixed in by words, no OpenSSL call:
// - the slow path buffers nothing more (reseed, refill and bulk steps need OpenSSL);
// - kernel-served output is masked word by word (no keystream mask).
// Not covered: an application that calls OPENSSL_cleanup() itself, and threads still
// drawing while exit() runs (a race any library's exit handlers have).
// Also true if OpenSSL cannot be initialized. Not async-signal-safe on the first call (it
// runs the setup).
bool openssl_exiting() noexcept;

}  // namespace snapsafe::rng_internal
