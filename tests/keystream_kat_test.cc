// Known-answer test of the output construction (rng/internal/keystream.h, seed.h) through
// the public fill(): an injected seed makes the whole stream deterministic, and the
// expected bytes come from a model of the construction written here on OpenSSL's EVP
// (AES-256-ECB for the single blocks of the counter block's CBC-MAC, AES-256-CTR for the
// runs): OpenSSL is the reference, no value is computed by the code under test. A refactor
// that changes the construction (key erasure, buffer layout, bulk path, cipher, the reseed's
// counter block) fails here. One value is also pinned, so a change made to the model and the
// code alike is caught too.
// The same values hold on both keystreams (rng/internal/state_keystream.h): this target runs
// the in-page one where the CPU has AES-NI, //tests:keystream_kat_evp_test OpenSSL's EVP.
//
//   K0 = 00 01 .. 1f (the injected seed: the kernel's key), the cipher input M = 3 zero
//   blocks (the injected seed's), C0 = CBC-MAC_K0(M): x = 0, x = AES_K0(x ^ M_i), C0 = x
//   step i: S_i = AES-256-CTR(K_i, counter block c); K_{i+1} = S_i[0..32);
//           output = S_i[32..32+n); c += 2 + n / 16          (c = C0 at the reseed)
//   the reseed's first refill makes kFirstRefillBytes (64) bytes, later refills 8128;
//   a draw of n > 1024 bytes is a bulk step over whole blocks: output[0..w) =
//   AES-256-CTR(K_i, c)[0..w) with w = n rounded down to 16, K_{i+1} = the buffer's next
//   32 unread bytes (after a refill, if fewer than 32 + n - w are left), c += w / 16; the
//   last n - w bytes come from the buffer after them.
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <deque>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/seed.h"
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
  } else if (wanted == nullptr &&
             rng_internal::aes_ctr_variant_supported(rng_internal::AesVariant::kAesni)) {
    EXPECT_NE(variant, rng_internal::AesVariant::kEvp);
    EXPECT_EQ(status().keystream, std::string("AES-256-CTR in the state page (") +
                                      rng_internal::aes_ctr_variant_name(variant) + ")");
  }
  EXPECT_NE(status().to_string().find("keystream:      " + status().keystream + "\n"),
            std::string::npos);
}

// The construction, on OpenSSL's EVP alone.
class EvpModel {
 public:
  EvpModel(const uint8_t key[32], const uint8_t input[16 * rng_internal::kSeedInputBlocks]) {
    std::memcpy(key_, key, 32);
    uint8_t x[16] = {};
    for (size_t i = 0; i < rng_internal::kSeedInputBlocks; ++i) {
      for (size_t j = 0; j < 16; ++j) x[j] ^= input[16 * i + j];
      encrypt_block(x);
    }
    std::memcpy(counter_, x, 16);
    step(rng_internal::kFirstRefillBytes);
  }

  Bytes draw(size_t size) {
    Bytes out;
    if (size > rng_internal::kMaxBufferedDraw) {
      const size_t whole = size & ~size_t{15};
      if (buffer_.size() < 32 + (size - whole)) step(rng_internal::kBufferBytes);
      out = ctr(whole);
      for (int i = 0; i < 32; ++i) {
        key_[i] = buffer_.front();
        buffer_.pop_front();
      }
      size -= whole;
    }
    while (size > 0) {
      if (buffer_.empty()) step(rng_internal::kBufferBytes);
      out.push_back(buffer_.front());
      buffer_.pop_front();
      --size;
    }
    return out;
  }

