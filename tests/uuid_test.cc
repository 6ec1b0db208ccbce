// UUIDs: version 4 and 7 layout, text and strict parsing, ordering and hashing, and
// version 7's monotonic counter under a frozen, a backwards and an overflowing clock, and
// across a simulated snapshot and a fork, each with its negative control.
//
// A snapshot is simulated as in snapshot_test: fork() with the generator's fork
// detection switched off (a restored clone keeps every byte and runs no fork handler),
// then a generation bump. The ID layer's own fork check is switched off too
// (ids_testing::g_hooks.ignore_fork), so only its generation check can separate the
// copies. The v7 clock is replaced by a frozen one: clones restored from one snapshot
// can read the same time.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <thread>
#include <unordered_set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ids/ids.h"
#include "ids/internal/epoch.h"
#include "rng/internal/test_hooks.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;
using testing::Simulated;
using testing::SimulatedSource;

constexpr uint64_t kFrozenMs = 0x0190'f4e2'7c1a;  // 2024-07-22, a 48-bit value
uint64_t g_clock_ms = kFrozenMs;
uint64_t test_clock() { return g_clock_ms; }

uint64_t ts_of(const Uuid& uuid) { return uuid.unix_ts_ms().value(); }
uint32_t counter_of(const Uuid& uuid) {
  return static_cast<uint32_t>((uuid[6] & 0x0f) << 18 | uuid[7] << 10 | (uuid[8] & 0x3f) << 4 |
                               uuid[9] >> 4);
}
// The part of a v7 UUID that is not fresh randomness: timestamp and counter (76 bits).
std::string ordered_part(const Uuid& uuid) {
  return std::string(reinterpret_cast<const char*>(uuid.data()), 9) + char(uuid[9] & 0xf0);
}

class UuidTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    ids_testing::g_hooks = {};
    g_clock_ms = kFrozenMs;
  }
  void freeze_clock(uint64_t ms = kFrozenMs) {
    g_clock_ms = ms;
    ids_testing::g_hooks.unix_ms = &test_clock;
  }
};

TEST_F(UuidTest, V4AndV7HaveTheirVersionAndVariant) {
  for (int i = 0; i < 1000; ++i) {
    const Uuid v4 = uuid_v4(), v7 = uuid_v7();
    ASSERT_EQ(v4.version(), 4);
    ASSERT_EQ(v4.variant(), UuidVariant::kRfc9562);
    ASSERT_EQ(v7.version(), 7);
    ASSERT_EQ(v7.variant(), UuidVariant::kRfc9562);
  }
}

TEST_F(UuidTest, V7TimestampIsTheClock) {
  const auto now_ms = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  };
  const uint64_t before = now_ms();
  const Uuid uuid = uuid_v7();
  const uint64_t after = now_ms();
  EXPECT_GE(ts_of(uuid), before);
  EXPECT_LE(ts_of(uuid), after + 1);  // +1: a new thread's first tick may borrow ahead
  EXPECT_EQ(uuid_v4().unix_ts_ms(), std::nullopt);
}

TEST_F(UuidTest, Rfc9562ExampleVectors) {
  // RFC 9562 Appendix A.6 (v7) and A.3 (v4).
  const UuidParseResult v7 = parse_uuid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 7);
  ASSERT_TRUE(v7) << v7.error;
  EXPECT_EQ(v7.uuid.unix_ts_ms(), 0x017F22E279B0u);  // Tuesday, February 22, 2022 2:22:22 PM
  EXPECT_EQ(v7.uuid.to_string(), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  const UuidParseResult v4 = parse_uuid("919108f7-52d1-4320-9bac-f847db4148a8", 4);
  ASSERT_TRUE(v4) << v4.error;
  EXPECT_EQ(v4.uuid[0], 0x91);
  EXPECT_EQ(v4.uuid[15], 0xa8);
}

TEST_F(UuidTest, TextRoundTripsInEitherCase) {
  for (int i = 0; i < 1000; ++i) {
    for (const Uuid& uuid : {uuid_v4(), uuid_v7()}) {
      std::string text = uuid.to_string();
      ASSERT_EQ(text.size(), 36u);
      ASSERT_EQ(text, uuid_to_string(uuid));
      ASSERT_EQ(parse_uuid(text, uuid.version()).uuid, uuid);
      std::transform(text.begin(), text.end(), text.begin(), ::toupper);
      const UuidParseResult upper = parse_uuid(text);
      ASSERT_TRUE(upper) << upper.error;
      ASSERT_EQ(upper.uuid, uuid);
    }
  }
}

