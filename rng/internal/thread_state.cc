// Per-thread state memory: see thread_state.h.
#include "rng/internal/thread_state.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "genid/select.h"
#include "rng/internal/keystream.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::rng_internal {

constinit thread_local ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

std::atomic<uint64_t> g_live_states{0};
// The kernel refused MADV_WIPEONFORK once: it will again, so no thread tries any more.
std::atomic<bool> g_wipe_on_fork_refused{false};
thread_local bool t_creating = false;
thread_local bool t_exited = false;

// Every live state and its owner's cipher context slot, for the fork child handler.
struct Registered {
  ThreadState* state;
  EVP_CIPHER_CTX** ctx;
};
pthread_mutex_t g_registry_lock = PTHREAD_MUTEX_INITIALIZER;
std::vector<Registered>* g_registry = nullptr;  // never freed: thread exits may outlive statics
thread_local bool t_holds_registry = false;     // a signal handler that forks must not wait
// States of exited threads, wiped (under evp with their parked cipher contexts): a new thread takes
// one instead of mapping, advising, faulting in and keying a fresh one (measured: ~20 us
// of a ~25 us first draw). Guarded by g_registry_lock.
constexpr size_t kMaxPooled = 64;
struct Pooled {
  ThreadState* state;
  EVP_CIPHER_CTX* ctx;
};
std::vector<Pooled>* g_pool = nullptr;
bool g_registry_skipped = false;  // prepare did not lock: the child trusts no list

void registry_lock() {
  pthread_mutex_lock(&g_registry_lock);
  t_holds_registry = true;
}
void registry_unlock() {
  t_holds_registry = false;
  pthread_mutex_unlock(&g_registry_lock);
}

void registry_add(ThreadState* state, EVP_CIPHER_CTX** ctx) {
  registry_lock();
  if (g_registry == nullptr) g_registry = new std::vector<Registered>;
  g_registry->push_back({state, ctx});
  registry_unlock();
}

// Whether a state can be kept for the next thread with the context `ctx`: the in-page
// keystream needs none; the EVP keystream a parked one.
bool poolable_with(const EVP_CIPHER_CTX* ctx) {
  return ctx != nullptr || state_keystream_in_page();
}

// Forgets `state` (its thread is exiting: a fork child no longer wipes it as a live
// state); keeps it (seeded for the next thread, or wiped) and its parked `ctx` (under
// evp; else nullptr) for the next new thread when `pool` is true, or returns false (not
// to be pooled, or the pool is full): the caller then frees them.
bool registry_remove_and_pool(ThreadState* state, EVP_CIPHER_CTX* ctx, bool pool) {
  registry_lock();
  for (Registered& r : *g_registry) {
    if (r.state == state) {
      r = g_registry->back();
      g_registry->pop_back();
      break;
    }
  }
  if (g_pool == nullptr) g_pool = new std::vector<Pooled>;
  const bool pooled =
      pool && g_pool->size() < kMaxPooled && !SNAPSAFE_TEST_FLAG(disable_state_pool);
  if (pooled) g_pool->push_back({state, ctx});
  registry_unlock();
  return pooled;
}

// Whether an exiting thread's state would be pooled now (then it is worth seeding).
bool pool_has_room() {
  if (SNAPSAFE_TEST_FLAG(disable_state_pool)) return false;
  registry_lock();
  const bool room = g_pool == nullptr || g_pool->size() < kMaxPooled;
  registry_unlock();
  return room;
}

// A pooled state and its parked context, or {nullptr, nullptr}.
Pooled take_pooled() {
  Pooled taken{nullptr, nullptr};
  registry_lock();
  if (g_pool != nullptr && !g_pool->empty()) {
    taken = g_pool->back();
    g_pool->pop_back();
  }
  registry_unlock();
  return taken;
}

// pthread_atfork: the registry does not change while fork() copies it.
void before_fork() {
  g_registry_skipped = t_holds_registry;  // fork() from a handler that interrupted us
  if (!g_registry_skipped) pthread_mutex_lock(&g_registry_lock);
}
void after_fork_in_parent() {
  if (!g_registry_skipped) pthread_mutex_unlock(&g_registry_lock);
}

// Makes `st` (the forking thread's own state) "never seeded" in the child.
void forget_own_state(ThreadState* st) {
  // The stamp, always: a draw interrupted by the signal handler that called fork() resumes
  // in the child and re-reads it before returning (draw.h, ordering 4; the slow paths in
  // draw.cc, unchanged_since), so it redoes the draw from a reseed instead of returning
  // its parent's bytes. With MADV_WIPEONFORK the page is already zero here (in_use too),
  // so the stamp is the only trace left.
  st->generation = kGenerationNever;
  st->flag_generation = kGenerationNever;  // flag this page again: it may have none
  st->seeded = 0;
  if (st->in_use) {
    // That draw still owns `remaining` and the buffer (it resumes on return): nothing it
    // uses is touched; its redo wipes them.
    return;
  }
  st->remaining = 0;
  explicit_bzero(st->key, sizeof st->key);
  explicit_bzero(st->buffer, sizeof st->buffer);
  explicit_bzero(&st->schedule, sizeof st->schedule);  // zero between steps already
}

