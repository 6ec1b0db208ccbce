// AES-256-CTR with the key schedule in the state page (rng/internal/aes_ctr_in_page.h),
// for every variant this CPU offers (each forced in turn by the test seam):
//  - known answers: NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt);
//  - byte for byte OpenSSL's EVP AES-256-CTR for random keys, random counters, every
//    length 0..40 blocks (every tail of the 8-block loop) and random ones up to 4100;
//    the counter carries across the 64-bit boundary and wraps at 2^128 as OpenSSL's;
//  - the dispatch picks the fastest variant the CPU has, and SNAPSAFE_KEYSTREAM
//    overrides it ("evp" and unknown names: no in-page keystream, fail closed);
//  - the schedule is zero after a wipe and after every step (negative control:
//    skip_schedule_wipe, the test sees the round keys);
//  - no vector register holds a round key or keystream after a public call (negative
//    control: skip_register_clear, the same capture finds them);
//  - no dead stack frame below the calls holds a round key or keystream (the scan's
//    control: a frame that does keep a round key is found);
//  - the step functions produce keystream.h's construction byte for byte (random keys,
//    sizes and sequences of steps, bulk steps and reseeds);
//    and aes256_ctr's blocks from counters just below the 64-bit carry (vaes-avx2's
//    fused expansion and first group); a variant failing the known answer through that
//    fused path is passed over.
#include "rng/internal/aes_ctr_in_page.h"

#include <cpuid.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rng/internal/keystream.h"

