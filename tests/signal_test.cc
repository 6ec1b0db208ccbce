// Signal re-entry: a signal handler that draws on the thread it interrupted, in the
// middle of a draw, must never receive bytes the interrupted draw also returns. The
// test-only hook raises the signal exactly after the interrupted draw copied its bytes
// out and before it consumed them. Negative control: without the in_use guard the
// handler is handed the very same bytes.
//
// fork() from such a handler: the interrupted draw resumes in both processes. The child's
// must not return its parent's bytes, nor zeros from a page the fork wiped, nor crash on
// a reset `remaining`; it redoes the draw (the fork handler stamps the state, the draw
// re-reads the stamp). Both with MADV_WIPEONFORK and without it (a page a restore
// dropped the flag from), the signal before and after the copy. Negative control: without
// the re-read the child returns the parent's bytes or zeros.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <gtest/gtest.h>

#include "capi/c_api.h"
#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/internal/test_hooks.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

uint8_t g_handler_bytes[16];
int g_handler_result = -1;

void on_signal(int) { g_handler_result = snapsafe_fill(g_handler_bytes, sizeof g_handler_bytes); }

void raise_once() {
  rng_internal::g_test_hooks.after_copy = nullptr;
  raise(SIGUSR1);  // delivered before raise() returns: inside the draw
}

// Returns {bytes of the interrupted draw, bytes the handler got}.
std::pair<testing::Bytes, testing::Bytes> interrupted_draw() {
  testing::Bytes interrupted(16);
  testing::on_new_thread([&] {
    fill(testing::Bytes(16).data(), 16);  // seed: the next draw takes the fast path
    struct sigaction action = {};
    action.sa_handler = &on_signal;
    sigaction(SIGUSR1, &action, nullptr);
    g_handler_result = -1;
    rng_internal::g_test_hooks.after_copy = &raise_once;
    fill(interrupted.data(), interrupted.size());
    signal(SIGUSR1, SIG_DFL);
  });
  EXPECT_EQ(g_handler_result, 0);
  return {interrupted, testing::Bytes(g_handler_bytes, g_handler_bytes + 16)};
}

class SignalReentry : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

TEST_F(SignalReentry, HandlerNeverGetsTheInterruptedDrawsBytes) {
  const auto [interrupted, handler] = interrupted_draw();
  EXPECT_NE(interrupted, handler);
}

TEST_F(SignalReentry, NegativeControlWithoutGuardHandlerGetsTheSameBytes) {
  rng_internal::g_test_hooks.disable_signal_guard = true;
  const auto [interrupted, handler] = interrupted_draw();
  EXPECT_EQ(interrupted, handler);
}

// --- fork() from a handler that interrupted a draw.

volatile sig_atomic_t g_fork_result = -1;  // fork()'s return value, in each process

void fork_on_signal(int) { g_fork_result = fork(); }

void raise_once_after_check() {
  rng_internal::g_test_hooks.after_check = nullptr;
  raise(SIGUSR2);
}

void raise_once_after_copy() {
  rng_internal::g_test_hooks.after_copy = nullptr;
  raise(SIGUSR2);
}

struct ForkedDraw {
  testing::Bytes parent, child, child_next;  // the interrupted draw in each; the child's next
  int child_status = -1;
};

// Draws 16 bytes with a fork() from a signal handler at `point` (after_check or
// after_copy); the child sends its result of that draw and of its next one.
ForkedDraw forked_draw(bool after_copy) {
  ForkedDraw result;
  int fds[2];
  if (pipe(fds) != 0) ADD_FAILURE() << "pipe";
  testing::on_new_thread([&] {
    fill(testing::Bytes(16).data(), 16);  // seeded: the next draw takes the fast path
    struct sigaction action = {};
    action.sa_handler = &fork_on_signal;
    sigaction(SIGUSR2, &action, nullptr);
    g_fork_result = -1;
    if (after_copy) {
      rng_internal::g_test_hooks.after_copy = &raise_once_after_copy;
    } else {
      rng_internal::g_test_hooks.after_check = &raise_once_after_check;
    }
    testing::Bytes bytes(16);
    fill(bytes.data(), bytes.size());
    if (g_fork_result == 0) {  // the child
      testing::Bytes next(16);
      fill(next.data(), next.size());
      bool ok = write(fds[1], bytes.data(), 16) == 16 && write(fds[1], next.data(), 16) == 16;
      _exit(ok ? 0 : 1);
    }
    signal(SIGUSR2, SIG_DFL);
    result.parent = bytes;
  });
  close(fds[1]);
  uint8_t buffer[32];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof buffer && (n = read(fds[0], buffer + got, sizeof buffer - got)) > 0) {
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  if (g_fork_result > 0) waitpid(g_fork_result, &result.child_status, 0);
  if (got == sizeof buffer) {
    result.child.assign(buffer, buffer + 16);
    result.child_next.assign(buffer + 16, buffer + 32);
  }
  return result;
}

