// Snapshot safety with every generation source, each with its negative control.
//
// A snapshot is simulated by fork() with fork detection switched off (a test-only hook:
// the state is mapped without MADV_WIPEONFORK), so parent and child hold byte-identical
// generator states, exactly like two clones restored from one snapshot. The generation
// is then bumped as the source's real writer would (SysGenID page, VMClock page, counter
// file), and both processes draw.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "capi/c_api.h"
#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/internal/test_hooks.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using testing::Bytes;
using testing::Simulated;
using testing::SimulatedSource;

constexpr size_t kDraws = 512;  // 16-byte draws per process: 8 KiB, more than one refill

// Through the C API's snapsafe_u64 (two per block) instead of fill(): its fast path is its
// own (draw.h, kReadByCall = false: a source read by a call goes to the slow path).
bool g_through_c_api = false;

Bytes draw_blocks() {
  Bytes bytes(kDraws * 16);
  for (size_t i = 0; i < kDraws; ++i) {
    if (!g_through_c_api) {
      fill(bytes.data() + 16 * i, 16);
      continue;
    }
    uint64_t words[2] = {};
    if (snapsafe_u64(&words[0]) != 0 || snapsafe_u64(&words[1]) != 0) std::abort();
    std::memcpy(bytes.data() + 16 * i, words, 16);
  }
  return bytes;
}

class Snapshot : public ::testing::TestWithParam<Simulated> {
 protected:
  void SetUp() override {
    source_ = std::make_unique<SimulatedSource>(GetParam());
    source_->activate();
    // fork() stands in for a restore: a restored clone keeps every byte, and no fork
    // handler runs in it (CRIU and VM restores do not call pthread_atfork handlers).
    rng_internal::g_test_hooks.disable_wipe_on_fork = true;
    rng_internal::g_test_hooks.disable_fork_handler = true;
  }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    g_through_c_api = false;
  }

  // Seeds a fresh thread's state, duplicates it with fork(), optionally bumps the
  // generation while both copies are stopped, then lets both draw. Returns the number
  // of 16-byte blocks the two copies share.
  size_t shared_blocks_after_clone(bool bump) {
    size_t shared = 0;
    testing::on_new_thread([&] {
      fill(Bytes(16).data(), 16);  // seed this thread's state
      int gate[2];
      ASSERT_EQ(pipe(gate), 0);
      testing::Child child = testing::fork_child([&] {
        char go;
        if (read(gate[0], &go, 1) != 1) _exit(5);  // wait until the "restore" is done
        return draw_blocks();
      });
      if (bump) source_->bump();  // the restore hook / hypervisor
      ASSERT_EQ(write(gate[1], "g", 1), 1);
      const Bytes parent = draw_blocks();
      const Bytes child_bytes = testing::collect(child);
      close(gate[0]);
      close(gate[1]);
      ASSERT_EQ(child_bytes.size(), parent.size());
      shared = testing::shared_blocks(parent, child_bytes);
    });
    return shared;
  }

  std::unique_ptr<SimulatedSource> source_;
};

TEST_P(Snapshot, BumpMakesClonesShareNoBlock) { EXPECT_EQ(shared_blocks_after_clone(true), 0u); }

TEST_P(Snapshot, NegativeControlWithoutBumpClonesRepeat) {
  // The hazard is real: two copies of one state, no generation change, same output.
  EXPECT_EQ(shared_blocks_after_clone(false), kDraws);
}

TEST_P(Snapshot, BumpMakesClonesShareNoBlockThroughTheCApi) {
  g_through_c_api = true;
  EXPECT_EQ(shared_blocks_after_clone(true), 0u);
}

TEST_P(Snapshot, NegativeControlWithoutBumpClonesRepeatThroughTheCApi) {
  g_through_c_api = true;
  EXPECT_EQ(shared_blocks_after_clone(false), kDraws);
}

// A snapshot landing inside a draw: between the generation check and the copy-out. The
// clone's draw must be redone from a fresh seed; its twin (the parent, which drew the
// same buffered bytes before any bump) keeps what it drew.
SimulatedSource* g_hook_source = nullptr;
void bump_once_after_check() {
  rng_internal::g_test_hooks.after_check = nullptr;
  g_hook_source->bump();
}
// The same inside a slow-path draw (a bulk request): after the output was produced,
// before the re-read.
void bump_once_after_slow_produce() {
  rng_internal::g_test_hooks.after_slow_produce = nullptr;
  g_hook_source->bump();
}

// The twin draws `size` bytes; the clone draws the same request with the bump injected.
Bytes parent_and_child_mid_draw(SimulatedSource* source, Bytes* child_out, size_t size = 16) {
  Bytes parent(size);
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);  // seed
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    testing::Child child = testing::fork_child([&] {
      char go;
      if (read(gate[0], &go, 1) != 1) _exit(5);
      g_hook_source = source;
      if (size > 1024) {
        rng_internal::g_test_hooks.after_slow_produce = &bump_once_after_slow_produce;
      } else {
        rng_internal::g_test_hooks.after_check = &bump_once_after_check;
      }
      Bytes bytes(size);
      fill(bytes.data(), bytes.size());
      return bytes;
    });
    fill(parent.data(), parent.size());  // the twin draws the next buffered block first
    ASSERT_EQ(write(gate[1], "g", 1), 1);
    *child_out = testing::collect(child);
    close(gate[0]);
    close(gate[1]);
  });
  return parent;
}