namespace snapsafe::rng_internal {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes from_hex(const std::string& hex) {
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::stoi(hex.substr(2 * i, 2), nullptr, 16);
  return out;
}

// OpenSSL's AES-256-CTR keystream of `nblocks` blocks from counter block `iv`.
Bytes evp_keystream(const uint8_t key[32], const uint8_t iv[16], size_t nblocks) {
  Bytes out(nblocks * 16), zeros(nblocks * 16);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int written = 0;
  EXPECT_EQ(EVP_EncryptInit_ex2(ctx, EVP_aes_256_ctr(), key, iv, nullptr), 1);
  if (nblocks > 0) {
    EXPECT_EQ(
        EVP_EncryptUpdate(ctx, out.data(), &written, zeros.data(), static_cast<int>(zeros.size())),
        1);
  }
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// counter + n mod 2^128 (big-endian blocks), independently of the library.
void add_to_counter(uint8_t counter[16], uint64_t n) {
  unsigned __int128 value = 0;
  for (int i = 0; i < 16; ++i) value = value << 8 | counter[i];
  value += n;
  for (int i = 15; i >= 0; --i, value >>= 8) counter[i] = static_cast<uint8_t>(value);
}

std::vector<AesVariant> hardware_variants() {
  std::vector<AesVariant> variants;
  for (AesVariant v : {AesVariant::kAesni, AesVariant::kVaesAvx2}) {
    if (aes_ctr_variant_supported(v)) variants.push_back(v);
  }
  return variants;
}

class AesCtrInPage : public ::testing::TestWithParam<AesVariant> {
 protected:
  void SetUp() override {
    if (!aes_ctr_variant_supported(GetParam())) {
      GTEST_SKIP() << aes_ctr_variant_name(GetParam()) << " is not offered by this CPU";
    }
    ASSERT_TRUE(aes_ctr_force_variant_for_testing(GetParam()));
    ASSERT_EQ(aes_ctr_variant(), GetParam());
  }
  void TearDown() override {
    g_aes_ctr_test_flags = {};
    aes_ctr_reselect_for_testing();
  }
  std::mt19937_64 rng_{24};
  void random_bytes(uint8_t* out, size_t size) {
    for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(rng_());
  }
};

TEST_P(AesCtrInPage, NistSp800_38aF55) {
  const Bytes key = from_hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  Bytes counter = from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const Bytes plaintext = from_hex(
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  const Bytes ciphertext = from_hex(
      "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
      "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6");
  AesSchedule schedule;
  ASSERT_TRUE(aes256_expand(&schedule, key.data()));
  Bytes out(64);
  ASSERT_TRUE(aes256_ctr(&schedule, counter.data(), out.data(), 4));
  for (size_t i = 0; i < out.size(); ++i) out[i] ^= plaintext[i];
  EXPECT_EQ(out, ciphertext);
  EXPECT_EQ(counter, from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdff03"));
}

TEST_P(AesCtrInPage, MatchesEvpForEveryTailAndRandomLengths) {
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 40; ++n) lengths.push_back(n);
  for (int i = 0; i < 40; ++i) lengths.push_back(rng_() % 4101);
  lengths.push_back(4096);
  lengths.push_back(4103);
  for (size_t nblocks : lengths) {
    uint8_t key[32], counter[16], iv[16];
    random_bytes(key, sizeof key);
    random_bytes(counter, sizeof counter);
    std::memcpy(iv, counter, sizeof iv);
    AesSchedule schedule;
    ASSERT_TRUE(aes256_expand(&schedule, key));
    // One byte of slack either side: nothing is written outside 16 * nblocks.
    Bytes out(nblocks * 16 + 2, 0xa5);
    ASSERT_TRUE(aes256_ctr(&schedule, counter, out.data() + 1, nblocks));
    EXPECT_EQ(out.front(), 0xa5);
    EXPECT_EQ(out.back(), 0xa5);
    EXPECT_EQ(Bytes(out.begin() + 1, out.end() - 1), evp_keystream(key, iv, nblocks))
        << nblocks << " blocks";
    add_to_counter(iv, nblocks);
    EXPECT_EQ(Bytes(counter, counter + 16), Bytes(iv, iv + 16)) << nblocks;
  }
}

// Calls in pieces continue the keystream exactly (the counter is advanced per block).
TEST_P(AesCtrInPage, PiecesContinueTheStream) {
  uint8_t key[32], counter[16], iv[16];
  random_bytes(key, sizeof key);
  random_bytes(counter, sizeof counter);
  std::memcpy(iv, counter, sizeof iv);
  const Bytes whole = evp_keystream(key, iv, 300);
  AesSchedule schedule;
  ASSERT_TRUE(aes256_expand(&schedule, key));
  Bytes pieces(300 * 16);
  size_t done = 0;
  for (size_t piece : {1, 7, 8, 9, 2, 15, 16, 17, 0, 225}) {
    ASSERT_TRUE(aes256_ctr(&schedule, counter, pieces.data() + 16 * done, piece));
    done += piece;
  }
  ASSERT_EQ(done, 300u);
  EXPECT_EQ(pieces, whole);
}

// Counters just below a 64-bit carry and just below 2^128: OpenSSL's 128-bit counter
// carries into the high half and wraps to zero; so must this one, at every position of
// the carry inside an 8-block group.
TEST_P(AesCtrInPage, CounterCarriesAcross64BitsAndWrapsAt128) {
  uint8_t key[32];
  random_bytes(key, sizeof key);
  AesSchedule schedule;
  ASSERT_TRUE(aes256_expand(&schedule, key));
  for (bool wrap128 : {false, true}) {
    for (uint64_t below = 0; below <= 17; ++below) {
      for (size_t nblocks : {1, 5, 8, 13, 24, 40}) {
        uint8_t counter[16];
        for (int i = 0; i < 8; ++i) counter[i] = wrap128 ? 0xff : static_cast<uint8_t>(0x10 + i);
        for (int i = 8; i < 16; ++i) counter[i] = 0xff;
        counter[15] = static_cast<uint8_t>(0xff - below);
        uint8_t iv[16];
        std::memcpy(iv, counter, sizeof iv);
        Bytes out(nblocks * 16);
        ASSERT_TRUE(aes256_ctr(&schedule, counter, out.data(), nblocks));
        ASSERT_EQ(out, evp_keystream(key, iv, nblocks))
            << (wrap128 ? "2^128" : "2^64") << " - " << below + 1 << ", " << nblocks;
        add_to_counter(iv, nblocks);
        ASSERT_EQ(Bytes(counter, counter + 16), Bytes(iv, iv + 16));
      }
    }
  }
}

TEST_P(AesCtrInPage, WipeZeroesTheSchedule) {
  uint8_t key[32];
  random_bytes(key, sizeof key);
  AesSchedule schedule;
  ASSERT_TRUE(aes256_expand(&schedule, key));
  const AesSchedule zero{};
  ASSERT_NE(std::memcmp(&schedule, &zero, sizeof zero), 0);
  aes256_wipe(&schedule);
  EXPECT_EQ(std::memcmp(&schedule, &zero, sizeof zero), 0);
}

TEST_P(AesCtrInPage, NegativeControlWithoutWipeTheScheduleKeepsTheRoundKeys) {
  uint8_t key[32];
  random_bytes(key, sizeof key);
  AesSchedule schedule;
  ASSERT_TRUE(aes256_expand(&schedule, key));
  g_aes_ctr_test_flags.skip_schedule_wipe = true;
  aes256_wipe(&schedule);
  EXPECT_EQ(std::memcmp(schedule.round_keys, key, 32), 0);  // round keys 0, 1 = the key
}

// --- vector registers after a call ----------------------------------------------------

struct Registers {
  alignas(32) uint8_t bytes[16][32];  // ymm0-15 (or xmm0-15 in the low halves)
};

__attribute__((noinline, target("avx"))) void capture_ymm(Registers* regs) {
  __asm__ volatile(
      "vmovdqu %%ymm0, 0(%0)\n\tvmovdqu %%ymm1, 32(%0)\n\tvmovdqu %%ymm2, 64(%0)\n\t"
      "vmovdqu %%ymm3, 96(%0)\n\tvmovdqu %%ymm4, 128(%0)\n\tvmovdqu %%ymm5, 160(%0)\n\t"
      "vmovdqu %%ymm6, 192(%0)\n\tvmovdqu %%ymm7, 224(%0)\n\tvmovdqu %%ymm8, 256(%0)\n\t"
      "vmovdqu %%ymm9, 288(%0)\n\tvmovdqu %%ymm10, 320(%0)\n\tvmovdqu %%ymm11, 352(%0)\n\t"
      "vmovdqu %%ymm12, 384(%0)\n\tvmovdqu %%ymm13, 416(%0)\n\tvmovdqu %%ymm14, 448(%0)\n\t"
      "vmovdqu %%ymm15, 480(%0)"
      :
      : "r"(regs->bytes)
      : "memory");
}

__attribute__((noinline)) void capture_xmm(Registers* regs) {
  __asm__ volatile(
      "movdqu %%xmm0, 0(%0)\n\tmovdqu %%xmm1, 32(%0)\n\tmovdqu %%xmm2, 64(%0)\n\t"
      "movdqu %%xmm3, 96(%0)\n\tmovdqu %%xmm4, 128(%0)\n\tmovdqu %%xmm5, 160(%0)\n\t"
      "movdqu %%xmm6, 192(%0)\n\tmovdqu %%xmm7, 224(%0)\n\tmovdqu %%xmm8, 256(%0)\n\t"
      "movdqu %%xmm9, 288(%0)\n\tmovdqu %%xmm10, 320(%0)\n\tmovdqu %%xmm11, 352(%0)\n\t"
      "movdqu %%xmm12, 384(%0)\n\tmovdqu %%xmm13, 416(%0)\n\tmovdqu %%xmm14, 448(%0)\n\t"
      "movdqu %%xmm15, 480(%0)"
      :
      : "r"(regs->bytes)
      : "memory");
}

// Calls `call` and copies the vector registers as it left them (nothing in between
// touches them: the capture is the next instructions after the return and a call).
struct Call {
  void (*fn)(void*);
  void* arg;
};
__attribute__((noinline)) Registers call_and_capture(Call call, bool avx) {
  Registers regs{};
  call.fn(call.arg);
  if (avx) {
    capture_ymm(&regs);
  } else {
    capture_xmm(&regs);
  }
  return regs;
}

// The 16-byte secrets found in the registers (each lane); an all-zero "secret" (output a
// call did not write) is no secret.
int secrets_in(const Registers& regs, const std::vector<Bytes>& secrets) {
  const Bytes zero(16);
  int found = 0;
  for (const auto& reg : regs.bytes) {
    for (size_t lane = 0; lane < 32; lane += 16) {
      for (const Bytes& s : secrets) {
        found += s != zero && std::memcmp(reg + lane, s.data(), 16) == 0;
      }
    }
  }
  return found;
}

struct CallArgs {
  AesSchedule* schedule;
  uint8_t* key;
  uint8_t* counter;
  uint8_t* out;
  size_t nblocks;
};

// What a call leaves in the registers, with and without the clearing: the round keys of
// `key` and the keystream of the call are the secrets looked for.
void expect_registers_cleared(void (*fn)(void*), bool step) {
  std::mt19937_64 rng(7);
  alignas(16) uint8_t key[32], counter[16] = {};
  for (uint8_t& b : key) b = static_cast<uint8_t>(rng());
  AesSchedule reference, schedule;
  ASSERT_TRUE(aes256_expand(&reference, key));
  std::vector<Bytes> secrets;
  for (const auto& rk : reference.round_keys) secrets.emplace_back(rk, rk + 16);
  const bool avx = __builtin_cpu_supports("avx");
  for (bool skip_clear : {false, true}) {
    for (size_t nblocks : {1, 3, 8, 21}) {
      uint8_t key_copy[32];
      std::memcpy(key_copy, key, sizeof key);
      std::memset(counter, 0, sizeof counter);
      ASSERT_TRUE(aes256_expand(&schedule, key));
      Bytes out(nblocks * 16);
      CallArgs args{&schedule, key_copy, counter, out.data(), nblocks};
      g_aes_ctr_test_flags.skip_register_clear = skip_clear;
      const Registers regs = call_and_capture({fn, &args}, avx);
      g_aes_ctr_test_flags.skip_register_clear = false;
      std::vector<Bytes> all = secrets;
      for (size_t i = 0; i < out.size(); i += 16) all.emplace_back(&out[i], &out[i] + 16);
      if (step)
        all.emplace_back(key_copy, key_copy + 16), all.emplace_back(key_copy + 16, key_copy + 32);
      const int found = secrets_in(regs, all);
      if (skip_clear) {
        EXPECT_GT(found, 0) << "negative control: without the clearing the capture sees "
                               "key material ("
                            << nblocks << " blocks)";
      } else {
        EXPECT_EQ(found, 0) << nblocks << " blocks";
      }
    }
  }
}

TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamLeftInRegistersAfterExpand) {
  expect_registers_cleared(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        aes256_expand(args->schedule, args->key);
      },
      false);
}

TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamLeftInRegistersAfterCtr) {
  expect_registers_cleared(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        aes256_ctr(args->schedule, args->counter, args->out, args->nblocks);
      },
      false);
}