class ForkFromSignalHandler : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  void SetUp() override {
    testing::use_fresh_counter_file();
    // Without MADV_WIPEONFORK: the page a CRIU restore hands back; the fork handler alone
    // separates the child then.
    rng_internal::g_test_hooks.disable_wipe_on_fork = !std::get<0>(GetParam());
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
  bool after_copy() const { return std::get<1>(GetParam()); }
};

TEST_P(ForkFromSignalHandler, TheChildRedoesTheInterruptedDraw) {
  const ForkedDraw d = forked_draw(after_copy());
  ASSERT_TRUE(WIFEXITED(d.child_status) && WEXITSTATUS(d.child_status) == 0)
      << "child status " << d.child_status;
  ASSERT_EQ(d.child.size(), 16u);
  const testing::Bytes zeros(16, 0);
  EXPECT_NE(d.child, d.parent) << "the child returned its parent's bytes";
  EXPECT_NE(d.child, zeros) << "the child returned zeros from a wiped page";
  EXPECT_NE(d.child_next, d.parent);
  EXPECT_NE(d.child_next, zeros);
}

TEST_P(ForkFromSignalHandler, NegativeControlWithoutTheReReadTheChildReturnsParentBytesOrZeros) {
  rng_internal::g_test_hooks.disable_recheck = true;
  const ForkedDraw d = forked_draw(after_copy());
  ASSERT_EQ(d.child.size(), 16u) << "child status " << d.child_status;
  const testing::Bytes zeros(16, 0);
  EXPECT_TRUE(d.child == d.parent || d.child == zeros)
      << "the hazard did not happen: the child's draw differs without the re-read";
}

INSTANTIATE_TEST_SUITE_P(WipeOnForkAndPoint, ForkFromSignalHandler,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<bool, bool>>& info) {
                           return std::string(std::get<0>(info.param) ? "WipeOnFork" : "FlagLost") +
                                  (std::get<1>(info.param) ? "AfterCopy" : "BeforeCopy");
                         });

// --- fork() from a handler that interrupted a slow-path or kernel-served draw. The
// fast path's stamp re-read (above) does not reach these: a reseed (the first
// draw), a refill, a bulk draw over 1 KiB, a kernel-backed draw over 64 bytes and one of
// 16. Each is interrupted at a test hook by a signal whose handler forks. The slow path
// re-reads the state's stamp before it returns (draw.cc, unchanged_since), kernel_output
// a process-wide fork count (kernel_output.cc): the child redoes the draw. Negative
// control (disable_fork_recheck): the child returns its parent's bytes, or zeros from a
// page the fork wiped, as success.

enum class SlowDraw { kReseed, kRefill, kBulk, kKernel, kKernelShort };

const char* slow_draw_name(SlowDraw d) {
  switch (d) {
    case SlowDraw::kReseed: return "Reseed";
    case SlowDraw::kRefill: return "Refill";
    case SlowDraw::kBulk: return "Bulk4096";
    case SlowDraw::kKernel: return "Kernel4096";
    case SlowDraw::kKernelShort: return "Kernel16";
  }
  return "?";
}

size_t slow_draw_size(SlowDraw d) {
  switch (d) {
    case SlowDraw::kReseed: return 64;
    case SlowDraw::kRefill: return 512;
    case SlowDraw::kBulk: return 4096;
    case SlowDraw::kKernel: return 4096;
    case SlowDraw::kKernelShort: return 16;
  }
  return 0;
}

void raise_fork_signal_once() {
  rng_internal::g_test_hooks.mid_reseed = nullptr;
  rng_internal::g_test_hooks.mid_refill = nullptr;
  rng_internal::g_test_hooks.after_slow_produce = nullptr;
  rng_internal::g_test_hooks.after_kernel_output = nullptr;
  raise(SIGUSR2);
}

// Readies this (new) thread for `d` and arms the hook that forks inside it.
void arm(SlowDraw d) {
  rng_internal::TestHooks& hooks = rng_internal::g_test_hooks;
  switch (d) {
    case SlowDraw::kReseed:  // a new thread's state (no pool): its first draw reseeds
      hooks.mid_reseed = &raise_fork_signal_once;
      break;
    case SlowDraw::kRefill:
      fill(testing::Bytes(16).data(), 16);  // reseeded: kFirstRefillBytes - 16 bytes left
      fill(testing::Bytes(rng_internal::kFirstRefillBytes - 16).data(),
           rng_internal::kFirstRefillBytes - 16);  // the fast path: none left
      hooks.mid_refill = &raise_fork_signal_once;
      break;
    case SlowDraw::kBulk:
      fill(testing::Bytes(16).data(), 16);
      hooks.after_slow_produce = &raise_fork_signal_once;
      break;
    case SlowDraw::kKernel:
    case SlowDraw::kKernelShort:
      fill(testing::Bytes(16).data(), 16);  // this thread's vDSO state exists
      hooks.after_kernel_output = &raise_fork_signal_once;
      break;
  }
}

