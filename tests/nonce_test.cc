// Nonces: random nonces of any size, and the nonce sequence for one key: no repeat within
// the process (threads, exhaustion), and none across a simulated snapshot or a fork,
// each with its negative control. The snapshot is simulated as in snapshot_test (fork()
// with the generator's fork detection off, then a generation bump); see uuid_test.cc.
#include <set>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "ids/ids.h"
#include "ids/internal/epoch.h"
#include "rng/internal/test_hooks.h"
#include "tests/simulated_source.h"

namespace snapsafe {

// Sets the counter of a sequence (tests only).
struct NonceSequenceTestPeer {
  static void set_next_counter(NonceSequence& sequence, uint64_t counter) {
    sequence.next_counter_ = counter;
  }
};

namespace {

using testing::Bytes;
using testing::Simulated;
using testing::SimulatedSource;

uint32_t prefix_of(const Nonce96& n) {
  return uint32_t{n[0]} << 24 | uint32_t{n[1]} << 16 | uint32_t{n[2]} << 8 | n[3];
}
uint64_t counter_of(const Nonce96& n) {
  uint64_t value = 0;
  for (int i = 4; i < 12; ++i) value = value << 8 | n[i];
  return value;
}

class NonceTest : public ::testing::Test {
 protected:
  void SetUp() override { counter_file_ = testing::use_fresh_counter_file(); }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    ids_testing::g_hooks = {};
  }
  std::string counter_file_;
};

TEST_F(NonceTest, RandomNoncesOfAnySize) {
  EXPECT_EQ(nonce96().size(), 12u);
  EXPECT_NE(nonce96(), nonce96());
  EXPECT_EQ(nonce<24>().size(), 24u);
  EXPECT_TRUE(nonce(0).empty());
  EXPECT_EQ(nonce(1000).size(), 1000u);
  EXPECT_NE(nonce(32), nonce(32));
}

TEST_F(NonceTest, SequenceCountsUpUnderOnePrefix) {
  NonceSequence sequence;
  const Nonce96 first = sequence.next();
  EXPECT_LT(counter_of(first), uint64_t{1} << 32);  // a random start below 2^32
  Nonce96 last = first;
  for (int i = 0; i < 100000; ++i) {
    const Nonce96 n = sequence.next();
    ASSERT_EQ(prefix_of(n), prefix_of(first));
    ASSERT_EQ(counter_of(n), counter_of(last) + 1);
    last = n;
  }
  // A generation change (a restore hook's bump) in this same process: a new prefix, the
  // counter jumps ahead by 1..2^32 and keeps counting.
  testing::bump(counter_file_);
  const Nonce96 after = sequence.next();
  EXPECT_NE(prefix_of(after), prefix_of(first));  // equal with probability 2^-32
  EXPECT_GT(counter_of(after), counter_of(last));
  EXPECT_LE(counter_of(after), counter_of(last) + (uint64_t{1} << 32));
  EXPECT_EQ(counter_of(sequence.next()), counter_of(after) + 1);
}

TEST_F(NonceTest, TwoSequencesDiffer) {
  NonceSequence a, b;
  EXPECT_NE(a.next(), b.next());
}

TEST_F(NonceTest, ThreadsSharingASequenceNeverRepeat) {
  constexpr int kThreads = 4, kEach = 25000;
  NonceSequence sequence;
  std::vector<std::vector<Nonce96>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) seen[t].push_back(sequence.next());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<Nonce96> all;
  for (const auto& nonces : seen) all.insert(nonces.begin(), nonces.end());
  EXPECT_EQ(all.size(), size_t{kThreads} * kEach);
}

// With no generation source a clone cannot be seen: every nonce takes a new prefix and a
// random jump, and still never repeats within the process.
TEST_F(NonceTest, KernelBackedModeRerandomisesEveryNonce) {
  testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
  NonceSequence sequence;
  std::set<uint32_t> prefixes;
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    const Nonce96 n = sequence.next();
    prefixes.insert(prefix_of(n));
    ASSERT_GT(counter_of(n), last);
    last = counter_of(n);
  }
  EXPECT_GT(prefixes.size(), 990u);
}

// While the generation cannot be read (a VMClock seqlock wedged odd), a clone could go
// unseen: every nonce takes a new prefix and a jump. Readable again, counting resumes.
TEST_F(NonceTest, UnreadableGenerationRerandomisesEveryNonce) {
  SimulatedSource source(Simulated::kVmclock);
  source.activate();
  auto* seq = reinterpret_cast<uint32_t*>(source.page() + genid::kVmclockOffsetSeqCount);
  NonceSequence sequence;
  const Nonce96 a = sequence.next();
  __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // odd: unreadable
  const Nonce96 b = sequence.next(), c = sequence.next();
  EXPECT_NE(prefix_of(b), prefix_of(a));
  EXPECT_NE(prefix_of(c), prefix_of(b));
  EXPECT_GT(counter_of(b), counter_of(a) + 1);
  EXPECT_GT(counter_of(c), counter_of(b) + 1);
  __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // readable, unchanged
  const Nonce96 d = sequence.next(), e = sequence.next();
  EXPECT_EQ(prefix_of(e), prefix_of(d));
  EXPECT_EQ(counter_of(e), counter_of(d) + 1);
  EXPECT_GT(counter_of(d), counter_of(c));
}