// A refill's step: with 21 blocks (and K') vaes-avx2 takes its fused first group.
TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamLeftInRegistersAfterRefillStep) {
  expect_registers_cleared(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        page_keystream_step(args->schedule, args->counter, args->key, args->out,
                            args->nblocks * 16);
      },
      true);
}

TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamLeftInRegistersAfterStep) {
  expect_registers_cleared(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        page_keystream_reseed_step(args->schedule, args->counter, args->key, args->out,
                                   args->nblocks * 16);
      },
      true);
}

// The same with a cipher input: the expansion fused with the CBC-MAC (seed.h).
TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamLeftInRegistersAfterReseedStepWithInput) {
  expect_registers_cleared(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        const uint8_t input[48] = {1, 2, 3};
        page_keystream_reseed_step(args->schedule, args->counter, args->key, args->out,
                                   args->nblocks * 16, input, 3);
      },
      true);
}

// --- dead stack frames ---------------------------------------------------------------

constexpr size_t kScanBytes = 16 * 1024;

__attribute__((noinline, no_sanitize_address)) void copy_dead_frames(uint8_t* copy) {
  const volatile uint8_t* const top =
      static_cast<const volatile uint8_t*>(__builtin_frame_address(0)) - kScanBytes;
  for (size_t i = 0; i < kScanBytes; ++i) copy[i] = top[i];
}

