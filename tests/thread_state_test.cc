// Per-thread state reuse (rng/internal/thread_state.h): an exited thread's state and
// cipher context serve the next new thread, and carry nothing of their previous owner:
// the state is wiped whole, then seeded afresh from the kernel for the next thread, under
// the generation of the moment (a bump before the reuse makes the new thread reseed), and
// a fork child wipes the seeded states in its pool even where the pages lost
// MADV_WIPEONFORK (as in a CRIU restore).
// Negative controls: a pooled state kept unwiped hands its old owner's unread keystream
// to the new thread; a fork child that keeps its pool as it was (pages without
// MADV_WIPEONFORK) serves its parent's output.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstddef>
#include <set>
#include <string>

#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;
namespace genid = snapsafe::genid;

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
    // Every byte but the generation the page flag was applied under (public, and still
    // true of the page).
    const size_t flag_at = offsetof(rng_internal::ThreadState, flag_generation);
    size_t nonzero = 0;
    for (size_t i = 0; i < sizeof *st; ++i) {
      if (i < flag_at || i >= flag_at + sizeof st->flag_generation) nonzero += bytes[i] != 0;
    }
    h.new_state_all_zero = nonzero == 0;
    Bytes first(1024);
    fill(first.data(), first.size());
    h.blocks_of_old_unread_output_served = testing::shared_blocks(old_unread, first);
  });
  return h;
}

TEST_F(StatePool, ANewThreadReusesAnExitedThreadsStateWipedWhole) {
  rng_internal::g_test_hooks.disable_pool_seeding = true;  // what is left before seeding
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

// What an exiting thread had (its next key, its unread output), and what the thread that
// takes its state over finds and draws.
struct SeededHandover {
  const void* old_state = nullptr;
  const void* new_state = nullptr;
  Bytes old_key, old_unread;
  Bytes pooled_key, pooled_buffer;  // the state as the new thread takes it over
  genid::Generation pooled_generation = 0;
  Bytes first;              // the new thread's first 1024 bytes
  uint64_t reseeds = 0;     // reseeds of the new thread's first draw
  uint64_t pool_seeds = 0;  // states seeded at thread exit meanwhile
};

SeededHandover seeded_hand_over(const std::string& counter_file, bool bump_before_reuse) {
  SeededHandover h;
  const uint64_t pool_seeds = rng_internal::pool_seed_count();
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);
    const rng_internal::ThreadState* st = rng_internal::t_state;
    h.old_state = st;
    h.old_key.assign(st->key, st->key + sizeof st->key);
    h.old_unread.assign(st->buffer + (rng_internal::kBufferBytes - st->remaining),
                        st->buffer + rng_internal::kBufferBytes);
  });
  h.pool_seeds = rng_internal::pool_seed_count() - pool_seeds;
  if (bump_before_reuse) testing::bump(counter_file);
  testing::on_new_thread([&] {
    rng_internal::ThreadState* st = rng_internal::thread_state_create();
    h.new_state = st;
    h.pooled_key.assign(st->key, st->key + sizeof st->key);
    h.pooled_buffer.assign(st->buffer, st->buffer + rng_internal::kBufferBytes);
    h.pooled_generation = st->generation;
    const uint64_t reseeds = rng_internal::reseed_count();
    h.first.resize(1024);
    fill(h.first.data(), h.first.size());
    h.reseeds = rng_internal::reseed_count() - reseeds;
  });
  return h;
}

TEST_F(StatePool, AnExitingThreadSeedsItsStateAfreshForTheNextThread) {
  const std::string counter_file = testing::use_fresh_counter_file();
  const SeededHandover h = seeded_hand_over(counter_file, /*bump_before_reuse=*/false);
  EXPECT_EQ(h.new_state, h.old_state) << "the pooled state is reused";
  EXPECT_EQ(h.pool_seeds, 1u) << "seeded once, at its owner's exit";
  EXPECT_EQ(h.pooled_generation, genid::read_generation());
  EXPECT_EQ(h.reseeds, 0u) << "the new thread's first draw needs no reseed";
  EXPECT_NE(h.pooled_key, h.old_key) << "a fresh key, not the old owner's";
  EXPECT_EQ(testing::shared_blocks(h.old_unread, h.pooled_buffer), 0u);
  EXPECT_EQ(testing::shared_blocks(h.old_unread, h.first), 0u);
  EXPECT_GT(testing::shared_blocks(h.pooled_buffer, h.first), 0u) << "served from the seed";
}

TEST_F(StatePool, APooledStateSeededBeforeABumpIsReseeded) {
  const std::string counter_file = testing::use_fresh_counter_file();
  const SeededHandover h = seeded_hand_over(counter_file, /*bump_before_reuse=*/true);
  EXPECT_EQ(h.new_state, h.old_state);
  EXPECT_EQ(h.pool_seeds, 1u);
  EXPECT_NE(h.pooled_generation, genid::read_generation());
  EXPECT_EQ(h.reseeds, 1u) << "seeded under the old generation: reseeded before use";
  EXPECT_EQ(testing::shared_blocks(h.pooled_buffer, h.first), 0u)
      << "nothing seeded before the bump is served after it";
}

// A thread exits (its state is pooled, seeded), the pool's pages lose MADV_WIPEONFORK (what
// a CRIU restore does to every page), the process forks, and a new thread draws in the
// parent and in the child: blocks both drew.
size_t blocks_a_fork_child_shares_from_the_pool() {
  const void* pooled = nullptr;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);
    pooled = rng_internal::t_state;
  });
  if (madvise(const_cast<void*>(pooled), rng_internal::kStateBytes, MADV_KEEPONFORK) != 0) {
    ADD_FAILURE() << "madvise(MADV_KEEPONFORK)";
    return 0;
  }
  const auto draw_on_new_thread = [pooled] {
    Bytes bytes(512);
    testing::on_new_thread([&] {
      if (rng_internal::thread_state_create() != pooled) std::abort();  // the pooled one
      fill(bytes.data(), bytes.size());
    });
    return bytes;
  };
  const testing::Child child = testing::fork_child(draw_on_new_thread);
  const Bytes parent = draw_on_new_thread();
  return testing::shared_blocks(parent, testing::collect(child));
}

TEST_F(StatePool, AForkChildWipesItsPooledStates) {
  EXPECT_EQ(blocks_a_fork_child_shares_from_the_pool(), 0u);
}

TEST_F(StatePool, NegativeControlAForkChildThatKeepsItsPoolServesItsParentsOutput) {
  rng_internal::g_test_hooks.disable_pool_wipe_in_child = true;
  EXPECT_EQ(blocks_a_fork_child_shares_from_the_pool(), 32u);
}

TEST_F(StatePool, WithoutThePoolStatesAreUnmapped) {
  rng_internal::g_test_hooks.disable_state_pool = true;
  const uint64_t live = rng_internal::live_thread_states();
  testing::on_new_thread([] { fill(Bytes(16).data(), 16); });
  EXPECT_EQ(rng_internal::live_thread_states(), live);
}

}  // namespace
}  // namespace snapsafe