TEST_F(UuidTest, NilAndMax) {
  EXPECT_EQ(Uuid::nil().to_string(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(Uuid::max().to_string(), "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_TRUE(Uuid::nil().is_nil());
  EXPECT_TRUE(Uuid::max().is_max());
  EXPECT_FALSE(uuid_v4().is_nil());
  EXPECT_EQ(Uuid::nil().variant(), UuidVariant::kNcs);
  EXPECT_EQ(Uuid::max().variant(), UuidVariant::kFuture);
  EXPECT_EQ(parse_uuid("00000000-0000-0000-0000-000000000000").uuid, Uuid::nil());
  EXPECT_EQ(parse_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF").uuid, Uuid::max());
  EXPECT_LT(Uuid::nil(), uuid_v4());
  EXPECT_LT(uuid_v7(), Uuid::max());
  Uuid microsoft{};
  microsoft[8] = 0xc0;
  EXPECT_EQ(microsoft.variant(), UuidVariant::kMicrosoft);
  const Uuid braced = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x42, 0xd3,
                       0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
  EXPECT_EQ(braced.to_string(), "123e4567-e89b-42d3-a456-426614174000");
}

// Every kind of malformed text, each with the message that says what and where.
TEST_F(UuidTest, ParseRejectsMalformedTextWithAClearError) {
  const struct {
    std::string text;
    std::string message;
  } cases[] = {
      {"", "36 characters (8-4-4-4-12 hex digits), got 0"},
      {"123e4567-e89b-42d3-a456-42661417400", "got 35"},
      {"123e4567-e89b-42d3-a456-4266141740000", "got 37"},
      {"{123e4567-e89b-42d3-a456-426614174000}", "got 38"},
      {"urn:uuid:123e4567-e89b-42d3-a456-426614174000", "got 45"},
      {"123e4567e89b42d3a456426614174000", "got 32"},
      {"g23e4567-e89b-42d3-a456-426614174000", "not a hex digit at offset 0: 'g'"},
      {"123e4567-e89b-42d3-a456-42661417400z", "not a hex digit at offset 35: 'z'"},
      {"123e4567-e89b-42d3-a456 426614174000", "expected '-' at offset 23, got ' '"},
      {"123e456-7e89b-42d3-a456-426614174000", "misplaced '-' at offset 7"},
      {"123e4567-e89b-42d3-a4564-26614174000", "expected '-' at offset 23, got '4'"},
      {"123e4567+e89b-42d3-a456-426614174000", "expected '-' at offset 8, got '+'"},
      {"123e4567-e89b-42d3-a456-42661417400\xff", "offset 35: \\xff"},
      {std::string("123e4567-e89b-42d3-a456-4266141\0"
                   "4000",
                   36),
       "offset 31: \\x00"},
      {" 23e4567-e89b-42d3-a456-426614174000", "not a hex digit at offset 0: ' '"},
  };
  for (const auto& c : cases) {
    const UuidParseResult result = parse_uuid(c.text);
    EXPECT_FALSE(result) << c.text;
    EXPECT_THAT(result.error, HasSubstr(c.message)) << c.text;
    EXPECT_EQ(result.uuid, Uuid::nil());
  }
}

TEST_F(UuidTest, ParseChecksVersionAndVariantWhenAsked) {
  const std::string v4 = "919108f7-52d1-4320-9bac-f847db4148a8";
  EXPECT_TRUE(parse_uuid(v4, 4));
  EXPECT_THAT(parse_uuid(v4, 7).error, HasSubstr("expected a version 7 UUID, got version 4"));
  const std::string ncs = "919108f7-52d1-4320-7bac-f847db4148a8";  // variant 0xxx
  EXPECT_TRUE(parse_uuid(ncs));                                    // no version asked
  EXPECT_THAT(parse_uuid(ncs, 4).error, HasSubstr("not the RFC 9562 variant"));
  EXPECT_THAT(parse_uuid(ncs, 4).error, HasSubstr("got '7'"));
  EXPECT_THAT(parse_uuid("00000000-0000-0000-0000-000000000000", 4).error, HasSubstr("variant"));
  for (int bad : {0, 9, -1, 1000}) {
    EXPECT_THAT(parse_uuid(v4, bad).error, HasSubstr("expected version must be 1..8")) << bad;
  }
  // Malformed text is reported as such, before any version check.
  EXPECT_THAT(parse_uuid("nope", 4).error, HasSubstr("got 4"));
}

TEST_F(UuidTest, ComparisonAndHash) {
  std::vector<Uuid> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(i % 2 ? uuid_v4() : uuid_v7());
  std::unordered_set<Uuid> set(ids.begin(), ids.end());
  EXPECT_EQ(set.size(), ids.size());
  std::set<size_t> hashes;
  for (const Uuid& id : ids) hashes.insert(std::hash<Uuid>()(id));
  EXPECT_GT(hashes.size(), ids.size() - 2);  // 64-bit hashes of distinct UUIDs
  const Uuid a = ids[0];
  Uuid b = a;
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::hash<Uuid>()(a), std::hash<Uuid>()(b));
  EXPECT_EQ(a <=> b, std::strong_ordering::equal);
  b[15] ^= 1;
  EXPECT_NE(a, b);
  // Byte order is text order.
  std::sort(ids.begin(), ids.end());
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1].to_string(), ids[i].to_string());
}

TEST_F(UuidTest, V7IsStrictlyIncreasingOnOneThread) {
  Uuid last = uuid_v7();
  for (int i = 0; i < 200000; ++i) {
    const Uuid next = uuid_v7();
    ASSERT_LT(last, next);
    last = next;
  }
}

TEST_F(UuidTest, V7WithinOneMillisecondCountsUpByOne) {
  testing::on_new_thread([&] {
    freeze_clock();
    Uuid last = uuid_v7();
    EXPECT_EQ(ts_of(last), kFrozenMs);
    EXPECT_LT(counter_of(last), 1u << 21);  // a tick starts with the counter's top bit 0
    for (int i = 0; i < 1000; ++i) {
      const Uuid next = uuid_v7();
      ASSERT_EQ(ts_of(next), kFrozenMs);
      ASSERT_EQ(counter_of(next), counter_of(last) + 1);
      ASSERT_EQ(counter_of(next), ids_testing::v7_counter_for_testing());
      ASSERT_LT(last, next);
      last = next;
    }
    g_clock_ms = kFrozenMs + 1;  // a new tick: a random counter again
    const Uuid tick = uuid_v7();
    EXPECT_EQ(ts_of(tick), kFrozenMs + 1);
    EXPECT_LT(counter_of(tick), 1u << 21);
    EXPECT_LT(last, tick);
  });
}

TEST_F(UuidTest, V7ClockGoingBackwardsKeepsTheLastTimestamp) {
  testing::on_new_thread([&] {
    freeze_clock();
    const Uuid first = uuid_v7();
    g_clock_ms = kFrozenMs - 5000;  // NTP steps the clock back 5 s
    Uuid last = first;
    for (int i = 0; i < 100; ++i) {
      const Uuid next = uuid_v7();
      ASSERT_EQ(ts_of(next), kFrozenMs);
      ASSERT_EQ(counter_of(next), counter_of(last) + 1);
      ASSERT_LT(last, next);
      last = next;
    }
    g_clock_ms = kFrozenMs + 1;  // caught up
    EXPECT_EQ(ts_of(uuid_v7()), kFrozenMs + 1);
  });
}

TEST_F(UuidTest, V7CounterOverflowBorrowsTheNextMillisecond) {
  testing::on_new_thread([&] {
    freeze_clock();
    Uuid last = uuid_v7();
    // At most 2^22 UUIDs until the 22-bit counter overflows.
    size_t overflows = 0;
    for (uint32_t i = 0; i < (1u << 22) + 1 && overflows == 0; ++i) {
      const Uuid next = uuid_v7();
      ASSERT_LT(last, next);
      if (ts_of(next) != ts_of(last)) {
        ++overflows;
        EXPECT_EQ(counter_of(last), (1u << 22) - 1);
        EXPECT_EQ(ts_of(next), kFrozenMs + 1);  // ahead of the frozen clock
        EXPECT_LT(counter_of(next), 1u << 21);
      }
      last = next;
    }
    EXPECT_EQ(overflows, 1u);
    EXPECT_EQ(ts_of(uuid_v7()), kFrozenMs + 1);  // the clock has not caught up: stays ahead
  });
}

TEST_F(UuidTest, V7ThreadsNeverCollide) {
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::vector<Uuid>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) per_thread[t].push_back(uuid_v7());
    });
  }
  for (auto& thread : threads) thread.join();
  std::unordered_set<Uuid> all;
  for (const auto& ids : per_thread) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads} * kEach);
}