__attribute__((noinline, no_sanitize_address)) void clear_dead_frames() {
  constexpr size_t kOwnLocals = 256;
  volatile uint8_t* const top =
      static_cast<volatile uint8_t*>(__builtin_frame_address(0)) - kScanBytes;
  for (size_t i = 0; i < kScanBytes - kOwnLocals; ++i) top[i] = 0;
}

// Runs fn(arg) below a 2 KiB frame, then copies the dead frames it left.
__attribute__((noinline)) void run_below_padding(void (*fn)(void*), void* arg) {
  volatile uint8_t padding[2048];
  padding[0] = 1;
  fn(arg);
  padding[sizeof padding - 1] = padding[0];
}

Bytes dead_frames_after(void (*fn)(void*), void* arg) {
  Bytes copy(kScanBytes);
  clear_dead_frames();
  run_below_padding(fn, arg);
  copy_dead_frames(copy.data());
  return copy;
}

bool contains(const Bytes& haystack, const uint8_t* needle) {
  for (size_t i = 0; i + 16 <= haystack.size(); ++i) {
    if (std::memcmp(&haystack[i], needle, 16) == 0) return true;
  }
  return false;
}

TEST_P(AesCtrInPage, NoRoundKeyOrKeystreamInDeadStackFrames) {
  alignas(16) uint8_t key[32], counter[16] = {};
  random_bytes(key, sizeof key);
  static AesSchedule schedule;
  static uint8_t out[21 * 16];
  CallArgs args{&schedule, key, counter, out, 21};
  const Bytes frames = dead_frames_after(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        aes256_expand(args->schedule, args->key);
        aes256_ctr(args->schedule, args->counter, args->out, args->nblocks);
      },
      &args);
  for (const auto& rk : schedule.round_keys) EXPECT_FALSE(contains(frames, rk));
  for (size_t i = 0; i < sizeof out; i += 16) EXPECT_FALSE(contains(frames, out + i)) << i;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // A step: the round keys of its key, its next key and its output. Not judged in a
  // sanitizer's build: its instrumented frames keep a copy of a round key (seen in the
  // asan-ubsan run, both variants), as stack_wipe_test's mask case does there; the
  // unoptimised and -O2 builds leave none. The scan's control below runs in every build.
  AesSchedule reference;
  ASSERT_TRUE(aes256_expand(&reference, key));
  const Bytes frames_of_step = dead_frames_after(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        page_keystream_step(args->schedule, args->counter, args->key, args->out,
                            args->nblocks * 16);
      },
      &args);
  for (const auto& rk : reference.round_keys) EXPECT_FALSE(contains(frames_of_step, rk));
  EXPECT_FALSE(contains(frames_of_step, key));
  EXPECT_FALSE(contains(frames_of_step, key + 16));
  for (size_t i = 0; i < sizeof out; i += 16) {
    EXPECT_FALSE(contains(frames_of_step, out + i)) << i;
  }
