// The C API (snapsafe.h): every function's results, its errors for bad arguments (NULL,
// short buffers, zero sizes, bound 0, malformed text) without an abort, output zeroed on
// failure, no modulo bias in snapsafe_uniform, and no exception crossing into C when the
// kernel refuses entropy (negative control: the same failure throws in C++).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ids/ids.h"
#include "rng/error.h"
#include "snapsafe.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using ::testing::HasSubstr;

const std::regex kV4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
const std::regex kV7("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

bool all_zero(const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

TEST(CApi, FillAndU64) {
  uint8_t a[64] = {}, b[64] = {};
  ASSERT_EQ(snapsafe_fill(a, sizeof a), 0);
  ASSERT_EQ(snapsafe_fill(b, sizeof b), 0);
  EXPECT_NE(std::memcmp(a, b, sizeof a), 0);
  EXPECT_EQ(snapsafe_fill(nullptr, 0), 0);
  EXPECT_EQ(snapsafe_fill(nullptr, 1), EINVAL);
  uint64_t x = 0, y = 0;
  ASSERT_EQ(snapsafe_u64(&x), 0);
  ASSERT_EQ(snapsafe_u64(&y), 0);
  EXPECT_NE(x, y);
  EXPECT_EQ(snapsafe_u64(nullptr), EINVAL);
}

TEST(CApi, UniformRejectsBoundZeroAndNull) {
  uint64_t out = 123;
  EXPECT_EQ(snapsafe_uniform(0, &out), EINVAL);
  EXPECT_EQ(out, 0u);
  EXPECT_EQ(snapsafe_uniform(6, nullptr), EINVAL);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(snapsafe_uniform(1, &out), 0);
    ASSERT_EQ(out, 0u);
  }
}

TEST(CApi, UniformStaysBelowTheBound) {
  for (uint64_t bound : {uint64_t{2}, uint64_t{3}, uint64_t{1000}, (uint64_t{1} << 63) + 1,
                         UINT64_MAX - 1, UINT64_MAX}) {
    uint64_t max_seen = 0;
    for (int i = 0; i < 2000; ++i) {
      uint64_t out;
      ASSERT_EQ(snapsafe_uniform(bound, &out), 0);
      ASSERT_LT(out, bound);
      max_seen = std::max(max_seen, out);
    }
    EXPECT_GE(max_seen, bound / 2) << bound;  // reaches the upper half
  }
}

// Bound 2^63 + 2^62 (3 * 2^62): a plain x % bound would give values below 2^62 twice
// the weight of the rest (2/4 of draws instead of 1/3). Rejection keeps it at 1/3.
TEST(CApi, UniformHasNoModuloBias) {
  const uint64_t bound = (uint64_t{3}) << 62;
  constexpr int kDraws = 30000;
  int low = 0;
  for (int i = 0; i < kDraws; ++i) {
    uint64_t out;
    ASSERT_EQ(snapsafe_uniform(bound, &out), 0);
    low += out < (uint64_t{1} << 62);
  }
  // 1/3 expected; sd = sqrt(n p (1-p)) ~ 82: allow 6 sd. Biased would be ~15000.
  EXPECT_NEAR(low, kDraws / 3, 500);
  // Control: the same raw draws reduced with % show the bias this test would catch.
  int low_modulo = 0;
  for (int i = 0; i < kDraws; ++i) {
    uint64_t raw;
    ASSERT_EQ(snapsafe_u64(&raw), 0);
    low_modulo += raw % bound < (uint64_t{1} << 62);
  }
  EXPECT_NEAR(low_modulo, kDraws / 2, 500);
}

TEST(CApi, UniformSmallBoundIsFlat) {
  constexpr int kDraws = 60000;
  int counts[6] = {};
  for (int i = 0; i < kDraws; ++i) {
    uint64_t out;
    ASSERT_EQ(snapsafe_uniform(6, &out), 0);
    ++counts[out];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += std::pow(c - kDraws / 6.0, 2) / (kDraws / 6.0);
  EXPECT_LT(chi2, 35.0);  // 5 degrees of freedom: a false failure p = 2.8e-6
}

TEST(CApi, UuidText) {
  char a[SNAPSAFE_UUID_TEXT_SIZE], b[SNAPSAFE_UUID_TEXT_SIZE];
  ASSERT_EQ(snapsafe_uuid_v4(a, sizeof a), 0);
  EXPECT_TRUE(std::regex_match(a, kV4)) << a;
  ASSERT_EQ(snapsafe_uuid_v7(a, sizeof a), 0);
  ASSERT_EQ(snapsafe_uuid_v7(b, sizeof b), 0);
  EXPECT_TRUE(std::regex_match(a, kV7)) << a;
  EXPECT_LT(std::string(a), std::string(b));  // one thread: increasing
  char big[100];
  ASSERT_EQ(snapsafe_uuid_v7(big, sizeof big), 0);
  EXPECT_EQ(std::strlen(big), 36u);
}

TEST(CApi, UuidBytes) {
  uint8_t a[16], b[16];
  ASSERT_EQ(snapsafe_uuid_v4_bytes(a, sizeof a), 0);
  EXPECT_EQ(a[6] >> 4, 4);
  EXPECT_EQ(a[8] >> 6, 2);
  ASSERT_EQ(snapsafe_uuid_v7_bytes(a, sizeof a), 0);
  ASSERT_EQ(snapsafe_uuid_v7_bytes(b, sizeof b), 0);
  EXPECT_EQ(a[6] >> 4, 7);
  EXPECT_EQ(a[8] >> 6, 2);
  EXPECT_LT(std::memcmp(a, b, 16), 0);
  char text[SNAPSAFE_UUID_TEXT_SIZE];
  ASSERT_EQ(snapsafe_uuid_format(a, text, sizeof text), 0);
  uint8_t back[16];
  ASSERT_EQ(snapsafe_uuid_parse(text, std::strlen(text), 7, back, sizeof back), 0);
  EXPECT_EQ(std::memcmp(a, back, 16), 0);
}

TEST(CApi, ShortBuffersAndNullsAreEinvalAndZeroed) {
  char text[36];
  std::memset(text, 'x', sizeof text);
  EXPECT_EQ(snapsafe_uuid_v4(text, sizeof text), EINVAL);
  EXPECT_TRUE(all_zero(text, sizeof text));
  std::memset(text, 'x', sizeof text);
  EXPECT_EQ(snapsafe_uuid_v7(text, sizeof text), EINVAL);
  EXPECT_TRUE(all_zero(text, sizeof text));
  uint8_t bytes[15];
  std::memset(bytes, 'x', sizeof bytes);
  EXPECT_EQ(snapsafe_uuid_v4_bytes(bytes, sizeof bytes), EINVAL);
  EXPECT_TRUE(all_zero(bytes, sizeof bytes));
  EXPECT_EQ(snapsafe_uuid_v7_bytes(bytes, sizeof bytes), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v4(nullptr, 37), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v7(nullptr, 37), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v4_bytes(nullptr, 16), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v7_bytes(nullptr, 16), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v4(text, 0), EINVAL);
  char id[32];
  EXPECT_EQ(snapsafe_request_id(id, sizeof id), EINVAL);
  EXPECT_EQ(snapsafe_request_id(nullptr, 33), EINVAL);
  uint8_t uuid[16] = {1};
  char small[37];
  EXPECT_EQ(snapsafe_uuid_format(nullptr, small, sizeof small), EINVAL);
  EXPECT_TRUE(all_zero(small, sizeof small));
  EXPECT_EQ(snapsafe_uuid_format(uuid, nullptr, 37), EINVAL);
  EXPECT_EQ(snapsafe_uuid_format(uuid, small, 36), EINVAL);
}

TEST(CApi, Parse) {
  const char* good = "017F22E2-79B0-7CC3-98C4-DC0C0C07398F";
  uint8_t out[16];
  ASSERT_EQ(snapsafe_uuid_parse(good, std::strlen(good), 0, out, sizeof out), 0);
  EXPECT_EQ(out[0], 0x01);
  EXPECT_EQ(out[15], 0x8f);
  ASSERT_EQ(snapsafe_uuid_parse(good, std::strlen(good), 7, out, sizeof out), 0);
  // Not NUL-terminated: exactly text_len characters are read.
  const std::string padded = std::string(good) + "trailing garbage";
  EXPECT_EQ(snapsafe_uuid_parse(padded.data(), 36, 7, out, sizeof out), 0);
  const struct {
    const char* text;
    int version;
  } bad[] = {
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398", 0},    // short
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398FF", 0},  // long
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398G", 0},   // non-hex
      {"017F22E279B0-7CC3-98C4-DC0C0C07398F-", 0},   // hyphens misplaced
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 4},   // version mismatch
      {"017F22E2-79B0-7CC3-18C4-DC0C0C07398F", 7},   // variant mismatch
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 9},   // no such version
      {"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", -1},
  };
  for (const auto& c : bad) {
    std::memset(out, 0xAA, sizeof out);
    EXPECT_EQ(snapsafe_uuid_parse(c.text, std::strlen(c.text), c.version, out, sizeof out), EINVAL)
        << c.text << " " << c.version;
    EXPECT_TRUE(all_zero(out, sizeof out)) << c.text;
  }
  EXPECT_EQ(snapsafe_uuid_parse(nullptr, 36, 0, out, sizeof out), EINVAL);
  EXPECT_EQ(snapsafe_uuid_parse(good, 36, 0, nullptr, 16), EINVAL);
  EXPECT_EQ(snapsafe_uuid_parse(good, 36, 0, out, 15), EINVAL);
  EXPECT_EQ(snapsafe_uuid_parse(good, 0, 0, out, sizeof out), EINVAL);
  EXPECT_EQ(snapsafe_uuid_parse(nullptr, 0, 0, out, sizeof out), EINVAL);
}