// ---- Clones and forks ----

constexpr size_t kIds = 256;

Bytes v7_ids(size_t count) {
  Bytes bytes;
  for (size_t i = 0; i < count; ++i) {
    const Uuid uuid = uuid_v7();
    bytes.insert(bytes.end(), uuid.begin(), uuid.end());
  }
  return bytes;
}

std::vector<Uuid> as_uuids(const Bytes& bytes) {
  std::vector<Uuid> out(bytes.size() / 16);
  for (size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), bytes.data() + 16 * i, 16);
  return out;
}

struct CloneOutcome {
  size_t shared_ids = 0;                 // whole UUIDs in both copies
  size_t lockstep = 0;                   // positions i where both copies' timestamp+counter match
  uint64_t parent_ts = 0, child_ts = 0;  // the first post-clone timestamp in each copy
};

// Seeds a fresh thread's v7 state under a frozen clock, duplicates the process with
// fork() (the child waits), runs `between` (a restore hook: the bump) and lets both
// copies make kIds UUIDs.
CloneOutcome clone_and_draw(const std::function<void()>& between) {
  CloneOutcome outcome;
  testing::on_new_thread([&] {
    const Uuid before = uuid_v7();  // seeds this thread's state: counter c at kFrozenMs
    ASSERT_EQ(ts_of(before), kFrozenMs);
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    testing::Child child = testing::fork_child([&] {
      char go;
      if (read(gate[0], &go, 1) != 1) _exit(5);
      return v7_ids(kIds);
    });
    between();
    ASSERT_EQ(write(gate[1], "g", 1), 1);
    const std::vector<Uuid> parent = as_uuids(v7_ids(kIds));
    const std::vector<Uuid> child_ids = as_uuids(testing::collect(child));
    close(gate[0]);
    close(gate[1]);
    ASSERT_EQ(child_ids.size(), kIds);
    for (size_t i = 0; i < kIds; ++i) {
      ASSERT_LT(before, parent[i]);  // each copy still increasing
      ASSERT_LT(before, child_ids[i]);
      outcome.lockstep += ordered_part(parent[i]) == ordered_part(child_ids[i]);
    }
    const std::set<Uuid> parent_set(parent.begin(), parent.end());
    for (const Uuid& id : child_ids) outcome.shared_ids += parent_set.count(id);
    outcome.parent_ts = ts_of(parent[0]);
    outcome.child_ts = ts_of(child_ids[0]);
  });
  return outcome;
}