#endif
  // The scan's control: a frame that keeps a round key on the stack is found.
  const Bytes leaky = dead_frames_after(
      [](void* a) {
        auto* args = static_cast<CallArgs*>(a);
        volatile uint8_t copy[16];
        for (int i = 0; i < 16; ++i) copy[i] = args->schedule->round_keys[7][i];
      },
      &args);
  EXPECT_TRUE(contains(leaky, schedule.round_keys[7]));
}

// --- the step functions against keystream.h's EVP construction -------------------------

TEST_P(AesCtrInPage, StepsMatchTheEvpConstruction) {
  EVP_CIPHER_CTX* ctx = keystream_new();
  ASSERT_NE(ctx, nullptr);
  for (int run = 0; run < 30; ++run) {
    uint8_t evp_key[32], page_key[32];
    random_bytes(evp_key, sizeof evp_key);
    std::memcpy(page_key, evp_key, sizeof page_key);
    AesSchedule schedule;
    uint8_t counter[16];
    random_bytes(counter, sizeof counter);  // the reseed sets it to 0
    for (int step = 0; step < 12; ++step) {
      const int kind = step == 0 ? 0 : static_cast<int>(rng_() % 3);
      const size_t size = 16 * (rng_() % (step % 4 == 0 ? 600 : 70));
      Bytes evp_out(size), page_out(size);
      if (kind == 0) {
        ASSERT_TRUE(keystream_reseed_step(ctx, evp_key, evp_out.data(), size));
        ASSERT_TRUE(
            page_keystream_reseed_step(&schedule, counter, page_key, page_out.data(), size));
      } else if (kind == 1) {
        ASSERT_TRUE(keystream_step(ctx, evp_key, evp_out.data(), size));
        ASSERT_TRUE(page_keystream_step(&schedule, counter, page_key, page_out.data(), size));
      } else {
        uint8_t next_key[32];
        random_bytes(next_key, sizeof next_key);
        ASSERT_TRUE(keystream_bulk_step(ctx, evp_key, evp_out.data(), size, next_key));
        ASSERT_TRUE(page_keystream_bulk_step(&schedule, counter, page_key, page_out.data(), size,
                                             next_key));
      }
      ASSERT_EQ(page_out, evp_out) << "run " << run << " step " << step << " kind " << kind;
      ASSERT_EQ(Bytes(page_key, page_key + 32), Bytes(evp_key, evp_key + 32));
      const AesSchedule zero{};
      ASSERT_EQ(std::memcmp(&schedule, &zero, sizeof zero), 0) << "schedule wiped after a step";
    }
  }
  keystream_free(ctx);
}

