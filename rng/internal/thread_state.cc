// Per-thread state memory: see thread_state.h.
#include "rng/internal/thread_state.h"

#include <openssl/crypto.h>
#include <sys/mman.h>

#include <atomic>

#include "rng/internal/keystream.h"
#include "rng/internal/test_hooks.h"

namespace snapsafe::rng_internal {

constinit thread_local ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

std::atomic<uint64_t> g_live_states{0};
thread_local bool t_creating = false;
thread_local bool t_exited = false;

// Owns the thread's state; its destructor runs at thread exit.
struct StateOwner {
  ThreadState* state = nullptr;
  EVP_CIPHER_CTX* ctx = nullptr;
  ~StateOwner() {
    t_exited = true;
    t_state = nullptr;
    if (ctx != nullptr) keystream_free(ctx);  // frees and cleanses the key schedule
    if (state != nullptr) {
      OPENSSL_cleanse(state, sizeof *state);
      munmap(state, sizeof *state);
      g_live_states.fetch_sub(1, std::memory_order_relaxed);
    }
  }
};
thread_local StateOwner t_owner;

}  // namespace

ThreadState* thread_state_create() noexcept {
  if (t_exited) return nullptr;  // a draw from a later TLS destructor: kernel serves it
  t_creating = true;
  void* map = mmap(nullptr, sizeof(ThreadState), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ThreadState* state = nullptr;
  if (map != MAP_FAILED) {
    const bool wiped = SNAPSAFE_TEST_FLAG(disable_wipe_on_fork) ||
                       madvise(map, sizeof(ThreadState), MADV_WIPEONFORK) == 0;
    if (wiped) {
      madvise(map, sizeof(ThreadState), MADV_DONTDUMP);  // best effort
      state = static_cast<ThreadState*>(map);
      t_owner.state = state;
      g_live_states.fetch_add(1, std::memory_order_relaxed);
    } else {
      munmap(map, sizeof(ThreadState));
    }
  }
  t_state = state;
  t_creating = false;
  return state;
}

EVP_CIPHER_CTX*& thread_cipher_context() noexcept { return t_owner.ctx; }

bool thread_state_creating() noexcept { return t_creating; }

uint64_t live_thread_states() noexcept {
  return g_live_states.load(std::memory_order_relaxed);
}

}  // namespace snapsafe::rng_internal
