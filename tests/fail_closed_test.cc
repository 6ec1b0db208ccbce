// Fail closed: with getrandom(2) blocked by a seccomp filter (EPERM, as under a strict
// sandbox; ENOSYS, as on an old kernel), a draw throws snapsafe::entropy_error and the C
// API returns the errno, and no output is produced. Each runs in a forked child (a
// seccomp filter cannot be removed). The negative control shows the filter really does
// block getrandom, so the test cannot pass vacuously.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>

#include <gtest/gtest.h>

#include "capi/c_api.h"
#include "rng/error.h"
#include "rng/fill.h"
#include "rng/random_device.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

// In a child: blocks getrandom with `error`, then reports as bytes:
// [0] the errno entropy_error carried (0 if fill returned normally),
// [1] whether any byte of the C++ output buffer (0xAA before) is not zero afterwards:
//     on failure the output is zeroed, so nothing stale or partial can be used,
// [2] snapsafe_fill's return value, [3] whether its buffer is all zero afterwards,
// [4] the errno random_device("kernel") threw with.
Bytes outcome_with_getrandom_blocked(int error) {
  return testing::run_in_child([error] {
    Bytes report(5, 0);
    if (!testing::block_getrandom(error)) _exit(6);
    Bytes buffer(64, 0xAA);
    try {
      fill(buffer.data(), buffer.size());  // state wiped by fork: must reseed first
    } catch (const entropy_error& e) {
      report[0] = static_cast<uint8_t>(e.code());
    }
    for (uint8_t b : buffer) report[1] |= b != 0;
    Bytes c_buffer(64, 0xAA);
    report[2] = static_cast<uint8_t>(snapsafe_fill(c_buffer.data(), c_buffer.size()));
    report[3] = 1;
    for (uint8_t b : c_buffer) report[3] &= b == 0;
    try {
      random_device device("kernel");
      (void)device();
    } catch (const entropy_error& e) {
      report[4] = static_cast<uint8_t>(e.code());
    }
    return report;
  });
}

class FailClosed : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
};

TEST_P(FailClosed, NoOutputAndAClearError) {
  fill(Bytes(16).data(), 16);  // the parent's state is seeded; the child's is wiped
  const Bytes report = outcome_with_getrandom_blocked(GetParam());
  ASSERT_EQ(report.size(), 5u);
  EXPECT_EQ(report[0], GetParam()) << "fill() must throw entropy_error";
  EXPECT_EQ(report[1], 0) << "fill() must leave no output (zeroed)";
  EXPECT_EQ(report[2], GetParam()) << "snapsafe_fill must return the errno";
  EXPECT_EQ(report[3], 1) << "snapsafe_fill must zero its buffer";
  EXPECT_EQ(report[4], GetParam()) << "random_device must throw";
}

TEST_P(FailClosed, KernelBackedModeToo) {
  testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
  const Bytes report = outcome_with_getrandom_blocked(GetParam());
  ASSERT_EQ(report.size(), 5u);
  EXPECT_EQ(report[0], GetParam());
  EXPECT_EQ(report[1], 0);
  EXPECT_EQ(report[2], GetParam());
}

TEST_P(FailClosed, NegativeControlTheFilterReallyBlocksGetrandom) {
  const Bytes report = testing::run_in_child([error = GetParam()] {
    uint8_t byte;
    const long before = syscall(SYS_getrandom, &byte, 1, 0);
    if (!testing::block_getrandom(error)) _exit(6);
    const long after = syscall(SYS_getrandom, &byte, 1, 0);
    return Bytes{static_cast<uint8_t>(before), static_cast<uint8_t>(after == -1 ? errno : 0)};
  });
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[0], 1) << "getrandom works before the filter";
  EXPECT_EQ(report[1], GetParam()) << "and fails with the errno after it";
}

INSTANTIATE_TEST_SUITE_P(Errors, FailClosed, ::testing::Values(EPERM, ENOSYS),
                         [](const auto& info) { return info.param == EPERM ? "EPERM" : "ENOSYS"; });

}  // namespace
}  // namespace snapsafe