// The reseed step with a cipher input (seed.h: the expansion fused with the CBC-MAC's first
// block, then K' and up to 6 output blocks in one group, else the plain step) against the EVP
// construction: 1 to 4 input blocks, 0 to 9 output blocks (both sides of the one-group limit).
TEST_P(AesCtrInPage, ReseedStepsWithCipherInputMatchTheEvpConstruction) {
  EVP_CIPHER_CTX* ctx = keystream_new();
  ASSERT_NE(ctx, nullptr);
  for (size_t input_blocks = 1; input_blocks <= 4; ++input_blocks) {
    for (size_t nblocks = 0; nblocks <= 9; ++nblocks) {
      uint8_t evp_key[32], page_key[32], input[64], counter[16];
      random_bytes(evp_key, sizeof evp_key);
      random_bytes(input, sizeof input);
      random_bytes(counter, sizeof counter);  // the reseed sets it
      std::memcpy(page_key, evp_key, sizeof page_key);
      const size_t size = 16 * nblocks;
      Bytes evp_out(size + 1), page_out(size + 1);  // one byte past: never written
      AesSchedule schedule;
      ASSERT_TRUE(keystream_reseed_step(ctx, evp_key, evp_out.data(), size, input, input_blocks));
      ASSERT_TRUE(page_keystream_reseed_step(&schedule, counter, page_key, page_out.data(), size,
                                             input, input_blocks));
      ASSERT_EQ(page_out, evp_out) << input_blocks << " input blocks, " << nblocks << " out";
      ASSERT_EQ(Bytes(page_key, page_key + 32), Bytes(evp_key, evp_key + 32));
      const AesSchedule zero{};
      ASSERT_EQ(std::memcmp(&schedule, &zero, sizeof zero), 0) << "schedule wiped";
    }
  }
  keystream_free(ctx);
}

// The steps from counters just below the low half's wrap (vaes-avx2 fuses the expansion
// with a first 16-block group only when that group does not carry), against aes256_ctr
// over the same blocks: a step is K' (2 blocks) then its output, a bulk step its output.
TEST_P(AesCtrInPage, StepsMatchCtrAcrossTheCarry) {
  for (uint64_t below : {1, 2, 13, 14, 15, 16, 17, 30}) {
    for (size_t nblocks : {0, 13, 14, 15, 16, 17, 40}) {
      uint8_t key[32], start[16];
      random_bytes(key, sizeof key);
      random_bytes(start, 8);
      for (int i = 8; i < 16; ++i) start[i] = static_cast<uint8_t>((~below + 1) >> (8 * (15 - i)));
      AesSchedule schedule;
      ASSERT_TRUE(aes256_expand(&schedule, key));
      uint8_t counter[16];
      std::memcpy(counter, start, sizeof counter);
      Bytes expected((nblocks + 2) * 16);
      ASSERT_TRUE(aes256_ctr(&schedule, counter, expected.data(), nblocks + 2));
      aes256_wipe(&schedule);
      for (bool bulk : {false, true}) {
        uint8_t page_key[32], next_key[32] = {7};
        std::memcpy(page_key, key, sizeof key);
        std::memcpy(counter, start, sizeof counter);
        Bytes out(nblocks * 16 + 1);
        if (bulk) {
          ASSERT_TRUE(page_keystream_bulk_step(&schedule, counter, page_key, out.data(),
                                               nblocks * 16, next_key));
          EXPECT_EQ(Bytes(out.begin(), out.end() - 1), Bytes(expected.begin(), expected.end() - 32))
              << below << " " << nblocks;
          EXPECT_EQ(std::memcmp(page_key, next_key, 32), 0);
        } else {
          ASSERT_TRUE(page_keystream_step(&schedule, counter, page_key, out.data(), nblocks * 16));
          EXPECT_EQ(Bytes(page_key, page_key + 32), Bytes(expected.begin(), expected.begin() + 32));
          EXPECT_EQ(Bytes(out.begin(), out.end() - 1), Bytes(expected.begin() + 32, expected.end()))
              << below << " " << nblocks;
        }
        EXPECT_EQ(out.back(), 0) << "nothing written past the output";
        const AesSchedule zero{};
        EXPECT_EQ(std::memcmp(&schedule, &zero, sizeof zero), 0);
      }
    }
  }
}

TEST_P(AesCtrInPage, NegativeControlStepsWithoutWipeLeaveTheSchedule) {
  uint8_t key[32], counter[16], out[64];
  random_bytes(key, sizeof key);
  AesSchedule schedule;
  const AesSchedule zero{};
  g_aes_ctr_test_flags.skip_schedule_wipe = true;
  ASSERT_TRUE(page_keystream_reseed_step(&schedule, counter, key, out, sizeof out));
  EXPECT_NE(std::memcmp(&schedule, &zero, sizeof zero), 0);
  ASSERT_TRUE(page_keystream_bulk_step(&schedule, counter, key, out, sizeof out, key));
  EXPECT_NE(std::memcmp(&schedule, &zero, sizeof zero), 0);
}