TEST(CApi, RequestId) {
  char a[SNAPSAFE_REQUEST_ID_TEXT_SIZE], b[SNAPSAFE_REQUEST_ID_TEXT_SIZE];
  ASSERT_EQ(snapsafe_request_id(a, sizeof a), 0);
  ASSERT_EQ(snapsafe_request_id(b, sizeof b), 0);
  EXPECT_TRUE(std::regex_match(a, std::regex("^[0-9a-f]{32}$"))) << a;
  EXPECT_STRNE(a, b);
}

TEST(CApi, StatusSizeQueryThenFetch) {
  size_t needed = 0;
  EXPECT_EQ(snapsafe_status(nullptr, 0, &needed), ERANGE);
  ASSERT_GT(needed, 100u);
  std::string buffer(needed + 64, 'x');  // live counters may grow between calls
  size_t again = 0;
  ASSERT_EQ(snapsafe_status(buffer.data(), buffer.size(), &again), 0);
  EXPECT_EQ(std::strlen(buffer.c_str()) + 1, again);
  EXPECT_THAT(buffer.c_str(), HasSubstr("source:"));
  EXPECT_THAT(buffer.c_str(), HasSubstr("covers fork:"));
  EXPECT_EQ(snapsafe_status(buffer.data(), buffer.size(), nullptr), 0);  // needed optional
}

