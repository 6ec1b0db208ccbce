// Signal re-entry: a signal handler that draws on the thread it interrupted, in the
// middle of a draw, must never receive bytes the interrupted draw also returns. The
// test-only hook raises the signal exactly after the interrupted draw copied its bytes
// out and before it consumed them. Negative control: without the in_use guard the
// handler is handed the very same bytes.
#include <signal.h>

#include <cstring>

#include <gtest/gtest.h>

#include "rng/c_api.h"
#include "rng/fill.h"
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

}  // namespace
}  // namespace snapsafe
