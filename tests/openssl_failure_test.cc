// An OpenSSL failure in the middle of a thread's life (test hook: the next keystream step
// fails): the draw fails closed (entropy_error, output zeroed), and nothing of the failed
// state is used again: the next draw reseeds. Without that reset the next refill would
// run on the wiped (all-zero) key: output anyone can compute.
#include <gtest/gtest.h>

#include "rng/error.h"
#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

class OpensslFailure : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_fresh_counter_file(); }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

// Fails one refill (size <= 1024) or one bulk step, then draws again.
void fail_then_recover(size_t size) {
  testing::on_new_thread([size] {
    fill(Bytes(16).data(), 16);
    while (rng_internal::t_state->remaining > 0) {  // the next draw must refill
      fill(Bytes(16).data(), 16);
    }
    rng_internal::g_test_hooks.fail_keystream = true;
    Bytes out(size, 0xAA);
    int code = 0;
    try {
      fill(out.data(), out.size());
    } catch (const entropy_error& e) {
      code = e.code();
    }
    EXPECT_NE(code, 0) << "an OpenSSL failure fails the draw";
    EXPECT_EQ(out, Bytes(size, 0)) << "with the output zeroed";
    rng_internal::g_test_hooks.fail_keystream = false;
    const uint64_t reseeds = rng_internal::reseed_count();
    fill(out.data(), out.size());
    EXPECT_EQ(rng_internal::reseed_count(), reseeds + 1) << "the next draw reseeds first";
    EXPECT_NE(out, Bytes(size, 0));
  });
}

TEST_F(OpensslFailure, AFailedRefillIsNeverReused) { fail_then_recover(16); }
TEST_F(OpensslFailure, AFailedBulkStepIsNeverReused) { fail_then_recover(4096); }

}  // namespace
}  // namespace snapsafe