TEST_F(NonceTest, ExhaustedSequenceThrowsInsteadOfWrapping) {
  NonceSequence sequence;
  (void)sequence.next();
  NonceSequenceTestPeer::set_next_counter(sequence, UINT64_MAX - 1);
  EXPECT_EQ(counter_of(sequence.next()), UINT64_MAX - 1);
  EXPECT_EQ(counter_of(sequence.next()), UINT64_MAX);
  EXPECT_THROW(sequence.next(), std::length_error);
  EXPECT_THROW(sequence.next(), std::length_error);
  // A jump that would pass the end exhausts the sequence too.
  NonceSequence near_end;
  (void)near_end.next();
  NonceSequenceTestPeer::set_next_counter(near_end, UINT64_MAX - 5);
  testing::bump(counter_file_);
  EXPECT_THROW(near_end.next(), std::length_error);  // fails with probability 5/2^32
}

// ---- Clones and forks ----

constexpr size_t kNonces = 256;

struct CloneOutcome {
  size_t shared = 0;                   // nonces in both copies
  uint64_t highest_before = 0;         // the last counter before the clone
  uint64_t lowest_after = UINT64_MAX;  // the lowest counter either copy used afterwards
};

Bytes draw_nonces(NonceSequence& sequence) {
  Bytes bytes;
  for (size_t i = 0; i < kNonces; ++i) {
    const Nonce96 n = sequence.next();
    bytes.insert(bytes.end(), n.begin(), n.end());
  }
  return bytes;
}

std::vector<Nonce96> as_nonces(const Bytes& bytes) {
  std::vector<Nonce96> out(bytes.size() / 12);
  for (size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), bytes.data() + 12 * i, 12);
  return out;
}

// One sequence used, the process duplicated by fork() (the child waits), `between` run
// (the restore hook's bump, or nothing), then both copies draw kNonces nonces.
CloneOutcome clone_and_draw(const std::function<void()>& between) {
  CloneOutcome outcome;
  testing::on_new_thread([&] {
    NonceSequence sequence;
    for (int i = 0; i < 10; ++i) outcome.highest_before = counter_of(sequence.next());
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    testing::Child child = testing::fork_child([&] {
      char go;
      if (read(gate[0], &go, 1) != 1) _exit(5);
      return draw_nonces(sequence);
    });
    between();
    ASSERT_EQ(write(gate[1], "g", 1), 1);
    const std::vector<Nonce96> parent = as_nonces(draw_nonces(sequence));
    const std::vector<Nonce96> child_nonces = as_nonces(testing::collect(child));
    close(gate[0]);
    close(gate[1]);
    ASSERT_EQ(child_nonces.size(), kNonces);
    const std::set<Nonce96> parent_set(parent.begin(), parent.end());
    for (const Nonce96& n : child_nonces) outcome.shared += parent_set.count(n);
    for (const auto* list : {&parent, &child_nonces}) {
      for (const Nonce96& n : *list)
        outcome.lowest_after = std::min(outcome.lowest_after, counter_of(n));
    }
  });
  return outcome;
}

class NonceSnapshot : public ::testing::TestWithParam<Simulated> {
 protected:
  void SetUp() override {
    source_ = std::make_unique<SimulatedSource>(GetParam());
    source_->activate();
    rng_internal::g_test_hooks.disable_wipe_on_fork = true;  // a restore, not a fork
    rng_internal::g_test_hooks.disable_fork_handler = true;
    ids_testing::g_hooks.ignore_fork = true;
  }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    ids_testing::g_hooks = {};
  }
  std::unique_ptr<SimulatedSource> source_;
};

TEST_P(NonceSnapshot, ClonesShareNoNonce) {
  const CloneOutcome outcome = clone_and_draw([&] { source_->bump(); });
  EXPECT_EQ(outcome.shared, 0u);
  EXPECT_GT(outcome.lowest_after, outcome.highest_before);  // nothing from before, either
}

TEST_P(NonceSnapshot, NegativeControlWithoutTheGenerationCheckClonesRepeatEveryNonce) {
  ids_testing::g_hooks.ignore_generation = true;
  EXPECT_EQ(clone_and_draw([&] { source_->bump(); }).shared, kNonces);
}

INSTANTIATE_TEST_SUITE_P(AllSources, NonceSnapshot,
                         ::testing::Values(Simulated::kSysgenidMmap, Simulated::kSysgenidSyscall,
                                           Simulated::kVmclock, Simulated::kCounterFile),
                         [](const auto& info) { return testing::simulated_name(info.param); });

TEST_F(NonceTest, ForkChildSharesNoNonce) {
  const CloneOutcome outcome = clone_and_draw([] {});
  EXPECT_EQ(outcome.shared, 0u);
}

TEST_F(NonceTest, NegativeControlWithoutTheForkCheckTheChildRepeatsEveryNonce) {
  ids_testing::g_hooks.ignore_fork = true;
  EXPECT_EQ(clone_and_draw([] {}).shared, kNonces);
}

}  // namespace
}  // namespace snapsafe
