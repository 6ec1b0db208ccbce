// Which sources a process watches (genid/select.h) and what status() then claims:
//  - every source found is watched on every draw, so a container in a VM is covered
//    against a process restore (counter file bumped) and a VM clone (VMClock moves);
//    each alone is caught, and without a bump the clones repeat (negative control);
//  - a counter file is relied on only when named (SNAPSAFE_COUNTER_FILE), never because
//    a file happens to exist;
//  - status() names each watched source and says which events are covered.
#include <gtest/gtest.h>

#include <memory>

#include "genid/select.h"
#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/status.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using testing::Bytes;
using testing::Simulated;
using testing::SimulatedSource;

class Selection : public ::testing::Test {
 protected:
  void SetUp() override {
    vmclock_ = std::make_unique<SimulatedSource>(Simulated::kVmclock);
    counter_ = std::make_unique<SimulatedSource>(Simulated::kCounterFile);
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }

  // auto mode with a VMClock device and, optionally, a named counter file.
  void use_auto(bool name_counter_file) {
    std::vector<std::pair<std::string, std::string>> settings = {
        {"SNAPSAFE_SOURCE", "auto"},
        {"SNAPSAFE_VMCLOCK_PATH", vmclock_->path()},
        {"SNAPSAFE_SYSGENID_PATH", "/nonexistent/sysgenid"}};
    if (name_counter_file) settings.push_back({"SNAPSAFE_COUNTER_FILE", counter_->path()});
    testing::use_source(settings);
  }

  // A snapshot clone (fork with every fork guard off: a restore runs none), `bump` run
  // while both copies wait; returns how many 16-byte blocks the two then share.
  size_t shared_blocks_after_clone(const std::function<void()>& bump) {
    rng_internal::g_test_hooks.disable_wipe_on_fork = true;
    rng_internal::g_test_hooks.disable_fork_handler = true;
    size_t shared = 0;
    testing::on_new_thread([&] {
      fill(Bytes(16).data(), 16);
      int gate[2];
      ASSERT_EQ(pipe(gate), 0);
      testing::Child child = testing::fork_child([&] {
        char go;
        if (read(gate[0], &go, 1) != 1) _exit(5);
        Bytes bytes(256 * 16);
        fill(bytes.data(), bytes.size());
        return bytes;
      });
      if (bump) bump();
      ASSERT_EQ(write(gate[1], "g", 1), 1);
      Bytes mine(256 * 16);
      fill(mine.data(), mine.size());
      shared = testing::shared_blocks(mine, testing::collect(child));
      close(gate[0]);
      close(gate[1]);
    });
    return shared;
  }

  std::unique_ptr<SimulatedSource> vmclock_, counter_;
};

TEST_F(Selection, AutoWatchesEverySourceItFinds) {
  use_auto(/*name_counter_file=*/true);
  const Status s = status();
  ASSERT_EQ(s.watched.size(), 2u) << s.to_string();
  EXPECT_EQ(s.watched[0].name, "vmclock");
  EXPECT_EQ(s.watched[1].name, "counter-file");
  EXPECT_TRUE(s.buffered);
  EXPECT_TRUE(s.vm_clone.covered) << s.to_string();
  EXPECT_TRUE(s.process_restore.covered) << s.to_string();
  EXPECT_FALSE(s.cloned_kernel_rng.covered) << "buffered: nothing signals a cloned kernel";
}

TEST_F(Selection, EitherSourceMovingSeparatesTheClones) {
  use_auto(/*name_counter_file=*/true);
  EXPECT_EQ(shared_blocks_after_clone([&] { counter_->bump(); }), 0u) << "process restore";
  EXPECT_EQ(shared_blocks_after_clone([&] { vmclock_->bump(); }), 0u) << "VM clone";
}

TEST_F(Selection, NegativeControlWithoutABumpTheClonesRepeat) {
  use_auto(/*name_counter_file=*/true);
  EXPECT_EQ(shared_blocks_after_clone(nullptr), 256u);
}

TEST_F(Selection, AVmSourceAloneDoesNotClaimProcessRestores) {
  use_auto(/*name_counter_file=*/false);
  const Status s = status();
  ASSERT_EQ(s.watched.size(), 1u) << s.to_string();
  EXPECT_TRUE(s.vm_clone.covered);
  EXPECT_FALSE(s.process_restore.covered) << s.to_string();
}

TEST_F(Selection, ACounterFileAloneDoesNotClaimVmClones) {
  counter_->activate();
  const Status s = status();
  EXPECT_TRUE(s.process_restore.covered) << s.to_string();
  EXPECT_FALSE(s.vm_clone.covered) << s.to_string();
}

TEST_F(Selection, AnExplicitListWatchesEachNamedSource) {
  testing::use_source({{"SNAPSAFE_SOURCE", "vmclock,counter-file"},
                       {"SNAPSAFE_VMCLOCK_PATH", vmclock_->path()},
                       {"SNAPSAFE_COUNTER_FILE", counter_->path()}});
  EXPECT_EQ(status().watched.size(), 2u) << status().to_string();
}

TEST_F(Selection, AnUnknownNameInTheListMeansKernelBacked) {
  testing::use_source(
      {{"SNAPSAFE_SOURCE", "vmclock,bogus"}, {"SNAPSAFE_VMCLOCK_PATH", vmclock_->path()}});
  const Status s = status();
  EXPECT_FALSE(s.buffered);
  EXPECT_TRUE(s.watched.empty());
  EXPECT_NE(s.to_string().find("bogus"), std::string::npos) << s.to_string();
}

TEST_F(Selection, KernelBackedModeCoversEveryEventWithAHardwareRng) {
  testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
  const Status s = status();
  EXPECT_TRUE(s.fork.covered && s.vm_clone.covered && s.process_restore.covered);
  EXPECT_EQ(s.cloned_kernel_rng.covered, s.hardware_rng) << s.to_string();
}

}  // namespace
}  // namespace snapsafe
