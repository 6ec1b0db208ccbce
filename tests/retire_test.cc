// Retiring the watched sources mid-run (genid/select.h): a source that stops being
// trustworthy is asked on every refill (not only at reseeds, which a dead source never
// causes), and retiring switches every thread, including one with a full buffer, to the
// kernel at its very next draw.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/select.h"
#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/internal/thread_state.h"
#include "rng/status.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

TEST(Retire, AReplacedCounterFileIsNoticedAtARefill) {
  const std::string path = testing::use_fresh_counter_file();
  bool retired_by_the_refills = false;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);  // seeded; the generation will never move again
    ASSERT_EQ(unlink(path.c_str()), 0);
    ASSERT_EQ(genid::counter_file_create(path), "");
    testing::bump(path);  // the hook bumps the new file: this process cannot see it
    std::this_thread::sleep_for(std::chrono::milliseconds(20));          // still_valid's rate limit
    for (int i = 0; i < 2 * 8192 / 16; ++i) fill(Bytes(16).data(), 16);  // refills
    // Asked here, before this thread exits (its exit, seeding the state for the next
    // thread, would ask the sources too).
    retired_by_the_refills = genid::retired();
  });
  EXPECT_TRUE(retired_by_the_refills);
  EXPECT_TRUE(genid::retired());
  EXPECT_FALSE(status().buffered) << status().to_string();
  EXPECT_NE(status().to_string().find("retired"), std::string::npos);
}

TEST(Retire, EveryThreadLeavesItsBufferAtItsNextDraw) {
  testing::use_fresh_counter_file();
  std::atomic<int> phase{0};
  uint32_t remaining_before = 0, remaining_after = 0;
  std::thread other([&] {
    fill(Bytes(16).data(), 16);  // a buffer full of output
    remaining_before = rng_internal::t_state->remaining;
    phase = 1;
    while (phase != 2) std::this_thread::yield();
    fill(Bytes(16).data(), 16);  // the first draw after the retirement
    remaining_after = rng_internal::t_state->remaining;
  });
  while (phase != 1) std::this_thread::yield();
  genid::retire("test: retired by hand");
  phase = 2;
  other.join();
  EXPECT_GT(remaining_before, 0u);
  EXPECT_EQ(remaining_after, 0u) << "served by the kernel, the old buffer forgotten";
}

}  // namespace
}  // namespace snapsafe
