// Known-answer test of the output construction (rng/internal/keystream.h) through the
// public fill(): an injected seed makes the whole stream deterministic, and every
// expected value below was computed independently with the `openssl enc -aes-256-ctr`
// command line over zero bytes. A refactor that changes the construction (key erasure,
// buffer layout, bulk path, cipher) fails here.
//
//   K0 = 00 01 .. 1f (the injected seed)
//   S_i = AES-256-CTR(K_i, iv 0); K_{i+1} = S_i[0..32); output = S_i[32..)
//   the buffer holds 8128 output bytes per refill; draws > 1024 bytes take one step of
//   their own straight into the caller's memory and leave the buffer as it is.
#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;
using testing::hex;

class KeystreamKat : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 32; ++i) seed_[i] = static_cast<uint8_t>(i);
    rng_internal::g_test_hooks.injected_seed = seed_;
    testing::use_source({{"SNAPSAFE_SOURCE", "fork-only-unsafe"}});
  }
  void TearDown() override { rng_internal::g_test_hooks.injected_seed = nullptr; }

  static std::string draw_hex(size_t size) {
    Bytes bytes(size);
    fill(bytes.data(), bytes.size());
    return hex(bytes.data(), bytes.size());
  }
  // Consumes `size` bytes in buffered-size pieces.
  static void skip(size_t size) {
    while (size > 0) {
      const size_t piece = size < 1000 ? size : 1000;
      draw_hex(piece);
      size -= piece;
    }
  }

  uint8_t seed_[32];
};

TEST_F(KeystreamKat, BufferRefillsAndBulkStepMatchOpensslCli) {
  static_assert(rng_internal::kBufferBytes == 8128);
  testing::on_new_thread([] {
    // S0[32..64): the first output after seeding.
    EXPECT_EQ(draw_hex(32), "0ebcb5deb52c83bd08a8a935182c9199d24356532881602f809eb383c5ff5d56");
    skip(8128 - 32 - 16);
    EXPECT_EQ(draw_hex(16), "78afc12b87678807bd1f2f23b036e51f");  // S0[8144..8160)
    // Refill: the key is now K1 = S0[0..32), never output.
    EXPECT_EQ(draw_hex(32), "9720e40516407d2c249a9b756a46f71a80de909711cfa30bcd151fce144c5d56");
    // Bulk: one step of K2 = S1[0..32) straight into the caller's 2048 bytes.
    const std::string bulk = draw_hex(2048);
    EXPECT_EQ(bulk.substr(0, 64),
              "2d67c655704e0351a1aaa239840d118da692774c0173fa2da154a9ca06e7fd53");
    EXPECT_EQ(bulk.substr(bulk.size() - 32), "efc9aa339ebe901dcb2efe908a4e3aab");
    // The buffer was left as it was: S1 continues.
    EXPECT_EQ(draw_hex(32), "92b2087a254c04e30d9611c74ecbc108b87193d83c65e3fdd37878d34ce8a967");
    skip(8128 - 64);
    // The next refill uses K3 = S2[0..32), the key the bulk step left behind.
    EXPECT_EQ(draw_hex(32), "b1ef893ee84d11a71e32f9e80b10ae48ee5d039e90f0263af788f8bb21005720");
  });
}

TEST_F(KeystreamKat, HandedOutBytesAreZeroedInTheBuffer) {
  testing::on_new_thread([] {
    draw_hex(64);
    const rng_internal::ThreadState* st = rng_internal::t_state;
    ASSERT_NE(st, nullptr);
    const size_t consumed = rng_internal::kBufferBytes - st->remaining;
    ASSERT_EQ(consumed, 64u);
    for (size_t i = 0; i < consumed; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    // Negative control: the unread rest of the buffer is not zero (the check can fail).
    size_t nonzero = 0;
    for (size_t i = consumed; i < consumed + 64; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_GT(nonzero, 32u);
  });
}

}  // namespace
}  // namespace snapsafe
