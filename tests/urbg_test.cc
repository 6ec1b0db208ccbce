// snapsafe::BitGen as a uniform random bit generator: compile-time concept checks and
// use with <random> distributions, absl::Uniform and absl::BitGenRef.
#include <concepts>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/distributions.h"
#include "rng/bit_gen.h"
#include "rng/random_device.h"

namespace {

static_assert(std::uniform_random_bit_generator<snapsafe::BitGen>);
static_assert(std::uniform_random_bit_generator<snapsafe::random_device>);
static_assert(std::is_same_v<snapsafe::BitGen::result_type, uint64_t>);
static_assert(std::is_same_v<snapsafe::random_device::result_type,
                             std::random_device::result_type>);
static_assert(!std::is_copy_constructible_v<snapsafe::random_device>);

TEST(BitGen, WorksWithStdDistributions) {
  snapsafe::BitGen gen;
  std::uniform_int_distribution<int> die(1, 6);
  std::set<int> seen;
  for (int i = 0; i < 1000; ++i) {
    const int roll = die(gen);
    ASSERT_GE(roll, 1);
    ASSERT_LE(roll, 6);
    seen.insert(roll);
  }
  EXPECT_EQ(seen.size(), 6u);
  std::normal_distribution<double> normal(0.0, 1.0);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) sum += normal(gen);
  EXPECT_LT(std::abs(sum / 10000), 0.1);
}

TEST(BitGen, WorksWithAbslUniformAndBitGenRef) {
  snapsafe::BitGen gen;
  for (int i = 0; i < 1000; ++i) {
    const double x = absl::Uniform(gen, 0.0, 1.0);
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
  }
  absl::BitGenRef ref(gen);
  const uint64_t v = absl::Uniform<uint64_t>(ref, 10, 20);
  EXPECT_GE(v, 10u);
  EXPECT_LT(v, 20u);
}

TEST(BitGen, CopiesDoNotRepeatEachOther) {
  snapsafe::BitGen a;
  snapsafe::BitGen b = a;
  EXPECT_NE(a(), b());
}

TEST(RandomDevice, InterfaceOfStdRandomDevice) {
  snapsafe::random_device rd;
  EXPECT_EQ(rd.entropy(), 32.0);
  EXPECT_EQ(snapsafe::random_device::min(), 0u);
  EXPECT_EQ(snapsafe::random_device::max(), UINT32_MAX);
  std::mt19937 engine(rd());  // the classic seeding idiom
  (void)engine();
  for (const char* token : {"default", "snapsafe", "kernel", "getrandom", "/dev/urandom"}) {
    snapsafe::random_device device(token);
    std::set<unsigned> values;
    for (int i = 0; i < 8; ++i) values.insert(device());
    EXPECT_GT(values.size(), 1u) << token;
  }
}

}  // namespace
