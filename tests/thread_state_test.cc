// Per-thread state reuse (rng/internal/thread_state.h): an exited thread's state and
// cipher context serve the next new thread, and carry nothing of their previous owner.
// Negative control: a pooled state kept unwiped hands its old owner's unread keystream
// to the new thread.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

class StatePool : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

struct Handover {
  const void* old_state = nullptr;
  const void* new_state = nullptr;
  bool new_state_all_zero = false;
  size_t blocks_of_old_unread_output_served = 0;
};

// Thread A draws and exits with unread output in its buffer; thread B then takes a state.
Handover hand_over() {
  Handover h;
  Bytes old_unread;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);
    const rng_internal::ThreadState* st = rng_internal::t_state;
    h.old_state = st;
    old_unread.assign(st->buffer + (rng_internal::kBufferBytes - st->remaining),
                      st->buffer + rng_internal::kBufferBytes);
  });
  testing::on_new_thread([&] {
    rng_internal::ThreadState* st = rng_internal::thread_state_create();
    h.new_state = st;
    const auto* bytes = reinterpret_cast<const uint8_t*>(st);
    size_t nonzero = 0;
    for (size_t i = 0; i < sizeof *st; ++i) nonzero += bytes[i] != 0;
    h.new_state_all_zero = nonzero == 0;
    Bytes first(1024);
    fill(first.data(), first.size());
    h.blocks_of_old_unread_output_served = testing::shared_blocks(old_unread, first);
  });
  return h;
}

TEST_F(StatePool, ANewThreadReusesAnExitedThreadsStateWipedWhole) {
  const Handover h = hand_over();
  EXPECT_EQ(h.new_state, h.old_state) << "the pooled state is reused";
  EXPECT_TRUE(h.new_state_all_zero);
  EXPECT_EQ(h.blocks_of_old_unread_output_served, 0u);
}

TEST_F(StatePool, NegativeControlAnUnwipedStateServesItsOldOwnersOutput) {
  rng_internal::g_test_hooks.pool_without_wipe = true;
  const Handover h = hand_over();
  EXPECT_EQ(h.new_state, h.old_state);
  EXPECT_FALSE(h.new_state_all_zero);
  EXPECT_GT(h.blocks_of_old_unread_output_served, 0u);
}

TEST_F(StatePool, WithoutThePoolStatesAreUnmapped) {
  rng_internal::g_test_hooks.disable_state_pool = true;
  const uint64_t live = rng_internal::live_thread_states();
  testing::on_new_thread([] { fill(Bytes(16).data(), 16); });
  EXPECT_EQ(rng_internal::live_thread_states(), live);
}

}  // namespace
}  // namespace snapsafe
