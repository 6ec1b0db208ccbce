// Clones must differ even when the guest kernel's RNG is a clone.
//
// Two fork children of one parent stand in for two clones of one snapshot: the same
// memory, the same reseed counter, the same thread (address), every kernel RNG read
// returning the same bytes (test hook cloned_kernel: a VM restored with the same VMGenID
// GUID, or before its kernel handled the notification), no RDRAND (disable_hardware_rng)
// and the seed's clock word equal (frozen_clocks: two clones reseeding "at the same
// instant"; really they differ by jitter only). Each clone's counter file is a copy of the
// checkpoint's file, bumped on its own (the way the restore hook bumps it on each clone's
// host), then mapped where the checkpoint's mapping was (as CRIU re-maps a file by path).
// After the bump each draws 32 bytes.
//
//  - A random bump in each clone (what `snapsafe_counter bump` does now): the outputs
//    differ, and the seed material differs in the generation and nothing else.
//  - Negative control 1, the same value handed to both (bump --set V in each): the outputs
//    are identical. This proves the test's clones really are clones: only the generation
//    can tell them apart.
//  - Negative control 2, the old bump (+1 on each copy): both clones get the same
//    generation, and their draws repeat.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/generation.h"
#include "rng/fill.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/seed.h"
#include "rng/internal/test_hooks.h"
#include "rng/status.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

rng_internal::SeedMaterial g_seen;
int g_seen_count = 0;
void observe(const void* material, size_t size) {
  if (size != sizeof g_seen) std::abort();
  std::memcpy(&g_seen, material, size);
  ++g_seen_count;
}

enum class Bump { kRandom, kSet, kPlusOne };

// What a clone reports: the seed material of its reseed after the bump and its draw.
struct CloneDraw {
  rng_internal::SeedMaterial material;
  uint8_t output[32];
  genid::Generation generation;
};

class ClonedKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::temp_path("generation");
    ASSERT_EQ(genid::counter_file_create(path_), "");
    ASSERT_EQ(genid::counter_file_read(path_, &checkpoint_), "");
    testing::use_source({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path_}});
    ASSERT_EQ(status().source, SourceKind::kCounterFile);
    page_ = reinterpret_cast<uintptr_t>(genid::g_reader.word) & ~uintptr_t{4095};
    auto& hooks = rng_internal::g_test_hooks;
    hooks.cloned_kernel = true;         // every kernel RNG read: the same bytes
    hooks.disable_hardware_rng = true;  // no RDRAND
    hooks.frozen_clocks = true;         // the clones reseed "at the same instant"
    hooks.disable_pool_seeding = true;  // only the drawing thread's reseeds
    hooks.seed_material = &observe;
    fill(testing::Bytes(16).data(), 16);  // the parent is seeded under the checkpoint's
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }

  // One clone: a copy of the checkpoint's file, bumped as `how` says, put at the path and
  // mapped where the parent's mapping is; then a 32-byte draw.
  CloneDraw clone(Bump how, genid::Generation value = 0) {
    const testing::Bytes bytes = testing::run_in_child([&] {
      CloneDraw draw{};
      const std::string copy = path_ + ".clone";
      bool unchanged = false;
      if (genid::counter_file_create(copy) != "" ||
          genid::counter_file_set(copy, checkpoint_, &unchanged) != "") {
        _exit(5);
      }
      std::string error;
      switch (how) {
        case Bump::kRandom: error = genid::counter_file_bump(copy, &draw.generation); break;
        case Bump::kSet:
          draw.generation = value;
          error = genid::counter_file_set(copy, value, &unchanged);
          break;
        case Bump::kPlusOne:  // the old bump: +1 on the copy
          draw.generation = checkpoint_ + 1;
          error = genid::counter_file_set(copy, checkpoint_ + 1, &unchanged);
          break;
      }
      if (!error.empty() || rename(copy.c_str(), path_.c_str()) != 0) _exit(6);
      const int fd = open(path_.c_str(), O_RDONLY);
      if (fd < 0 || mmap(reinterpret_cast<void*>(page_), genid::kCounterFileSize, PROT_READ,
                         MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        _exit(7);
      }
      close(fd);
      g_seen_count = 0;
      fill(draw.output, sizeof draw.output);
      if (g_seen_count != 1) _exit(8);  // the draw must come from a reseed under the bump
      draw.material = g_seen;
      const auto* raw = reinterpret_cast<const uint8_t*>(&draw);
      return testing::Bytes(raw, raw + sizeof draw);
    });
    CloneDraw draw{};
    EXPECT_EQ(bytes.size(), sizeof draw);
    if (bytes.size() == sizeof draw) std::memcpy(&draw, bytes.data(), sizeof draw);
    return draw;
  }

  // Everything in the two clones' seed material but the generation is equal: they are
  // clones in every input the test does not mean to vary.
  static void expect_clones(const CloneDraw& a, const CloneDraw& b) {
    EXPECT_EQ(std::memcmp(a.material.kernel, b.material.kernel, sizeof a.material.kernel), 0);
    for (const uint8_t byte : a.material.kernel) ASSERT_EQ(byte, 0x5a) << "the cloned kernel";
    EXPECT_EQ(a.material.hardware[0], 0u);
    EXPECT_EQ(b.material.hardware[0], 0u);
    EXPECT_EQ(a.material.clock, b.material.clock);
    EXPECT_EQ(a.material.thread, b.material.thread) << "the same thread address";
    EXPECT_EQ(a.material.counter, b.material.counter) << "the same reseed counter";
  }

  std::string path_;
  genid::Generation checkpoint_ = 0;
  uintptr_t page_ = 0;
};

