// Concurrency: threads draw at the same time from their own states, and no two 16-byte
// outputs are equal across 10^6 draws. Negative control: every thread's state seeded
// with the same (injected) seed repeats, showing the check can fail.
#include <algorithm>
#include <array>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

constexpr int kThreads = 4;
constexpr size_t kDrawsPerThread = 250000;  // 10^6 in all

using Block = std::array<uint8_t, 16>;

size_t duplicates_across_threads() {
  std::vector<Block> blocks(kThreads * kDrawsPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&blocks, t] {
      for (size_t i = 0; i < kDrawsPerThread; ++i) {
        fill(blocks[t * kDrawsPerThread + i].data(), 16);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::sort(blocks.begin(), blocks.end());
  return blocks.size() -
         static_cast<size_t>(std::unique(blocks.begin(), blocks.end()) - blocks.begin());
}

class Threads : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

TEST_F(Threads, NoRepeatedBlockInAMillionConcurrentDraws) {
  EXPECT_EQ(duplicates_across_threads(), 0u);
}

TEST_F(Threads, NegativeControlSameSeedEverywhereRepeats) {
  static const uint8_t kSeed[32] = {42};
  rng_internal::g_test_hooks.injected_seed = kSeed;
  EXPECT_EQ(duplicates_across_threads(), (kThreads - 1) * kDrawsPerThread);
}

}  // namespace
}  // namespace snapsafe
