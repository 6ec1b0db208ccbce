// The fork token ID state is stamped with: see epoch.h.
#include "ids/internal/epoch.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

namespace snapsafe {
namespace ids_internal {

uint64_t* g_fork_word = nullptr;

namespace {

pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;
uint64_t g_next_token = 0;  // tokens handed out so far (atomic increments)

// In the child of every fork(), including after a restore dropped MADV_WIPEONFORK.
// Async-signal-safe: one atomic store.
void wipe_in_child() {
  uint64_t* const word = __atomic_load_n(&g_fork_word, __ATOMIC_ACQUIRE);
  if (word != nullptr) __atomic_store_n(word, 0, __ATOMIC_RELEASE);
}

void init_fork_word() {
  void* const page = mmap(nullptr, static_cast<size_t>(sysconf(_SC_PAGESIZE)),
                          PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return;  // getpid() mode
  if (madvise(page, static_cast<size_t>(sysconf(_SC_PAGESIZE)), MADV_WIPEONFORK) != 0) {
    munmap(page, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
    return;  // a kernel before 4.14: getpid() mode
  }
  pthread_atfork(nullptr, nullptr, &wipe_in_child);
  __atomic_store_n(&g_fork_word, static_cast<uint64_t*>(page), __ATOMIC_RELEASE);
}

}  // namespace

uint64_t fork_token_slow() noexcept {
  pthread_once(&g_fork_once, &init_fork_word);
  uint64_t* const word = __atomic_load_n(&g_fork_word, __ATOMIC_ACQUIRE);
  if (word == nullptr) return static_cast<uint64_t>(getpid());  // never 0
  // The word was wiped (first use, or a fork child): a value this process's ancestors
  // never had, as the counter only grows and the child continues from the parent's.
  uint64_t token = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  while (token == 0) {
    const uint64_t fresh = __atomic_add_fetch(&g_next_token, 1, __ATOMIC_RELAXED);
    if (__atomic_compare_exchange_n(word, &token, fresh, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      return fresh;
    }
  }
  return token;
}

}  // namespace ids_internal

#ifdef SNAPSAFE_TESTING
namespace ids_testing {
Hooks g_hooks;
}  // namespace ids_testing
#endif

}  // namespace snapsafe