TEST(CApi, StatusTooSmallIsErangeZeroedWithTheSizeNeeded) {
  char small[16];
  std::memset(small, 'x', sizeof small);
  size_t needed = 0;
  EXPECT_EQ(snapsafe_status(small, sizeof small, &needed), ERANGE);
  EXPECT_TRUE(all_zero(small, sizeof small));
  EXPECT_GT(needed, sizeof small);
  EXPECT_EQ(snapsafe_status(small, sizeof small, nullptr), ERANGE);
  EXPECT_EQ(snapsafe_status(nullptr, 10, &needed), EINVAL);
}

TEST(CApi, SourceName) {
  char name[32];
  ASSERT_EQ(snapsafe_source_name(name, sizeof name), 0);
  EXPECT_GT(std::strlen(name), 0u);
  EXPECT_EQ(snapsafe_source_name(nullptr, 8), EINVAL);
  EXPECT_EQ(snapsafe_source_name(name, 0), EINVAL);
}

// ---- The kernel refuses entropy ----

// In a forked child (the generator state is wiped, so the first draw must reseed) with
// getrandom blocked: each C function's result and whether its output is all zero, and
// (the control) the errno the C++ call threw with.
TEST(CApi, EntropyFailureIsAnErrnoNeverAnExceptionOrAnAbort) {
  testing::use_fresh_counter_file();
  const testing::Bytes report = testing::run_in_child([] {
    testing::Bytes out;
    if (!testing::block_getrandom(EPERM)) _exit(6);
    const auto record = [&](int result, const void* data, size_t size) {
      out.push_back(static_cast<uint8_t>(result));
      out.push_back(all_zero(data, size));
    };
    char text[37];
    std::memset(text, 'x', sizeof text);
    record(snapsafe_uuid_v7(text, sizeof text), text, sizeof text);
    std::memset(text, 'x', sizeof text);
    record(snapsafe_uuid_v4(text, sizeof text), text, sizeof text);
    uint8_t bytes[16];
    std::memset(bytes, 'x', sizeof bytes);
    record(snapsafe_uuid_v7_bytes(bytes, sizeof bytes), bytes, sizeof bytes);
    std::memset(bytes, 'x', sizeof bytes);
    record(snapsafe_uuid_v4_bytes(bytes, sizeof bytes), bytes, sizeof bytes);
    std::memset(text, 'x', sizeof text);
    record(snapsafe_request_id(text, 33), text, 33);
    uint64_t value = 99;
    record(snapsafe_uniform(1000, &value), &value, sizeof value);
    value = 99;
    record(snapsafe_u64(&value), &value, sizeof value);
    try {
      (void)uuid_v7();
      out.push_back(0);
    } catch (const entropy_error& e) {
      out.push_back(static_cast<uint8_t>(e.code()));
    }
    return out;
  });
  ASSERT_EQ(report.size(), 15u);
  const char* names[] = {"uuid_v7", "uuid_v4", "uuid_v7_bytes", "uuid_v4_bytes", "request_id",
                         "uniform", "u64"};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(report[2 * i], EPERM) << names[i];
    EXPECT_EQ(report[2 * i + 1], 1) << names[i] << ": output not zeroed";
  }
  EXPECT_EQ(report[14], EPERM) << "control: the C++ call throws on the same failure";
}

}  // namespace
}  // namespace snapsafe
