// The generation sources on their own: SysGenID (mmap and syscall paths), the counter
// file and its tool functions, VMClock's seqlock including a torn writer and a wedged
// seqlock, and what the draw does when a source cannot tell the generation.
#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/generation.h"
#include "genid/select.h"
#include "genid/sysgenid.h"
#include "genid/vmclock.h"
#include "rng/fill.h"
#include "rng/internal/vdso_getrandom.h"
#include "rng/status.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using testing::Simulated;
using testing::SimulatedSource;

class EverySource : public ::testing::TestWithParam<Simulated> {};

TEST_P(EverySource, ReadsTheGenerationAndSeesEveryBump) {
  SimulatedSource source(GetParam());
  source.activate();
  EXPECT_NE(status().source, SourceKind::kKernel) << status().to_string();
  genid::Generation last = genid::read_generation();
  for (int i = 0; i < 100; ++i) {
    source.bump();
    const genid::Generation now = genid::read_generation();
    ASSERT_NE(now, last);
    ASSERT_NE(now, genid::kGenerationUnknown);
    last = now;
  }
}

TEST_P(EverySource, EachBumpCausesExactlyOneReseedPerThread) {
  SimulatedSource source(GetParam());
  source.activate();
  testing::on_new_thread([&] {
    (void)random_u64();
    const uint64_t before = status().reseeds;
    for (int i = 0; i < 10; ++i) (void)random_u64();
    EXPECT_EQ(status().reseeds, before) << "no bump, no reseed";
    source.bump();
    (void)random_u64();
    (void)random_u64();
    EXPECT_EQ(status().reseeds, before + 1);
  });
}

INSTANTIATE_TEST_SUITE_P(All, EverySource,
                         ::testing::Values(Simulated::kSysgenidMmap, Simulated::kSysgenidSyscall,
                                           Simulated::kVmclock, Simulated::kCounterFile),
                         [](const auto& info) { return testing::simulated_name(info.param); });

// Saturation (genid/sysgenid.h): the device keeps its u32 at 4294967295 for good once
// there, so a source that reads it can never signal a VM clone again.
class SysgenidSaturation : public ::testing::TestWithParam<Simulated> {
 protected:
  void TearDown() override { genid::sysgenid_saturation_check_for_testing(true); }
};

std::string notes_of(const Status& s) {
  std::string notes;
  for (const std::string& note : s.notes) notes += note + "\n";
  return notes;
}

// Without the check: a saturated device was watched and buffered, and status() claimed
// "covers VM clone: yes" (the negative control below shows it).
TEST_P(SysgenidSaturation, ASaturatedDeviceIsRefusedAtOpen) {
  SimulatedSource source(GetParam());
  *reinterpret_cast<uint32_t*>(source.page()) = genid::kSysgenidSaturated;
  source.activate();
  const Status s = status();
  EXPECT_EQ(s.source, SourceKind::kKernel) << s.to_string();
  EXPECT_FALSE(s.buffered);
  EXPECT_NE(notes_of(s).find("generation 4294967295 is saturated"), std::string::npos)
      << s.to_string();
}

TEST_P(SysgenidSaturation, NegativeControlASaturatedDeviceClaimedVmCloneCoverage) {
  genid::sysgenid_saturation_check_for_testing(false);
  SimulatedSource source(GetParam());
  *reinterpret_cast<uint32_t*>(source.page()) = genid::kSysgenidSaturated;
  source.activate();
  const Status s = status();
  EXPECT_NE(s.source, SourceKind::kKernel);
  EXPECT_TRUE(s.buffered);
  EXPECT_TRUE(s.vm_clone.covered) << "the hazard: a counter that can never move again";
  EXPECT_EQ(genid::read_generation(), 0xffffffffull);  // zero-extended
}