 private:
  void encrypt_block(uint8_t block[16]) {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int written = 0;
    ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_ecb(), nullptr, key_, nullptr), 1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    ASSERT_EQ(EVP_EncryptUpdate(ctx, block, &written, block, 16), 1);
    ASSERT_EQ(written, 16);
    EVP_CIPHER_CTX_free(ctx);
  }
  // `size` bytes of AES-256-CTR(key, counter); the counter advances by size / 16.
  Bytes ctr(size_t size) {
    Bytes zeros(size), out(size);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int written = 0;
    EXPECT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, key_, counter_), 1);
    EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &written, zeros.data(), static_cast<int>(size)),
              1);
    EVP_CIPHER_CTX_free(ctx);
    uint64_t carry = size / 16;  // counter += size / 16, as one 128-bit big-endian integer
    for (int i = 15; i >= 0 && carry != 0; --i) {
      carry += counter_[i];
      counter_[i] = static_cast<uint8_t>(carry);
      carry >>= 8;
    }
    return out;
  }
  // One step: the next key, then `size` bytes into the buffer (whatever was left is gone).
  void step(size_t size) {
    const Bytes s = ctr(32 + size);
    std::memcpy(key_, s.data(), 32);
    buffer_.assign(s.begin() + 32, s.end());
  }

  uint8_t key_[32];
  uint8_t counter_[16];
  std::deque<uint8_t> buffer_;
};

TEST_F(KeystreamKat, EveryDrawMatchesTheConstructionOnOpensslEvp) {
  static_assert(rng_internal::kBufferBytes == 8128);
  static_assert(rng_internal::kFirstRefillBytes == 64);
  const uint8_t zero_input[16 * rng_internal::kSeedInputBlocks] = {};
  EvpModel model(seed_, zero_input);
  // The reseed's first step, its 64 bytes drawn in pieces; a refill; bulk steps (whole
  // blocks, and a partial block count whose tail comes from the buffer); draws across
  // refills; a bulk step that needs a refill for its next key.
  const size_t sizes[] = {16,   8,    8,    32,   32,   2048, 32, 1500, 1000, 1000, 1000,
                          1000, 1000, 1000, 1000, 1000, 999,  7,  4096, 1,    1024, 1025,
                          3000, 64,   8128, 5000, 8,    16,   24, 8192, 40};
  testing::on_new_thread([&] {
    int i = 0;
    for (const size_t size : sizes) {
      const std::string got = draw_hex(size);
      const Bytes want = model.draw(size);
      ASSERT_EQ(got, hex(want.data(), want.size())) << "draw " << i << " of " << size << " bytes";
      ++i;
    }
  });
}

// One value pinned: the first 32 bytes a thread draws from the injected seed, computed with
// the openssl command line alone (C0 = 36136fa7a598be1ae8bf0edf8ce52a9a):
//   K=000102..1f; x=00..00; 3 x: x=$(echo $x | xxd -r -p | openssl enc -aes-256-ecb -K $K -nopad | xxd -p)
//   head -c 64 /dev/zero | openssl enc -aes-256-ctr -K $K -iv $x | xxd -p   (bytes 32..64)
// so a change made to both the model and the code is caught too.
TEST_F(KeystreamKat, TheFirstDrawIsPinned) {
  testing::on_new_thread([] {
    EXPECT_EQ(draw_hex(32), "5c1ae509f5319cfa2e4bf32476da71ce6209f223393abdce2af86bba63ebb820");
  });
}

TEST_F(KeystreamKat, HandedOutBytesAreZeroedInTheBuffer) {
  testing::on_new_thread([] {
    draw_hex(rng_internal::kFirstRefillBytes);  // the reseed's short refill, used up
    draw_hex(64);                               // 64 bytes of a full refill (the slow path refills)
    draw_hex(64);                               // 64 more: the fast path
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
    const size_t first = rng_internal::kFirstRefillBytes;
    ASSERT_EQ(st->remaining, first - 16);
    const size_t start = rng_internal::kBufferBytes - first;
    for (size_t i = start; i < start + 16; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    draw_hex(2008);  // bulk: 2000 bytes from the cipher, a 32-byte key and 8 bytes here
    ASSERT_EQ(st->remaining, first - 16 - 32 - 8);
    for (size_t i = start; i < start + 16 + 32 + 8; ++i) ASSERT_EQ(st->buffer[i], 0) << i;
    size_t nonzero = 0;  // control: the unread rest is keystream
    for (size_t i = start + 56; i < start + first; ++i) nonzero += st->buffer[i] != 0;
    EXPECT_GT(nonzero, 4u);
  });
}

}  // namespace
}  // namespace snapsafe