struct ForkedSlowDraw {
  testing::Bytes parent, child, child_next;
  int child_status = -1;
};

ForkedSlowDraw forked_slow_draw(SlowDraw d) {
  const size_t size = slow_draw_size(d);
  ForkedSlowDraw result;
  int fds[2];
  if (pipe(fds) != 0) ADD_FAILURE() << "pipe";
  testing::on_new_thread([&] {
    struct sigaction action = {};
    action.sa_handler = &fork_on_signal;
    sigaction(SIGUSR2, &action, nullptr);
    g_fork_result = -1;
    arm(d);
    testing::Bytes bytes(size);
    const int error = snapsafe_fill(bytes.data(), size);
    if (g_fork_result == 0) {  // the child
      testing::Bytes next(size);
      const bool ok = error == 0 && snapsafe_fill(next.data(), size) == 0 &&
                      write(fds[1], bytes.data(), size) == static_cast<ssize_t>(size) &&
                      write(fds[1], next.data(), size) == static_cast<ssize_t>(size);
      _exit(ok ? 0 : 1);
    }
    signal(SIGUSR2, SIG_DFL);
    EXPECT_EQ(error, 0);
    EXPECT_GT(g_fork_result, 0) << "the hook did not fork";
    result.parent = bytes;
  });
  close(fds[1]);
  testing::Bytes got;
  uint8_t chunk[4096];
  ssize_t n;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0) got.insert(got.end(), chunk, chunk + n);
  close(fds[0]);
  if (g_fork_result > 0) waitpid(g_fork_result, &result.child_status, 0);
  if (got.size() == 2 * size) {
    result.child.assign(got.begin(), got.begin() + size);
    result.child_next.assign(got.begin() + size, got.end());
  }
  return result;
}

size_t zero_blocks(const testing::Bytes& b) {
  size_t zero = 0;
  for (size_t i = 0; i + 16 <= b.size(); i += 16) {
    zero += std::all_of(b.begin() + i, b.begin() + i + 16, [](uint8_t x) { return x == 0; });
  }
  return zero;
}

class ForkFromSignalHandlerInSlowDraw
    : public ::testing::TestWithParam<std::tuple<SlowDraw, bool>> {
 protected:
  void SetUp() override {
    if (kernel_backed()) {
      testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
    } else {
      testing::use_fresh_counter_file();
    }
    rng_internal::g_test_hooks.disable_state_pool = true;  // a new thread's first draw reseeds
    rng_internal::g_test_hooks.disable_wipe_on_fork = !std::get<1>(GetParam());
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
  SlowDraw draw_kind() const { return std::get<0>(GetParam()); }
  bool kernel_backed() const {
    return draw_kind() == SlowDraw::kKernel || draw_kind() == SlowDraw::kKernelShort;
  }
};

TEST_P(ForkFromSignalHandlerInSlowDraw, TheChildSharesNothingWithItsParent) {
  const ForkedSlowDraw d = forked_slow_draw(draw_kind());
  ASSERT_TRUE(WIFEXITED(d.child_status) && WEXITSTATUS(d.child_status) == 0)
      << "child status " << d.child_status;
  ASSERT_EQ(d.child.size(), slow_draw_size(draw_kind()));
  EXPECT_EQ(testing::shared_blocks(d.parent, d.child), 0u)
      << "the child returned its parent's bytes";
  EXPECT_EQ(testing::shared_blocks(d.parent, d.child_next), 0u);
  EXPECT_EQ(zero_blocks(d.child), 0u) << "the child returned zeros as success";
  EXPECT_EQ(zero_blocks(d.child_next), 0u);
}

TEST_P(ForkFromSignalHandlerInSlowDraw,
       NegativeControlWithoutTheRecheckTheChildReturnsParentBytesOrZeros) {
  rng_internal::g_test_hooks.disable_fork_recheck = true;
  const ForkedSlowDraw d = forked_slow_draw(draw_kind());
  ASSERT_EQ(d.child.size(), slow_draw_size(draw_kind())) << "child status " << d.child_status;
  const testing::Bytes zeros(d.child.size(), 0);
  EXPECT_TRUE(d.child == d.parent || d.child == zeros)
      << "the hazard did not happen: the child's draw differs without the re-check";
}

INSTANTIATE_TEST_SUITE_P(DrawAndWipeOnFork, ForkFromSignalHandlerInSlowDraw,
                         ::testing::Combine(::testing::Values(SlowDraw::kReseed, SlowDraw::kRefill,
                                                              SlowDraw::kBulk, SlowDraw::kKernel,
                                                              SlowDraw::kKernelShort),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<SlowDraw, bool>>& info) {
                           return std::string(slow_draw_name(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "WipeOnFork" : "FlagLost");
                         });

}  // namespace
}  // namespace snapsafe