// Reaching 4294967295 while watched is a change: every thread reseeds, and the reseed
// finds the source no longer valid: the selection is retired, every draw goes to the
// kernel, and status() says why.
TEST_P(SysgenidSaturation, ReachingSaturationRetiresTheSource) {
  SimulatedSource source(GetParam());
  *reinterpret_cast<uint32_t*>(source.page()) = genid::kSysgenidSaturated - 1;
  source.activate();
  ASSERT_TRUE(status().buffered) << status().to_string();
  EXPECT_EQ(genid::read_generation(), 0xfffffffeull);
  testing::on_new_thread([&] {
    (void)random_u64();
    source.bump();  // 4294967295
    const uint64_t reseeds = status().reseeds;
    (void)random_u64();
    EXPECT_EQ(status().reseeds, reseeds) << "nothing seeded under the saturated value";
  });
  const Status s = status();
  EXPECT_FALSE(s.buffered);
  EXPECT_NE(s.retired.find("generation 4294967295 is saturated"), std::string::npos)
      << s.to_string();
  EXPECT_NE(s.to_string().find("SATURATED: can no longer signal a VM clone"), std::string::npos)
      << s.to_string();
}

INSTANTIATE_TEST_SUITE_P(Modes, SysgenidSaturation,
                         ::testing::Values(Simulated::kSysgenidMmap, Simulated::kSysgenidSyscall),
                         [](const auto& info) { return testing::simulated_name(info.param); });

TEST(Sysgenid, BytesNextToTheCounterNeverHideAChange) {
  // The mmap check compares the page's first 8 bytes: the u32 and 4 bytes the device never
  // writes. Even if they held anything, a bump still changes the compared word.
  SimulatedSource source(Simulated::kSysgenidMmap);
  reinterpret_cast<uint32_t*>(source.page())[1] = 0xdeadbeefu;
  source.activate();
  genid::Generation last = genid::read_generation();
  for (int i = 0; i < 10; ++i) {
    source.bump();
    ASSERT_NE(genid::read_generation(), last);
    last = genid::read_generation();
  }
}

// A fork child must not share the parent's open file description of /dev/sysgenid: the
// "acknowledged" state lives there, and one process's acknowledgement would hide a new
// generation from the other's read(). File status flags live there too, which makes the
// sharing observable: the child sets O_APPEND on its descriptor, the parent's must not
// change.
bool parent_sees_childs_flag_change(int fd) {
  const testing::Bytes done = testing::run_in_child([fd] {
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_APPEND) != 0) _exit(8);
    return testing::Bytes{1};
  });
  EXPECT_EQ(done.size(), 1u);
  return (fcntl(fd, F_GETFL) & O_APPEND) != 0;
}

TEST(Sysgenid, ForkChildOpensItsOwnDescriptor) {
  SimulatedSource source(Simulated::kSysgenidSyscall);
  source.activate();
  const int fd = genid::sysgenid_descriptor_for_testing();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(parent_sees_childs_flag_change(fd));
  (void)genid::read_generation();  // still readable in the parent
  EXPECT_NE(genid::read_generation(), genid::kGenerationUnknown);
}

TEST(Sysgenid, NegativeControlAnInheritedDescriptorIsShared) {
  const std::string path = testing::temp_path("plain");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(parent_sees_childs_flag_change(fd));  // what a fork does without the re-open
  close(fd);
}

TEST(CounterFile, CreateKeepsAnExistingValidFile) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  genid::Generation start = 0, generation = 0;
  ASSERT_EQ(genid::counter_file_read(path, &start), "");
  genid::Generation bumped = 0;
  ASSERT_EQ(genid::counter_file_bump(path, &bumped), "");
  ASSERT_EQ(genid::counter_file_bump(path, &bumped), "");
  EXPECT_NE(bumped, start);  // a fresh random generation each time, not +1
  ASSERT_EQ(genid::counter_file_create(path), "");
  ASSERT_EQ(genid::counter_file_read(path, &generation), "");
  EXPECT_EQ(generation, bumped) << "create must never reset a live generation";
}

