// Known-answer test of the output construction (rng/internal/keystream.h) through the
// public fill(): an injected seed makes the whole stream deterministic, and every
// expected value below was computed independently with the `openssl enc -aes-256-ctr`
// command line over zero bytes. A refactor that changes the construction (key erasure,
// buffer layout, bulk path, cipher) fails here.
//
//   K0 = 00 01 .. 1f (the injected seed), counter c = 0 at the reseed
//   step i: S_i = AES-256-CTR(K_i, counter block c); K_{i+1} = S_i[0..32);
//           output = S_i[32..32+n); c += 2 + ceil(n / 16)
//   the reseed's first refill makes 1024 bytes, later refills 8128; draws > 1024 bytes
//   take a step of their own straight into the caller's memory and leave the buffer as
//   it is.
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

TEST_F(KeystreamKat, BufferRefillsAndBulkStepsMatchOpensslCli) {
  static_assert(rng_internal::kBufferBytes == 8128);
  testing::on_new_thread([] {
    // Step 0 (the reseed's short refill, K0, c = 0): S0[32..64).
    EXPECT_EQ(draw_hex(32), "0ebcb5deb52c83bd08a8a935182c9199d24356532881602f809eb383c5ff5d56");
    skip(1024 - 32 - 16);
    EXPECT_EQ(draw_hex(16), "7e92e1888bfd454ef211c11794a2a9c6");  // S0[1040..1056)
    // Step 1 (full refill, K1 = S0[0..32), c = 66). K1 itself is never output.
    EXPECT_EQ(draw_hex(32), "dd537119bb0d065d0750c6c92407ba8ffb346e3a912cfadafc002e86ed0909fb");
    // Step 2 (bulk, K2, c = 576): 2048 bytes straight into the caller's memory.
    std::string bulk = draw_hex(2048);
    EXPECT_EQ(bulk.substr(0, 64),
              "73ab162761b5096f33fd7e6ee201f0f54c41a7b8749d1af1d948747ef36ec57f");
    EXPECT_EQ(bulk.substr(bulk.size() - 32), "e41a8fd8cfe0d1fb5666c4e93a5b28a5");
    // The buffer was left as it was: S1 continues.
    EXPECT_EQ(draw_hex(32), "361b5dc75c7975f4c383fc36cd804a1ca231343947d7c93afc5e82411cbbf13b");
    // Step 3 (bulk of a partial block count, K3, c = 706): 1500 bytes use 94 blocks.
    bulk = draw_hex(1500);
    EXPECT_EQ(bulk.substr(0, 64),
              "be6ac8a898143e9b786ac6fac739d147623d7fc416e780c885c6b5e2944b8cd9");
    EXPECT_EQ(bulk.substr(bulk.size() - 32), "c9fff16b95763844499050510c0d5e1e");
    skip(8128 - 64);
    // Step 4 (refill, K4, c = 802): the rest of the partial block was dropped.
    EXPECT_EQ(draw_hex(32), "7d1dde6adfcdabc9e4a1a9e33522a60901b01ac1a753d7058528b675213365b0");
  });
}

TEST_F(KeystreamKat, HandedOutBytesAreZeroedInTheBuffer) {
  testing::on_new_thread([] {
    draw_hex(1024);  // the reseed's short refill, used up
    draw_hex(64);    // 64 bytes of a full refill
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