// pthread_atfork child: single-threaded; see thread_state.h.
void after_fork_in_child() {
  if (!SNAPSAFE_TEST_FLAG(disable_fork_handler)) {
    ThreadState* const mine = t_state;
    if (mine != nullptr) forget_own_state(mine);
    if (!g_registry_skipped && g_registry != nullptr) {
      size_t kept = 0;
      for (const Registered& r : *g_registry) {
        if (r.state == mine) {
          (*g_registry)[kept++] = r;
          continue;
        }
        if (*r.ctx != nullptr) keystream_free(*r.ctx);
        *r.ctx = nullptr;
        OPENSSL_cleanse(r.state, sizeof *r.state);
        munmap(r.state, sizeof *r.state);
      }
      g_registry->resize(kept);
      g_live_states.store(kept, std::memory_order_relaxed);
    }
    // Pooled states are seeded for the next thread (a key and unread output): wiped here
    // too, like a live state, for a process whose pages lost MADV_WIPEONFORK. A pooled
    // state is seeded, or wiped but for its (public) flag generation, so only a seeded one
    // is written (a page the kernel wiped is not faulted in).
    if (!g_registry_skipped && g_pool != nullptr &&
        !SNAPSAFE_TEST_FLAG(disable_pool_wipe_in_child)) {
      for (const Pooled& p : *g_pool) {
        if (p.state->seeded) OPENSSL_cleanse(p.state, sizeof *p.state);
      }
    }
    vdso_getrandom_forget_after_fork();
  }
  if (!g_registry_skipped) {
    pthread_mutex_unlock(&g_registry_lock);  // held by this thread since the prepare handler
  }
  t_holds_registry = false;
}

// Registered when the library is loaded, not at the first state: a fork while another
// thread was inside that one-time registration (a std::call_once) left the child's own
// first draw waiting on the half-done once forever.
[[maybe_unused]] const int g_fork_handlers =
    pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);

// The thread's state and its cipher context slot. Trivially destructible, so touching it
// registers nothing: its release at thread exit is arranged once, when the state is
// created (arrange_release_at_exit below).
struct StateOwner {
  ThreadState* state = nullptr;
  EVP_CIPHER_CTX* ctx = nullptr;
  bool poolable = true;  // false for a test's state mapped without MADV_WIPEONFORK
};
constinit thread_local StateOwner t_owner;

// Releases the thread's state at its exit. The state is wiped whole (key, buffer, header,
// key schedule) and an EVP context (evp only) holds only the parked zero key between
// steps, so a pooled state carries nothing of its previous owner; the next owner reseeds
// (counter 0).
void release_state_at_exit() {
  StateOwner& owner = t_owner;
  t_exited = true;
  t_state = nullptr;
  ThreadState* const state = owner.state;
  if (state == nullptr) {
    if (owner.ctx != nullptr) keystream_free(owner.ctx);
    owner.ctx = nullptr;
    return;
  }
  const genid::Generation flag_generation = state->flag_generation;
  if (!SNAPSAFE_TEST_FLAG(pool_without_wipe)) OPENSSL_cleanse(state, sizeof *state);
  state->flag_generation = flag_generation;  // public, and true of the pooled page
  // Kept for the next thread, seeded for it (its first draw then costs no reseed):
  // seeded while still registered, so a fork meanwhile wipes it in the child.
  const bool to_pool = owner.poolable && poolable_with(owner.ctx) && pool_has_room();
  if (to_pool && !SNAPSAFE_TEST_FLAG(pool_without_wipe)) seed_for_next_thread(state, owner.ctx);
  g_live_states.fetch_sub(1, std::memory_order_relaxed);
  if (!registry_remove_and_pool(state, owner.ctx, to_pool)) {
    if (to_pool) OPENSSL_cleanse(state, sizeof *state);   // seeded above, for nobody
    if (owner.ctx != nullptr) keystream_free(owner.ctx);  // frees and cleanses the schedule
    munmap(state, sizeof *state);
  }
  owner.state = nullptr;
  owner.ctx = nullptr;
}

// How the release is arranged. A C++ thread_local destructor costs the thread's first
// draw ~0.2 us, and ~0.6 us on a CPU whose caches hold nothing of this process (measured:
// over half of that first draw): glibc's __cxa_thread_atexit_impl allocates (in a new
// thread, malloc's per-thread cache is set up then) and takes the loader's lock. A
// pthread key's value is stored in the thread's own descriptor (keys below 32), so it is
// used instead, except where its destructor would not run: the main thread at exit()
// (which runs C++ thread_local destructors but no key destructors; the loading thread
// stands in for it) and a process out of keys. Key destructors run after every C++
// thread_local destructor of the thread: a draw from one of those is served by the
// state; one from a later key's destructor, by the kernel (t_exited). A C++ destructor
// also keeps a dlopen()ed object loaded while the thread lives; the key's does not, so the
// shared objects are linked -z nodelete (BUILD.bazel, provider/BUILD.bazel).
struct ExitHook {
  ~ExitHook() { release_state_at_exit(); }
};
thread_local ExitHook t_exit_hook;
void release_at_key_exit(void*) { release_state_at_exit(); }
pthread_key_t g_exit_key;
const bool g_exit_key_made = pthread_key_create(&g_exit_key, &release_at_key_exit) == 0;
const pthread_t g_loading_thread = pthread_self();

