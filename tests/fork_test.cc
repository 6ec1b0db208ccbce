// Real fork(): MADV_WIPEONFORK makes the child reseed before its first draw, with no
// generation change at all. Negative control: the same state mapped without
// WIPEONFORK (test-only hook) gives parent and child identical output.
#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

Bytes draw_blocks() {
  Bytes bytes(256 * 16);
  for (size_t i = 0; i < 256; ++i) fill(bytes.data() + 16 * i, 16);
  return bytes;
}

size_t shared_blocks_after_fork() {
  size_t shared = 0;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);  // seed: the buffer now holds unread output
    testing::Child child = testing::fork_child(draw_blocks);
    const Bytes parent = draw_blocks();
    shared = testing::shared_blocks(parent, testing::collect(child));
  });
  return shared;
}

class Fork : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }  // buffered, never bumped
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

TEST_F(Fork, ChildAndParentShareNoBlock) { EXPECT_EQ(shared_blocks_after_fork(), 0u); }

TEST_F(Fork, NegativeControlWithoutWipeOnForkTheyRepeat) {
  rng_internal::g_test_hooks.disable_wipe_on_fork = true;
  EXPECT_EQ(shared_blocks_after_fork(), 256u);
}

TEST_F(Fork, GrandchildrenToo) {
  testing::on_new_thread([] {
    fill(Bytes(16).data(), 16);
    const Bytes child = testing::run_in_child([] {
      fill(Bytes(16).data(), 16);
      const Bytes grandchild = testing::run_in_child(draw_blocks);
      Bytes both = draw_blocks();
      both.insert(both.end(), grandchild.begin(), grandchild.end());
      return both;
    });
    ASSERT_EQ(child.size(), 2 * 256 * 16u);
    const Bytes mine = draw_blocks();
    const Bytes child_part(child.begin(), child.begin() + 256 * 16);
    const Bytes grandchild_part(child.begin() + 256 * 16, child.end());
    EXPECT_EQ(testing::shared_blocks(mine, child_part), 0u);
    EXPECT_EQ(testing::shared_blocks(mine, grandchild_part), 0u);
    EXPECT_EQ(testing::shared_blocks(child_part, grandchild_part), 0u);
  });
}

}  // namespace
}  // namespace snapsafe