TEST_F(ClonedKernel, RandomBumpsMakeTwoClonesDrawDifferentBytes) {
  const CloneDraw a = clone(Bump::kRandom), b = clone(Bump::kRandom);
  expect_clones(a, b);
  EXPECT_NE(a.generation, checkpoint_);
  EXPECT_NE(a.generation, b.generation);
  EXPECT_EQ(a.material.generation, a.generation) << "the reseed hashed the clone's generation";
  EXPECT_EQ(b.material.generation, b.generation);
  // Without the fix (bump = +1): both clones at checkpoint + 1, identical output (below).
  EXPECT_NE(std::memcmp(a.output, b.output, sizeof a.output), 0)
      << testing::hex(a.output, 32) << " in both clones";
}

TEST_F(ClonedKernel, AValueFromOutsideSetInEachCloneMakesThemDiffer) {
  const CloneDraw a = clone(Bump::kSet, 1111), b = clone(Bump::kSet, 2222);
  expect_clones(a, b);
  EXPECT_NE(std::memcmp(a.output, b.output, sizeof a.output), 0);
}

// The CPU's RDRAND (drawn per clone, on the host's silicon) alone keeps them apart too: the
// same value handed to both clones (the control below repeats), RDRAND on, each clone's
// words its own (scripted: a different start in each). The words go into the reseed's
// cipher input (seed.h), never its key.
uint64_t g_next_rdrand = 0;
uint64_t scripted_rdrand() { return g_next_rdrand += 0x0101010101010101u; }

TEST_F(ClonedKernel, RdrandAloneMakesTwoClonesOfOneGenerationDiffer) {
  if (!rng_internal::hardware_rng_present() && rng_internal::g_test_hooks.disable_hardware_rng) {
    rng_internal::g_test_hooks.disable_hardware_rng = false;
    if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no RDRAND on this CPU";
  }
  rng_internal::g_test_hooks.hardware_rng_value = &scripted_rdrand;
  g_next_rdrand = 0x1000;
  const CloneDraw a = clone(Bump::kSet, 1111);
  g_next_rdrand = 0x2000;
  const CloneDraw b = clone(Bump::kSet, 1111);
  EXPECT_EQ(a.material.generation, b.material.generation);
  EXPECT_EQ(std::memcmp(a.material.kernel, b.material.kernel, sizeof a.material.kernel), 0);
  EXPECT_NE(a.material.hardware[0], b.material.hardware[0]);
  EXPECT_NE(std::memcmp(a.output, b.output, sizeof a.output), 0)
      << testing::hex(a.output, 32) << " in both clones";
}

TEST_F(ClonedKernel, NegativeControlTheSameValueInBothClonesRepeatsTheirDraws) {
  const CloneDraw a = clone(Bump::kSet, 1111), b = clone(Bump::kSet, 1111);
  expect_clones(a, b);
  EXPECT_EQ(a.material.generation, b.material.generation);
  EXPECT_EQ(std::memcmp(a.output, b.output, sizeof a.output), 0)
      << "the clones differ in something besides the generation: " << testing::hex(a.output, 32)
      << " vs " << testing::hex(b.output, 32);
}

TEST_F(ClonedKernel, NegativeControlTheOldPlusOneBumpRepeatsTheirDraws) {
  const CloneDraw a = clone(Bump::kPlusOne), b = clone(Bump::kPlusOne);
  expect_clones(a, b);
  EXPECT_EQ(a.generation, b.generation) << "+1 on two copies of one file: one generation";
  EXPECT_EQ(std::memcmp(a.output, b.output, sizeof a.output), 0);
}

}  // namespace
}  // namespace snapsafe
