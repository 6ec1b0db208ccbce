// The vDSO getrandom state at thread exit, in kernel-backed mode:
//  - draws from thread-local destructors that run after the library's own per-thread
//    teardown: measured before the fix, such draws used the thread's unmapped vDSO
//    getrandom state (SIGSEGV), or a state another thread had since mapped at the same
//    address (repeated and all-zero values returned as success). Each case runs in a
//    child process so a crash is a result, not the end of the test;
//  - the exited thread's state, pooled for the next thread: wiped first, so the next
//    owner's output is nothing the previous owner's state held.
// The vDSO is used unmasked here (test hook) so the hazard is visible whatever the CPU.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

std::mutex g_lock;
std::vector<uint64_t> g_values;

std::atomic<bool> g_new_state_after_exit{false};

// Constructed before the thread's first draw, so destroyed after the library's state.
// No draw may map a new vDSO state then (it would never be unmapped).
struct DrawsAtExit {
  bool armed = false;
  ~DrawsAtExit() {
    if (!armed) return;
    for (int i = 0; i < 200; ++i) {
      const uint64_t value = random_u64();
      std::lock_guard<std::mutex> lock(g_lock);
      g_values.push_back(value);
    }
    size_t length = 0;
    if (rng_internal::vdso_getrandom_thread_state(&length) != nullptr) {
      g_new_state_after_exit = true;
    }
  }
};
thread_local DrawsAtExit t_draws_at_exit;

// Exit status of a child whose threads draw at exit: 0 all values distinct and nonzero,
// 1 repeated or zero values, 2 a draw mapped a new state after exit (a leak), or the
// signal that killed it (+128).
int child_drawing_at_thread_exit(int threads) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (int t = 0; t < threads; ++t) {
      std::thread([] {
        t_draws_at_exit.armed = true;
        random_u64();  // the vDSO state is created now, after t_draws_at_exit
      }).join();
    }
    std::set<uint64_t> distinct(g_values.begin(), g_values.end());
    const bool ok = distinct.size() == g_values.size() && distinct.count(0) == 0 &&
                    g_values.size() == static_cast<size_t>(200 * threads);
    _exit(ok ? (g_new_state_after_exit ? 2 : 0) : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Teardown : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!rng_internal::vdso_getrandom_available()) GTEST_SKIP() << "no vDSO getrandom";
    testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
    rng_internal::g_test_hooks.unmasked_vdso_output = true;
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

TEST_F(Teardown, DrawsAfterTheThreadsStateIsGoneUseTheSystemCall) {
  EXPECT_EQ(child_drawing_at_thread_exit(1), 0);
  EXPECT_EQ(child_drawing_at_thread_exit(8), 0);
}

TEST_F(Teardown, NegativeControlWithoutTheGuardTheUnmappedStateIsUsed) {
  rng_internal::g_test_hooks.disable_teardown_guard = true;
  EXPECT_NE(child_drawing_at_thread_exit(1), 0);
}

// Thread A draws through the vDSO and exits; thread B, started after it, takes A's state
// from the pool (checked: the same mapping). Returns whether B's first output is bytes
// A's state held when A exited (its batch of unread output, or its key).
bool next_owner_draws_what_the_previous_owner_held() {
  rng_internal::vdso_getrandom_pool_clear();  // so that B takes A's state, no other
  Bytes a_state;
  void* a_map = nullptr;
  testing::on_new_thread([&] {
    Bytes out(16);
    EXPECT_EQ(rng_internal::vdso_getrandom(out.data(), out.size()), 0);
    size_t length = 0;
    a_map = rng_internal::vdso_getrandom_thread_state(&length);
    a_state.assign(static_cast<uint8_t*>(a_map), static_cast<uint8_t*>(a_map) + length);
  });
  Bytes b_out(16);
  void* b_map = nullptr;
  testing::on_new_thread([&] {
    EXPECT_EQ(rng_internal::vdso_getrandom(b_out.data(), b_out.size()), 0);
    size_t length = 0;
    b_map = rng_internal::vdso_getrandom_thread_state(&length);
  });
  EXPECT_EQ(b_map, a_map) << "B did not take A's pooled state";
  return std::search(a_state.begin(), a_state.end(), b_out.begin(), b_out.end()) != a_state.end();
}

TEST_F(Teardown, APooledStateCarriesNothingOfItsPreviousOwner) {
  EXPECT_FALSE(next_owner_draws_what_the_previous_owner_held());
}

TEST_F(Teardown, NegativeControlAPooledStateKeptAsItWasHandsOnItsBytes) {
  rng_internal::g_test_hooks.pool_without_wipe = true;
  EXPECT_TRUE(next_owner_draws_what_the_previous_owner_held());
}

}  // namespace
}  // namespace snapsafe
