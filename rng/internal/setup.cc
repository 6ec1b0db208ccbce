// The one-time setup: see setup.h.
#include "rng/internal/setup.h"

#include <openssl/crypto.h>
#include <pthread.h>

#include <atomic>
#include <cstdlib>

#include "genid/select.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::rng_internal {
namespace {

pthread_mutex_t g_setup_lock = PTHREAD_MUTEX_INITIALIZER;
thread_local bool t_in_setup = false;
thread_local bool t_fork_holds_setup_lock = false;

// pthread_atfork handlers, registered when the library is loaded (so before any setup can
// begin). A check of a progress flag instead of the lock was not enough (measured: a setup
// begun between the check and the fork hung the child, 2 of 300 processes).
void setup_before_fork() {
  // A handler that interrupted the setup cannot wait for it.
  t_fork_holds_setup_lock = !t_in_setup && !SNAPSAFE_TEST_FLAG(disable_setup_fork_lock);
  if (t_fork_holds_setup_lock) pthread_mutex_lock(&g_setup_lock);
}
void setup_after_fork_in_parent() {
  if (t_fork_holds_setup_lock) pthread_mutex_unlock(&g_setup_lock);
  t_fork_holds_setup_lock = false;
}
void setup_after_fork_in_child() {
  pthread_mutex_init(&g_setup_lock, nullptr);  // fresh: the child has one thread
  t_fork_holds_setup_lock = false;
}
[[maybe_unused]] const int g_setup_fork_handlers =
    pthread_atfork(&setup_before_fork, &setup_after_fork_in_parent, &setup_after_fork_in_child);

// Runs `step` once per process, under the setup lock; `done` tells.
void once(std::atomic<bool>* done, void (*step)()) {
  if (__builtin_expect(done->load(std::memory_order_acquire), 1)) return;
  pthread_mutex_lock(&g_setup_lock);
  if (!done->load(std::memory_order_relaxed)) {
    t_in_setup = true;
    step();
    t_in_setup = false;
    done->store(true, std::memory_order_release);
  }
  pthread_mutex_unlock(&g_setup_lock);
}

std::atomic<bool> g_library_set_up{false};

void set_up_library() {
  (void)genid::init();
  (void)vdso_getrandom_available();
  (void)hardware_rng_present();
  // The keystream variant (CPUID, SNAPSAFE_KEYSTREAM): decided here, not first in a signal
  // handler's kernel-backed draw (its keyed mask asks for it).
  (void)aes_ctr_variant();
}

std::atomic<bool> g_openssl_set_up{false};
std::atomic<bool> g_openssl_exiting{false};
OpensslObjects g_objects;

void mark_openssl_exiting() { g_openssl_exiting.store(true, std::memory_order_relaxed); }

// OpenSSL first (its atexit), then our exit handler: ours runs first at exit. Either
// failing leaves no way to tell when OpenSSL goes away: it is then never used (the kernel
// serves), and nothing is fetched (a fetch after OpenSSL's cleanup crashes).
void set_up_openssl() {
  if (OPENSSL_init_crypto(0, nullptr) != 1 || atexit(&mark_openssl_exiting) != 0) {
    mark_openssl_exiting();
    return;
  }
  g_objects.aes_256_ctr = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
}

}  // namespace

void library_setup() noexcept { once(&g_library_set_up, &set_up_library); }

const OpensslObjects& openssl_objects() noexcept {
  once(&g_openssl_set_up, &set_up_openssl);
  return g_objects;
}

bool openssl_exiting() noexcept {
  (void)openssl_objects();
  return g_openssl_exiting.load(std::memory_order_relaxed) &&
         !SNAPSAFE_TEST_FLAG(disable_exit_guard);
}

}  // namespace snapsafe::rng_internal
