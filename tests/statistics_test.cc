// A quick statistical sanity battery on 16 MiB of output: monobit (fraction of one
// bits), runs (number of runs of equal bits) and a chi-square over byte values. Not a
// proof of randomness (the cipher is), but it catches a broken buffer, a stuck key or a
// zeroing bug. Thresholds: |z| < 5 for monobit and runs (p = 5.7e-7 each) and
// 150 < chi-square < 390 (255 degrees of freedom: p = 2.4e-8 below, 1.1e-7 above), so a
// correct generator fails about once in a million runs. Negative controls: each
// statistic rejects a slightly biased stream.
#include <bit>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

constexpr size_t kBytes = 16 << 20;

struct Battery {
  double monobit_z;   // (ones - n/2) / sqrt(n/4)
  double runs_z;      // runs against their expectation given the ones fraction
  double chi_square;  // 255 degrees of freedom
};

Battery run_battery(const testing::Bytes& bytes) {
  const double n = 8.0 * bytes.size();
  uint64_t ones = 0, transitions = 0, counts[256] = {};
  int previous_bit = bytes[0] & 1;
  for (uint8_t byte : bytes) {
    ones += std::popcount(byte);
    ++counts[byte];
    // Bit transitions inside the byte and from the previous byte's last bit.
    const unsigned shifted =
        (static_cast<unsigned>(byte) << 1) | static_cast<unsigned>(previous_bit);
    transitions += std::popcount((shifted ^ (shifted >> 1)) & 0xffu);
    previous_bit = byte >> 7;
  }
  const double p = ones / n;
  const double runs = 1.0 + static_cast<double>(transitions);
  const double expected_runs = 2.0 * n * p * (1 - p) + 1;
  Battery result;
  result.monobit_z = (static_cast<double>(ones) - n / 2) / std::sqrt(n / 4);
  result.runs_z = (runs - expected_runs) / (2 * std::sqrt(2 * n) * p * (1 - p));
  const double expected = bytes.size() / 256.0;
  result.chi_square = 0;
  for (uint64_t c : counts) result.chi_square += (c - expected) * (c - expected) / expected;
  return result;
}

bool passes(const Battery& b, std::string* why) {
  *why = "monobit z=" + std::to_string(b.monobit_z) + " runs z=" + std::to_string(b.runs_z) +
         " chi2=" + std::to_string(b.chi_square);
  return std::abs(b.monobit_z) < 5 && std::abs(b.runs_z) < 5 && b.chi_square > 150 &&
         b.chi_square < 390;
}

TEST(Statistics, SixteenMebibytesOfOutputPass) {
  testing::use_fresh_counter_file();  // the buffered path, not the kernel
  testing::Bytes bytes(kBytes);
  // Mixed draw sizes: u64s, small fills, and bulk fills straight from the keystream.
  size_t offset = 0;
  for (int round = 0; offset < kBytes; ++round) {
    const size_t size = std::min<size_t>(kBytes - offset, round % 3 == 0   ? 8
                                                          : round % 3 == 1 ? 100
                                                                           : 4096);
    fill(bytes.data() + offset, size);
    offset += size;
  }
  std::string why;
  EXPECT_TRUE(passes(run_battery(bytes), &why)) << why;
}

TEST(Statistics, NegativeControlsEachStatisticRejectsABiasedStream) {
  std::mt19937_64 engine(1);
  testing::Bytes bytes(kBytes);
  for (size_t i = 0; i < kBytes; i += 8) {
    const uint64_t v = engine();
    std::memcpy(bytes.data() + i, &v, 8);
  }
  std::string why;
  ASSERT_TRUE(passes(run_battery(bytes), &why)) << "the unbiased baseline passes: " << why;

  testing::Bytes biased = bytes;  // the low bit set in every 64th byte: p(1) = 0.50098
  for (size_t i = 0; i < kBytes; i += 64) biased[i] |= 1;
  EXPECT_GT(std::abs(run_battery(biased).monobit_z), 5);

  testing::Bytes sticky = bytes;  // every 64th byte copies its neighbour's top bit down
  for (size_t i = 1; i < kBytes; i += 64)
    sticky[i] = static_cast<uint8_t>((sticky[i] & 0xfe) | (sticky[i - 1] >> 7));
  EXPECT_GT(std::abs(run_battery(sticky).runs_z), 5);

  testing::Bytes skewed = bytes;  // every 512th byte forced to 0x00
  for (size_t i = 0; i < kBytes; i += 512) skewed[i] = 0;
  EXPECT_GT(run_battery(skewed).chi_square, 390);
}

}  // namespace
}  // namespace snapsafe
