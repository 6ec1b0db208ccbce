// The reseed's inputs (rng/internal/seed.h), observed through a test hook right before the
// reseed step uses them: the kernel bytes (the step's key) come from a fresh getrandom(2)
// system call (never the vDSO, whose state a restore replays), the hardware RNG's words are
// in the cipher input (when the CPU has one), and so is the generation the state is seeded
// under.
#include <gtest/gtest.h>

#include <cstring>

#include "rng/fill.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/seed.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

rng_internal::SeedMaterial g_seen;
int g_seen_count = 0;
void observe(const void* material, size_t size) {
  ASSERT_EQ(size, sizeof g_seen);
  std::memcpy(&g_seen, material, size);
  ++g_seen_count;
}

class Seed : public ::testing::Test {
 protected:
  void SetUp() override {
    counter_ = testing::use_fresh_counter_file();
    g_seen_count = 0;
    rng_internal::g_test_hooks.seed_material = &observe;
    // Only reseeds of drawing threads, not the seeding of exited threads' pooled states.
    rng_internal::g_test_hooks.disable_pool_seeding = true;
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
  std::string counter_;
};

TEST_F(Seed, SeedsFromTheKernelBytesTheHardwareWordsAndTheGeneration) {
  rng_internal::g_test_hooks.cloned_kernel = true;  // every kernel read: 0x5a bytes
  testing::on_new_thread([] { fill(testing::Bytes(16).data(), 16); });
  ASSERT_EQ(g_seen_count, 1);
  for (uint8_t b : g_seen.kernel) ASSERT_EQ(b, 0x5a);
  if (rng_internal::hardware_rng_present()) {
    EXPECT_NE(g_seen.hardware[0], 0u);
    EXPECT_NE(g_seen.hardware[1], 0u);
  }
  EXPECT_NE(g_seen.clock, 0u);
  EXPECT_NE(g_seen.thread, 0u);
}

TEST_F(Seed, ANewGenerationIsInTheCipherInput) {
  testing::on_new_thread([&] {
    fill(testing::Bytes(16).data(), 16);
    const uint64_t before = g_seen.generation;
    testing::bump(counter_);
    fill(testing::Bytes(16).data(), 16);
    EXPECT_NE(g_seen.generation, before);
  });
  EXPECT_EQ(g_seen_count, 2);
}

TEST_F(Seed, TheKernelBytesComeFromTheSystemCallNeverTheVdso) {
  if (!rng_internal::vdso_getrandom_available()) GTEST_SKIP() << "no vDSO getrandom";
  testing::on_new_thread([] {
    fill(testing::Bytes(16).data(), 16);  // a reseed, in buffered mode
    size_t length = 0;
    EXPECT_EQ(rng_internal::vdso_getrandom_thread_state(&length), nullptr)
        << "the reseed touched the vDSO state, which a restore replays";
  });
}

TEST_F(Seed, TwoReseedsOfOneThreadNeverUseTheSameMaterial) {
  rng_internal::g_test_hooks.cloned_kernel = true;
  rng_internal::g_test_hooks.disable_hardware_rng = true;  // only the clock and counter left
  rng_internal::SeedMaterial first;
  testing::on_new_thread([&] {
    fill(testing::Bytes(16).data(), 16);
    first = g_seen;
    testing::bump(counter_);
    fill(testing::Bytes(16).data(), 16);
  });
  EXPECT_NE(std::memcmp(&first, &g_seen, sizeof first), 0);
  EXPECT_NE(first.counter, g_seen.counter);
}

}  // namespace
}  // namespace snapsafe