TEST_P(AesCtrInPage, StepsRejectPartialBlocksAndFailClosed) {
  uint8_t key[32], counter[16] = {}, out[40];
  random_bytes(key, sizeof key);
  std::memset(out, 0x5a, sizeof out);
  AesSchedule schedule;
  EXPECT_FALSE(page_keystream_step(&schedule, counter, key, out, sizeof out));
  const uint8_t zeros[40] = {};
  EXPECT_EQ(std::memcmp(key, zeros, 32), 0);
  EXPECT_EQ(std::memcmp(out, zeros, sizeof out), 0);
}

INSTANTIATE_TEST_SUITE_P(EveryVariant, AesCtrInPage,
                         ::testing::Values(AesVariant::kAesni, AesVariant::kVaesAvx2),
                         [](const ::testing::TestParamInfo<AesVariant>& info) {
                           std::string name = aes_ctr_variant_name(info.param);
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// --- dispatch --------------------------------------------------------------------------

class AesCtrDispatch : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("SNAPSAFE_KEYSTREAM");
    g_aes_ctr_test_flags.failing_self_test = -1;
    g_aes_ctr_test_flags.failing_fused_self_test = -1;
    aes_ctr_reselect_for_testing();
  }
};

// The fastest variant the CPU offers, decided here from CPUID independently (VAES:
// leaf 7, ECX bit 9; AVX2: leaf 7, EBX bit 5; the OS saves ymm: XCR0 bits 1 and 2).
AesVariant expected_fastest() {
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  const bool vaes = ecx & (1u << 9), avx2 = ebx & (1u << 5);
  unsigned c1 = 0;
  __get_cpuid(1, &eax, &ebx, &c1, &edx);
  unsigned xcr0 = 0;
  if (c1 & (1u << 27)) __asm__("xgetbv" : "=a"(xcr0) : "c"(0) : "edx");  // OSXSAVE
  const bool ymm_saved = (xcr0 & 6) == 6;
  const bool aes = __builtin_cpu_supports("aes");
  if (aes && vaes && avx2 && ymm_saved) {
    return AesVariant::kVaesAvx2;
  }
  if (aes && __builtin_cpu_supports("sse4.1")) return AesVariant::kAesni;
  return AesVariant::kEvp;
}

TEST_F(AesCtrDispatch, PicksTheFastestVariantTheCpuOffers) {
  unsetenv("SNAPSAFE_KEYSTREAM");
  aes_ctr_reselect_for_testing();
  EXPECT_EQ(aes_ctr_variant(), expected_fastest());
  std::printf("in-page keystream: %s\n", aes_ctr_variant_name(aes_ctr_variant()));
  EXPECT_STREQ(aes_ctr_variant_name(AesVariant::kVaesAvx2), "vaes-avx2");
  EXPECT_STREQ(aes_ctr_variant_name(AesVariant::kAesni), "aesni");
  EXPECT_STREQ(aes_ctr_variant_name(AesVariant::kEvp), "evp");
  EXPECT_TRUE(aes_ctr_variant_supported(AesVariant::kEvp));
}

// A variant that computes its known answer wrongly at selection (an emulator's VAES:
// QEMU 7.2 TCG gave a guest repeated draws) is passed over for the next one. Control: the
// same selection without the failure chooses it (PicksTheFastestVariantTheCpuOffers).
TEST_F(AesCtrDispatch, AVariantFailingItsKnownAnswerIsNotChosen) {
  unsetenv("SNAPSAFE_KEYSTREAM");
  const std::vector<AesVariant> offered = hardware_variants();
  if (offered.empty()) GTEST_SKIP() << "no AES instructions on this CPU";
  for (AesVariant failing : offered) {
    g_aes_ctr_test_flags.failing_self_test = static_cast<int>(failing);
    aes_ctr_reselect_for_testing();
    const AesVariant chosen = aes_ctr_variant();
    EXPECT_NE(chosen, failing) << aes_ctr_variant_name(failing);
    AesVariant next = AesVariant::kEvp;  // the fastest of the rest
    for (AesVariant v : {AesVariant::kVaesAvx2, AesVariant::kAesni}) {
      if (aes_ctr_variant_supported(v) && v != failing) {
        next = v;
        break;
      }
    }
    EXPECT_EQ(chosen, next);
    setenv("SNAPSAFE_KEYSTREAM", aes_ctr_variant_name(failing), 1);  // asked for by name
    aes_ctr_reselect_for_testing();
    EXPECT_EQ(aes_ctr_variant(), AesVariant::kEvp);
    unsetenv("SNAPSAFE_KEYSTREAM");
  }
  g_aes_ctr_test_flags.failing_self_test = -1;
}

