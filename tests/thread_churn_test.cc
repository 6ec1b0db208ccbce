// Thread churn: 10 000 threads are created, draw and exit; thread states are released
// (count back to where it was) and resident memory does not grow. Negative control:
// the same measurement does see 10 000 leaked state-sized mappings.
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/thread_state.h"
#include "tests/proc_self.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

constexpr int kThreads = 10000;
constexpr long kAllowedGrowthKiB = 8 * 1024;  // leaking the states would be ~80 MiB

void churn(void (*body)()) {
  for (int i = 0; i < kThreads; i += 2) {  // two at a time: this machine has two cores
    std::thread a(body), b(body);
    a.join();
    b.join();
  }
}

void draw_and_exit() {
  uint8_t bytes[16];
  fill(bytes, sizeof bytes);
}

class ThreadChurn : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::use_fresh_counter_file();
    churn(draw_and_exit);  // warm up: thread stacks cached, allocator arenas grown
  }
};

TEST_F(ThreadChurn, StatesAreReleasedAndMemoryDoesNotGrow) {
  const uint64_t states_before = rng_internal::live_thread_states();
  const long before = testing::resident_kib();
  churn(draw_and_exit);
  EXPECT_EQ(rng_internal::live_thread_states(), states_before);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (A sanitizer's quarantine and shadow memory grow on their own: RSS says nothing then;
  // the state count above and LeakSanitizer still do.)
  EXPECT_LT(testing::resident_kib() - before, kAllowedGrowthKiB);
#endif
}

TEST_F(ThreadChurn, NegativeControlALeakIsSeen) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "RSS is not measured under a sanitizer, so neither is its control";
#endif
  const long before = testing::resident_kib();
  churn([] {
    void* leaked = mmap(nullptr, rng_internal::kStateBytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memset(leaked, 1, rng_internal::kStateBytes);  // touched, like a used state
  });
  EXPECT_GT(testing::resident_kib() - before, kAllowedGrowthKiB);
}

}  // namespace
}  // namespace snapsafe