TEST_P(Snapshot, MidDrawBumpIsCaughtByTheReRead) {
  Bytes child;
  const Bytes parent = parent_and_child_mid_draw(source_.get(), &child);
  ASSERT_EQ(child.size(), 16u);
  EXPECT_NE(parent, child);
}

TEST_P(Snapshot, NegativeControlWithoutReReadMidDrawBumpRepeats) {
  rng_internal::g_test_hooks.disable_recheck = true;
  Bytes child;
  const Bytes parent = parent_and_child_mid_draw(source_.get(), &child);
  EXPECT_EQ(parent, child);  // the clone returned its twin's bytes
}

TEST_P(Snapshot, MidBulkDrawBumpIsCaughtByTheSlowPathReRead) {
  Bytes child;
  const Bytes parent = parent_and_child_mid_draw(source_.get(), &child, 2048);
  ASSERT_EQ(child.size(), 2048u);
  EXPECT_EQ(testing::shared_blocks(parent, child), 0u);
}

TEST_P(Snapshot, NegativeControlWithoutTheSlowPathReReadABulkDrawRepeats) {
  rng_internal::g_test_hooks.disable_recheck = true;
  Bytes child;
  const Bytes parent = parent_and_child_mid_draw(source_.get(), &child, 2048);
  EXPECT_EQ(parent, child);
}

INSTANTIATE_TEST_SUITE_P(AllSources, Snapshot,
                         ::testing::Values(Simulated::kSysgenidMmap, Simulated::kSysgenidSyscall,
                                           Simulated::kVmclock, Simulated::kCounterFile),
                         [](const auto& info) { return testing::simulated_name(info.param); });

}  // namespace
}  // namespace snapsafe

namespace snapsafe {
namespace {

// After a reseed the buffer holds nothing of the state from before the generation change:
// unread bytes are wiped, not merely skipped. Control: right before the bump those bytes
// are there (nonzero), so the check can fail.
TEST(ReseedWipe, UnreadBytesOfTheOldStateAreGone) {
  const std::string counter = testing::use_fresh_counter_file();
  testing::on_new_thread([&] {
    testing::Bytes bytes(rng_internal::kFirstRefillBytes);
    fill(bytes.data(), bytes.size());  // uses up the reseed's short first refill
    fill(bytes.data(), 16);            // a full refill: 8112 unread bytes now
    const rng_internal::ThreadState* st = rng_internal::t_state;
    ASSERT_EQ(st->remaining, rng_internal::kBufferBytes - 16);
    const size_t untouched_by_first_refill =
        rng_internal::kBufferBytes - rng_internal::kFirstRefillBytes;
    size_t nonzero = 0;
    for (size_t i = 0; i < untouched_by_first_refill; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_GT(nonzero, untouched_by_first_refill / 2) << "control: old unread bytes present";
    testing::bump(counter);
    fill(bytes.data(), 16);  // reseeds
    nonzero = 0;
    for (size_t i = 0; i < untouched_by_first_refill; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_EQ(nonzero, 0u);
  });
}

// The check before the copy: no byte of a state seeded under another generation reaches
// the caller's memory, not even for the moment before the re-read would send the draw to
// the slow path (which overwrites it). Seen from the after_copy hook, which runs only when
// the fast path copied. Control: the same hook sees the copy on an ordinary draw.
uint8_t* g_caller_buffer = nullptr;
testing::Bytes g_seen_at_copy;
void record_caller_buffer() { g_seen_at_copy.assign(g_caller_buffer, g_caller_buffer + 16); }

TEST(StaleState, ItsBytesNeverReachTheCallerEvenTransiently) {
  const std::string counter = testing::use_fresh_counter_file();
  testing::on_new_thread([&] {
    testing::Bytes bytes(16);
    fill(bytes.data(), 16);  // seeded
    const rng_internal::ThreadState* st = rng_internal::t_state;
    const testing::Bytes stale(st->buffer + (rng_internal::kBufferBytes - st->remaining),
                               st->buffer + (rng_internal::kBufferBytes - st->remaining) + 16);
    g_caller_buffer = bytes.data();
    rng_internal::g_test_hooks.after_copy = &record_caller_buffer;
    g_seen_at_copy.clear();
    fill(bytes.data(), 16);  // control: an ordinary fast-path draw copies, and is seen
    EXPECT_EQ(g_seen_at_copy, stale) << "control: the hook sees what the fast path copies";
    const testing::Bytes stale_next(st->buffer + (rng_internal::kBufferBytes - st->remaining),
                                    st->buffer + (rng_internal::kBufferBytes - st->remaining) + 16);
    testing::bump(counter);
    g_seen_at_copy.clear();
    fill(bytes.data(), 16);  // must go to the slow path before copying anything
    rng_internal::g_test_hooks.after_copy = nullptr;
    EXPECT_NE(g_seen_at_copy, stale_next) << "a stale state's bytes reached the caller";
    EXPECT_NE(bytes, stale_next);
  });
}

}  // namespace
}  // namespace snapsafe