// A variant whose fused expand-and-first-group path gives a wrong known answer is passed
// over like one whose plain path does (vaes-avx2, the variant that fuses them).
TEST_F(AesCtrDispatch, AVariantFailingItsFusedKnownAnswerIsPassedOver) {
  if (!aes_ctr_variant_supported(AesVariant::kVaesAvx2)) GTEST_SKIP() << "no VAES on this CPU";
  g_aes_ctr_test_flags.failing_fused_self_test = static_cast<int>(AesVariant::kVaesAvx2);
  aes_ctr_reselect_for_testing();
  EXPECT_EQ(aes_ctr_variant(), AesVariant::kAesni);
  g_aes_ctr_test_flags.failing_fused_self_test = -1;
  aes_ctr_reselect_for_testing();
  EXPECT_EQ(aes_ctr_variant(), AesVariant::kVaesAvx2);
}

// The reseed's fused head (expand_mac, ctr_key_out) is checked at selection against the
// same made unfused: a variant whose head alone goes wrong is passed over.
TEST_F(AesCtrDispatch, AVariantFailingItsReseedHeadCheckIsPassedOver) {
  const std::vector<AesVariant> offered = hardware_variants();
  if (offered.empty()) GTEST_SKIP() << "no AES instructions on this CPU";
  const AesVariant fastest = offered.back();
  g_aes_ctr_test_flags.failing_reseed_self_test = static_cast<int>(fastest);
  aes_ctr_reselect_for_testing();
  EXPECT_NE(aes_ctr_variant(), fastest);
  g_aes_ctr_test_flags.failing_reseed_self_test = -1;
  aes_ctr_reselect_for_testing();
  EXPECT_EQ(aes_ctr_variant(), fastest);
}

TEST_F(AesCtrDispatch, EnvironmentNamesAVariant) {
  for (AesVariant v : hardware_variants()) {
    setenv("SNAPSAFE_KEYSTREAM", aes_ctr_variant_name(v), 1);
    aes_ctr_reselect_for_testing();
    EXPECT_EQ(aes_ctr_variant(), v);
  }
  for (const char* value : {"evp", "bogus", "", "AESNI"}) {
    setenv("SNAPSAFE_KEYSTREAM", value, 1);
    aes_ctr_reselect_for_testing();
    EXPECT_EQ(aes_ctr_variant(), AesVariant::kEvp) << '"' << value << '"';
  }
}

// With "evp" in force nothing is computed in the page: every call fails closed.
TEST_F(AesCtrDispatch, EvpVariantFailsClosed) {
  setenv("SNAPSAFE_KEYSTREAM", "evp", 1);
  aes_ctr_reselect_for_testing();
  ASSERT_EQ(aes_ctr_variant(), AesVariant::kEvp);
  uint8_t key[32], counter[16] = {}, out[64];
  std::memset(key, 0x11, sizeof key);
  std::memset(out, 0x22, sizeof out);
  AesSchedule schedule;
  std::memset(&schedule, 0x33, sizeof schedule);
  const AesSchedule zero{};
  EXPECT_FALSE(aes256_expand(&schedule, key));
  EXPECT_EQ(std::memcmp(&schedule, &zero, sizeof zero), 0);
  EXPECT_FALSE(aes256_ctr(&schedule, counter, out, 4));
  const uint8_t zeros[64] = {};
  EXPECT_EQ(std::memcmp(out, zeros, sizeof out), 0);
  std::memset(out, 0x22, sizeof out);
  EXPECT_FALSE(page_keystream_reseed_step(&schedule, counter, key, out, sizeof out));
  EXPECT_EQ(std::memcmp(key, zeros, sizeof key), 0);
  EXPECT_EQ(std::memcmp(out, zeros, sizeof out), 0);
}

}  // namespace
}  // namespace snapsafe::rng_internal