TEST(CounterFile, ConcurrentBumpsAreAtomic) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  genid::Generation start = 0;
  ASSERT_EQ(genid::counter_file_read(path, &start), "");
  // Each bump stores a fresh random generation with a compare-and-swap (not +1): every
  // one of the 1000 is stored (all distinct, none the start), and the file ends at one.
  std::vector<genid::Generation> by_a, by_b;
  auto bumper = [&](std::vector<genid::Generation>* values) {
    genid::Generation g;
    for (int i = 0; i < 500; ++i) {
      ASSERT_EQ(genid::counter_file_bump(path, &g), "");
      values->push_back(g);
    }
  };
  std::thread a(bumper, &by_a), b(bumper, &by_b);
  a.join();
  b.join();
  std::set<genid::Generation> all(by_a.begin(), by_a.end());
  all.insert(by_b.begin(), by_b.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(all.count(start), 0u);
  genid::Generation generation = 0;
  ASSERT_EQ(genid::counter_file_read(path, &generation), "");
  EXPECT_TRUE(generation == by_a.back() || generation == by_b.back());
}

// VMClock seqlock. A hypervisor may write the 64-bit counter as two 32-bit halves.
void store_half(unsigned char* page, int half, uint32_t value) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(page + genid::kVmclockOffsetGeneration + 4 * half),
                   value, __ATOMIC_RELEASE);
}
uint32_t* seq_count(unsigned char* page) {
  return reinterpret_cast<uint32_t*>(page + genid::kVmclockOffsetSeqCount);
}

TEST(Vmclock, HalfWrittenValueIsNeverReturned) {
  SimulatedSource source(Simulated::kVmclock);
  unsigned char* page = source.page();
  store_half(page, 0, 0xAAAAAAAA);
  store_half(page, 1, 0xAAAAAAAA);
  __atomic_add_fetch(seq_count(page), 1, __ATOMIC_SEQ_CST);  // odd: writer at work...
  store_half(page, 0, 0x55555555);                           // ...stopped half-way
  const genid::Generation read = genid::vmclock_read_generation(page);
  EXPECT_EQ(read, genid::kGenerationUnknown) << "a wedged seqlock must not hang or guess";
  // Negative control: a reader that ignores the seqlock returns the torn value.
  genid::Generation raw;
  std::memcpy(&raw, page + genid::kVmclockOffsetGeneration, 8);
  EXPECT_EQ(raw, 0xAAAAAAAA55555555ull);
}

// A complete write landing between the reader's load of the value and its second load
// of the sequence count: the value it loaded is stale, and only the second read can tell.
unsigned char* g_writer_page = nullptr;
void write_between_loads() {
  genid::g_vmclock_between_loads_for_testing = nullptr;  // once
  __atomic_add_fetch(seq_count(g_writer_page), 1, __ATOMIC_SEQ_CST);
  store_half(g_writer_page, 0, 0x11111111);
  store_half(g_writer_page, 1, 0x22222222);
  __atomic_add_fetch(seq_count(g_writer_page), 1, __ATOMIC_SEQ_CST);
}

TEST(Vmclock, AWriteBetweenTheLoadsIsCaughtByTheSecondRead) {
  SimulatedSource source(Simulated::kVmclock);
  g_writer_page = source.page();
  genid::Generation before;
  std::memcpy(&before, g_writer_page + genid::kVmclockOffsetGeneration, 8);
  genid::g_vmclock_between_loads_for_testing = &write_between_loads;
  const genid::Generation read = genid::vmclock_read_generation(g_writer_page);
  genid::g_vmclock_between_loads_for_testing = nullptr;
  EXPECT_EQ(read, 0x2222222211111111ull) << "the retry returns the value after the write";
  // Negative control: what a reader without the second read returned, the old value, is
  // really stale now.
  EXPECT_NE(before, read);
}

