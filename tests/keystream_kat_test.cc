// Known-answer test of the output construction (rng/internal/keystream.h) through the
// public fill(): an injected seed makes the whole stream deterministic, and every
// expected value below was computed independently with the `openssl enc -aes-256-ctr`
// command line over zero bytes. A refactor that changes the construction (key erasure,
// buffer layout, bulk path, cipher) fails here.
// The same values hold on both keystreams (rng/internal/state_keystream.h): this target runs
// the in-page one where the CPU has AES-NI, //tests:keystream_kat_evp_test OpenSSL's EVP.
//
//   K0 = 00 01 .. 1f (the injected seed), counter c = 0 at the reseed
//   step i: S_i = AES-256-CTR(K_i, counter block c); K_{i+1} = S_i[0..32);
//           output = S_i[32..32+n); c += 2 + n / 16
//   the reseed's first refill makes 1024 bytes, later refills 8128;
//   a draw of n > 1024 bytes is a bulk step over whole blocks: output[0..w) =
//   AES-256-CTR(K_i, c)[0..w) with w = n rounded down to 16, K_{i+1} = the buffer's next
//   32 unread bytes, c += w / 16; the last n - w bytes come from the buffer after them.
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "rng/status.h"
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

// The keystream in use is the one asked for (SNAPSAFE_KEYSTREAM, else the fastest the CPU
// has), and status() names it.
TEST_F(KeystreamKat, TheKeystreamInUseIsTheOneAskedForAndStatusNamesIt) {
  const char* wanted = std::getenv("SNAPSAFE_KEYSTREAM");
  const rng_internal::AesVariant variant = rng_internal::aes_ctr_variant();
  if (wanted != nullptr && std::strcmp(wanted, "evp") == 0) {
    EXPECT_EQ(variant, rng_internal::AesVariant::kEvp);
    EXPECT_EQ(status().keystream, "AES-256-CTR (OpenSSL EVP)");
  } else if (wanted == nullptr && rng_internal::aes_ctr_variant_supported(
                                      rng_internal::AesVariant::kAesni)) {
    EXPECT_NE(variant, rng_internal::AesVariant::kEvp);
    EXPECT_EQ(status().keystream, std::string("AES-256-CTR in the state page (") +
                                      rng_internal::aes_ctr_variant_name(variant) + ")");
  }
  EXPECT_NE(status().to_string().find("keystream:      " + status().keystream + "\n"),
            std::string::npos);
}

TEST_F(KeystreamKat, BufferRefillsAndBulkStepsMatchOpensslCli) {
  static_assert(rng_internal::kBufferBytes == 8128);
  testing::on_new_thread([] {
    // Step 0 (the reseed's short refill, K0, c = 0): S0[32..64).
    EXPECT_EQ(draw_hex(32), "0ebcb5deb52c83bd08a8a935182c9199d24356532881602f809eb383c5ff5d56");
    skip(1024 - 32 - 16);
    EXPECT_EQ(draw_hex(16), "7e92e1888bfd454ef211c11794a2a9c6");  // S0[1040..1056)
    // Step 1 (full refill, K1 = S0[0..32), c = 66). K1 itself is never output.
    EXPECT_EQ(draw_hex(32), "dd537119bb0d065d0750c6c92407ba8ffb346e3a912cfadafc002e86ed0909fb");
    // Bulk step (K2, c = 576): 2048 bytes straight into the caller's memory; the next key
    // K3 is the buffer's next 32 bytes, S1[64..96), never output.
    std::string bulk = draw_hex(2048);
    EXPECT_EQ(bulk.substr(0, 64),
              "2f90b810ba45862f6aa98274d99d00466736189f64d8cdbe48f91384e5abca43");
    EXPECT_EQ(bulk.substr(bulk.size() - 32), "c4f889074533030e380a48b19688767f");
    EXPECT_EQ(draw_hex(32), "2982ae0971545a096d9113f94c6df5e6b396ac0ae222e040a785e1ca8052f021");
    // Bulk step of a partial block count (K3, c = 704): 1500 bytes are 93 whole blocks
    // (1488 bytes), K4 = S1[128..160), then the last 12 bytes are S1[160..172): OpenSSL
    // is never asked for a partial block, whose unused rest it would keep.
    bulk = draw_hex(1500);
    EXPECT_EQ(bulk.substr(0, 64),
              "7564e1c748508083e5f66ec33929c5ec5606f1af10ba2766ccc968ad7f76a7a1");
    EXPECT_EQ(bulk.substr(bulk.size() - 32), "a1250d14cd738fc12eb608f3d920ffc7");
    skip(8128 - 140);  // the rest of S1: 140 bytes were drawn or became keys
    // Refill (K4, c = 797).
    EXPECT_EQ(draw_hex(32), "8426faff54c3108d24bc8b57386dc0b00132f8c2d4b77cfb34f18ae018da9804");
  });
}

TEST_F(KeystreamKat, HandedOutBytesAreZeroedInTheBuffer) {
  testing::on_new_thread([] {
    draw_hex(1024);  // the reseed's short refill, used up
    draw_hex(64);    // 64 bytes of a full refill (the slow path refills)
    draw_hex(64);    // 64 more: the fast path
    const rng_internal::ThreadState* st = rng_internal::t_state;
    ASSERT_NE(st, nullptr);
    const size_t consumed = rng_internal::kBufferBytes - st->remaining;
    ASSERT_EQ(consumed, 128u);
    for (size_t i = 0; i < consumed; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    // Negative control: the unread rest of the buffer is not zero (the check can fail).
    size_t nonzero = 0;
    for (size_t i = consumed; i < consumed + 64; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_GT(nonzero, 32u);
  });
}

// The slow path zeroes what it hands out too: the first draw of a thread (a reseed) and a
// bulk draw, whose next key is taken from the buffer and wiped there.
TEST_F(KeystreamKat, SlowPathAndBulkDrawsLeaveNothingHandedOutInTheBuffer) {
  testing::on_new_thread([] {
    draw_hex(16);  // the reseed: served by the slow path
    const rng_internal::ThreadState* st = rng_internal::t_state;
    ASSERT_EQ(st->remaining, 1024u - 16);
    const size_t start = rng_internal::kBufferBytes - 1024;
    for (size_t i = start; i < start + 16; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    draw_hex(2008);  // bulk: 2000 bytes from the cipher, a 32-byte key and 8 bytes here
    ASSERT_EQ(st->remaining, 1024u - 16 - 32 - 8);
    for (size_t i = start; i < start + 16 + 32 + 8; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    size_t nonzero = 0;  // control: the unread rest is keystream
    for (size_t i = start + 56; i < start + 120; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_GT(nonzero, 32u);
  });
}

}  // namespace
}  // namespace snapsafe