class V7Snapshot : public ::testing::TestWithParam<Simulated> {
 protected:
  void SetUp() override {
    source_ = std::make_unique<SimulatedSource>(GetParam());
    source_->activate();
    rng_internal::g_test_hooks.disable_wipe_on_fork = true;  // a restore, not a fork
    rng_internal::g_test_hooks.disable_fork_handler = true;
    ids_testing::g_hooks.ignore_fork = true;
    ids_testing::g_hooks.unix_ms = &test_clock;  // both clones read the same time
    g_clock_ms = kFrozenMs;
  }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    ids_testing::g_hooks = {};
  }
  std::unique_ptr<SimulatedSource> source_;
};

TEST_P(V7Snapshot, ClonesWithAFrozenClockDiverge) {
  const CloneOutcome outcome = clone_and_draw([&] { source_->bump(); });
  EXPECT_EQ(outcome.shared_ids, 0u);
  // Each copy saw the new generation and started a new tick with a random counter
  // (equal starts: probability 2^-21).
  EXPECT_EQ(outcome.parent_ts, kFrozenMs + 1);
  EXPECT_EQ(outcome.child_ts, kFrozenMs + 1);
  EXPECT_LT(outcome.lockstep, kIds);
}

TEST_P(V7Snapshot, NegativeControlWithoutTheGenerationCheckTheCountersRepeat) {
  ids_testing::g_hooks.ignore_generation = true;
  const CloneOutcome outcome = clone_and_draw([&] { source_->bump(); });
  // Both clones continue the same counter at the same timestamp: every UUID's 76
  // ordered bits repeat in the twin. Only the 52 random bits drawn after the restore
  // (the generator itself reseeded on the bump) still separate them.
  EXPECT_EQ(outcome.lockstep, kIds);
  EXPECT_EQ(outcome.parent_ts, kFrozenMs);
  EXPECT_EQ(outcome.child_ts, kFrozenMs);
  EXPECT_EQ(outcome.shared_ids, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllSources, V7Snapshot,
                         ::testing::Values(Simulated::kSysgenidMmap, Simulated::kSysgenidSyscall,
                                           Simulated::kVmclock, Simulated::kCounterFile),
                         [](const auto& info) { return testing::simulated_name(info.param); });

// A real fork (the generator's own fork detection on): the child's first UUID starts a
// new tick with its own random counter.
TEST_F(UuidTest, ForkChildDiverges) {
  freeze_clock();
  const CloneOutcome outcome = clone_and_draw([] {});
  EXPECT_EQ(outcome.shared_ids, 0u);
  EXPECT_EQ(outcome.parent_ts, kFrozenMs);     // the parent just counts on
  EXPECT_EQ(outcome.child_ts, kFrozenMs + 1);  // the child re-randomised
  EXPECT_LT(outcome.lockstep, kIds);
}

TEST_F(UuidTest, NegativeControlWithoutTheForkCheckTheCountersRepeat) {
  freeze_clock();
  ids_testing::g_hooks.ignore_fork = true;
  const CloneOutcome outcome = clone_and_draw([] {});
  EXPECT_EQ(outcome.lockstep, kIds);
  EXPECT_EQ(outcome.child_ts, kFrozenMs);
  EXPECT_EQ(outcome.shared_ids, 0u);  // the generator's fork-safe random bits still differ
}

// A generation that cannot be read (a VMClock seqlock wedged odd) is no evidence of a
// change: the counter goes on. A change that happens meanwhile is seen once it reads again,
// and no change is invented when it reads the same as before.
TEST_F(UuidTest, UnreadableGenerationIsNotAChangeButAChangeMeanwhileIsSeen) {
  SimulatedSource source(Simulated::kVmclock);
  source.activate();
  auto* seq = reinterpret_cast<uint32_t*>(source.page() + genid::kVmclockOffsetSeqCount);
  auto* generation = reinterpret_cast<uint64_t*>(source.page() + genid::kVmclockOffsetGeneration);
  testing::on_new_thread([&] {
    freeze_clock();
    const Uuid a = uuid_v7();
    __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // odd: unreadable
    ASSERT_EQ(genid::read_generation(), genid::kGenerationUnknown);
    const Uuid b = uuid_v7();
    EXPECT_EQ(ts_of(b), kFrozenMs);
    EXPECT_EQ(counter_of(b), counter_of(a) + 1);
    __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // readable again, the same generation
    const Uuid c = uuid_v7();
    EXPECT_EQ(ts_of(c), kFrozenMs);  // no invented change
    EXPECT_EQ(counter_of(c), counter_of(b) + 1);
    __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // unreadable, and it changes meanwhile
    (void)uuid_v7();
    __atomic_store_n(generation, *generation + 1000, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);
    const Uuid d = uuid_v7();
    EXPECT_EQ(ts_of(d), kFrozenMs + 1);  // seen: re-randomised on a new tick
    EXPECT_LT(c, d);
  });
}

// The fork token every ID state is stamped with: constant in a process, different in a
// fork child.
TEST_F(UuidTest, ForkTokenChangesInEveryChildAndNeverRepeatsTheParents) {
  const uint64_t parent = ids_internal::fork_token();
  EXPECT_NE(parent, 0u);
  EXPECT_EQ(ids_internal::fork_token(), parent);
  const Bytes child = testing::run_in_child([] {
    const uint64_t token = ids_internal::fork_token();
    Bytes out(8);
    std::memcpy(out.data(), &token, 8);
    return out;
  });
  uint64_t child_token;
  std::memcpy(&child_token, child.data(), 8);
  EXPECT_NE(child_token, parent);
  EXPECT_NE(child_token, 0u);
}

}  // namespace
}  // namespace snapsafe
