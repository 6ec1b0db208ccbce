// snapsafe::BitGen as a uniform random bit generator: compile-time concept checks and
// use with <random> distributions, absl::Uniform and absl::BitGenRef.
#include <array>
#include <bit>
#include <concepts>
#include <random>
#include <set>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/distributions.h"
#include "rng/bit_gen.h"
#include "rng/random_device.h"

namespace {

static_assert(std::uniform_random_bit_generator<snapsafe::BitGen>);
static_assert(std::uniform_random_bit_generator<snapsafe::random_device>);
static_assert(std::is_same_v<snapsafe::BitGen::result_type, uint64_t>);
static_assert(
    std::is_same_v<snapsafe::random_device::result_type, std::random_device::result_type>);
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

// What C++26's std::ranges::generate_random(r, g) does (P1068): the generator's bulk
// member when the call is well-formed, else one g() per element.
template <class R, class G>
void generate_random_like_cxx26(R&& r, G&& g) {
  if constexpr (requires { g.generate_random(r); }) {
    g.generate_random(r);
  } else {
    for (auto& x : r) x = g();
  }
}

template <class R>
concept HasBulkFor = requires(snapsafe::BitGen g, R r) {
  g.generate_random(r);
};
static_assert(HasBulkFor<std::vector<uint64_t>&>);
static_assert(HasBulkFor<std::array<uint64_t, 4>&>);
static_assert(HasBulkFor<std::span<uint64_t>>);
static_assert(HasBulkFor<uint64_t (&)[4]>);
static_assert(!HasBulkFor<std::vector<uint32_t>&>);  // elements must be result_type
static_assert(!HasBulkFor<std::set<uint64_t>&>);     // and contiguous

TEST(BitGen, GenerateRandomFillsEveryElementInBulk) {
  snapsafe::BitGen gen;
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{128}, size_t{129}, size_t{4096}}) {
    std::vector<uint64_t> words(n + 2, 0);
    gen.generate_random(std::span<uint64_t>(words).subspan(1, n));
    EXPECT_EQ(words.front(), 0u) << n;  // nothing written outside the range
    EXPECT_EQ(words.back(), 0u) << n;
    std::set<uint64_t> distinct(words.begin() + 1, words.end() - 1);
    EXPECT_EQ(distinct.size(), n) << n;  // 64-bit values: a repeat would be a bug
  }
  // Every bit position is set in about half of 4096 words (+-6.25 sigma = +-200: a false
  // failure of any of the 64 positions, p = 2.6e-8).
  std::vector<uint64_t> words(4096);
  generate_random_like_cxx26(words, gen);
  for (int bit = 0; bit < 64; ++bit) {
    int ones = 0;
    for (uint64_t w : words) ones += static_cast<int>((w >> bit) & 1);
    EXPECT_NEAR(ones, 2048, 200) << "bit " << bit;
  }
  uint64_t c_array[3] = {};
  gen.generate_random(c_array);
  EXPECT_TRUE(c_array[0] != 0 || c_array[1] != 0 || c_array[2] != 0);
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