TEST(Vmclock, ConcurrentTornWriterOnlyEverYieldsWholeValues) {
  SimulatedSource source(Simulated::kVmclock);
  unsigned char* page = source.page();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint32_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const uint32_t half = (i & 1) ? 0x55555555u : 0xAAAAAAAAu;
      __atomic_add_fetch(seq_count(page), 1, __ATOMIC_SEQ_CST);
      store_half(page, 0, half);
      store_half(page, 1, half);
      __atomic_add_fetch(seq_count(page), 1, __ATOMIC_SEQ_CST);
      for (int spin = 0; spin < 64; ++spin) __builtin_ia32_pause();  // a gap for readers
    }
  });
  // At least 200 000 reads and 100 whole values (bounded by time on a loaded machine).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int whole = 0;
  for (int i = 0; (i < 200000 || whole < 100) && std::chrono::steady_clock::now() < deadline; ++i) {
    const genid::Generation g = genid::vmclock_read_generation(page);
    if (g == genid::kGenerationUnknown) continue;  // busy writer: allowed, never a guess
    ASSERT_TRUE(g == 0xAAAAAAAAAAAAAAAAull || g == 0x5555555555555555ull || g == 0x1234)
        << std::hex << g;
    ++whole;
  }
  stop = true;
  writer.join();
  EXPECT_GT(whole, 0);
}

TEST(Vmclock, UnknownGenerationIsServedByTheKernelNotTheBuffer) {
  SimulatedSource source(Simulated::kVmclock);
  source.activate();
  testing::on_new_thread([&] {
    (void)random_u64();  // seeded and buffered
    const uint64_t reseeds = status().reseeds;
    __atomic_add_fetch(seq_count(source.page()), 1, __ATOMIC_SEQ_CST);  // wedge it odd
    std::set<uint64_t> values;
    for (int i = 0; i < 100; ++i) values.insert(random_u64());
    EXPECT_EQ(values.size(), 100u);
    EXPECT_EQ(status().reseeds, reseeds) << "no reseed under an unknown generation";
    EXPECT_EQ(rng_internal::t_state->remaining % 8, 0u);
    __atomic_add_fetch(seq_count(source.page()), 1, __ATOMIC_SEQ_CST);  // even again
    (void)random_u64();
  });
}

TEST(KernelMode, NoStateNoBuffer) {
  testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
  testing::on_new_thread([] {
    const uint64_t states = status().live_thread_states;
    std::set<uint64_t> values;
    for (int i = 0; i < 100; ++i) values.insert(random_u64());
    EXPECT_EQ(values.size(), 100u);
    EXPECT_EQ(rng_internal::t_state, nullptr);
    EXPECT_EQ(status().live_thread_states, states);
    EXPECT_FALSE(status().buffered);
  });
}

TEST(KernelMode, UsesTheVdsoGetrandomWhereTheKernelHasIt) {
  // Kernels 6.11+ export __vdso_getrandom; where it is missing the reason is stated.
  if (!rng_internal::vdso_getrandom_available()) {
    GTEST_SKIP() << "no vDSO getrandom here: " << rng_internal::vdso_getrandom_unavailable_reason();
  }
  EXPECT_EQ(status().kernel_interface, "vDSO getrandom");
  uint8_t a[64] = {}, b[64] = {};
  ASSERT_EQ(rng_internal::vdso_getrandom(a, sizeof a), 0);
  ASSERT_EQ(rng_internal::vdso_getrandom(b, sizeof b), 0);
  EXPECT_NE(std::memcmp(a, b, sizeof a), 0);
  // In a fork child its state (MAP_DROPPABLE) is wiped: the child gets other bytes.
  const testing::Bytes child = testing::run_in_child([] {
    testing::Bytes bytes(64);
    if (rng_internal::vdso_getrandom(bytes.data(), bytes.size()) != 0) _exit(7);
    return bytes;
  });
  uint8_t parent[64];
  ASSERT_EQ(rng_internal::vdso_getrandom(parent, sizeof parent), 0);
  EXPECT_NE(std::memcmp(child.data(), parent, 64), 0);
}

TEST(ForkOnlyUnsafe, IsOnlyByExplicitOptInAndSaysSo) {
  testing::use_source({{"SNAPSAFE_SOURCE", "fork-only-unsafe"}});
  const Status s = status();
  EXPECT_FALSE(s.snapshot_safe);
  EXPECT_TRUE(s.buffered);
  EXPECT_NE(s.to_string().find("NO (explicit fork-only opt-in)"), std::string::npos);
}

}  // namespace
}  // namespace snapsafe