void arrange_release_at_exit() {
  if (g_exit_key_made && !pthread_equal(pthread_self(), g_loading_thread) &&
      pthread_setspecific(g_exit_key, &t_owner) == 0) {
    return;
  }
  ExitHook* const hook = &t_exit_hook;  // constructs it: its destructor is registered
  asm volatile("" : : "r"(hook) : "memory");
}

}  // namespace

ThreadState* thread_state_create() noexcept {
  // A draw from a later exit-time destructor: the kernel serves it (a state mapped now would
  // never be released: its owner's destructor has run).
  if (t_exited && !SNAPSAFE_TEST_FLAG(disable_state_exit_guard)) return nullptr;
  if (g_wipe_on_fork_refused.load(std::memory_order_relaxed)) return nullptr;
  t_creating = true;
  // A test that maps states without MADV_WIPEONFORK, or without the pool, wants a fresh
  // mapping.
  const bool fresh_mapping_wanted = SNAPSAFE_TEST_FLAG(disable_wipe_on_fork) ||
                                    SNAPSAFE_TEST_FLAG(refuse_wipe_on_fork) ||
                                    SNAPSAFE_TEST_FLAG(disable_state_pool);
  const Pooled pooled = fresh_mapping_wanted ? Pooled{nullptr, nullptr} : take_pooled();
  if (pooled.state != nullptr) {
    t_owner.state = pooled.state;
    t_owner.ctx = pooled.ctx;
    arrange_release_at_exit();
    registry_add(pooled.state, &t_owner.ctx);
    g_live_states.fetch_add(1, std::memory_order_relaxed);
    t_state = pooled.state;
    t_creating = false;
    return pooled.state;
  }
  void* map = mmap(nullptr, sizeof(ThreadState), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ThreadState* state = nullptr;
  if (map != MAP_FAILED) {
    const bool wiped = SNAPSAFE_TEST_FLAG(disable_wipe_on_fork) ||
                       (!SNAPSAFE_TEST_FLAG(refuse_wipe_on_fork) &&
                        madvise(map, sizeof(ThreadState), MADV_WIPEONFORK) == 0);
    if (wiped) {
      madvise(map, sizeof(ThreadState), MADV_DONTDUMP);  // best effort
      state = static_cast<ThreadState*>(map);
      state->flag_generation = genid::read_generation();  // flagged just now
      t_owner.state = state;
      t_owner.poolable = !SNAPSAFE_TEST_FLAG(disable_wipe_on_fork);
      arrange_release_at_exit();
      registry_add(state, &t_owner.ctx);
      g_live_states.fetch_add(1, std::memory_order_relaxed);
    } else {
      munmap(map, sizeof(ThreadState));
      g_wipe_on_fork_refused.store(true, std::memory_order_relaxed);
    }
  }
  t_state = state;
  t_creating = false;
  return state;
}

void thread_state_reflag(ThreadState* st, genid::Generation generation) noexcept {
  if (st->flag_generation == generation || SNAPSAFE_TEST_FLAG(disable_reflag)) return;
  // A state mapped without the flag on purpose (a test's) stays without it.
  if (SNAPSAFE_TEST_FLAG(disable_wipe_on_fork)) return;
  if (madvise(st, sizeof *st, MADV_WIPEONFORK) == 0) st->flag_generation = generation;
}

void thread_state_pool_clear() noexcept {
  std::vector<Pooled> pooled;
  registry_lock();
  if (g_pool != nullptr) pooled.swap(*g_pool);
  registry_unlock();
  for (const Pooled& p : pooled) {
    OPENSSL_cleanse(p.state, sizeof *p.state);
    if (p.ctx != nullptr) keystream_free(p.ctx);
    munmap(p.state, sizeof *p.state);
  }
}

EVP_CIPHER_CTX*& thread_cipher_context() noexcept { return t_owner.ctx; }

bool thread_state_creating() noexcept { return t_creating; }

bool thread_states_unavailable() noexcept {
  return g_wipe_on_fork_refused.load(std::memory_order_relaxed);
}

#ifdef SNAPSAFE_TESTING
void reset_wipe_on_fork_refusal_for_testing() noexcept { g_wipe_on_fork_refused = false; }
#endif

uint64_t live_thread_states() noexcept { return g_live_states.load(std::memory_order_relaxed); }

}  // namespace snapsafe::rng_internal
