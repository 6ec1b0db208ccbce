// Output served without the buffer (rng/internal/kernel_output.h), against the two
// failures measured on real restores and clones, each with its negative control:
//  - a replayed vDSO getrandom state (CRIU restores it byte for byte): simulated by
//    copying the state away and back; unmasked, the vDSO returns the same bytes again;
//  - a cloned kernel RNG (same VMGenID GUID, or none): simulated by a kernel that returns
//    the same bytes on every read; only the hardware RNG tells the draws apart.
// And the hardware RNG's health checks, and the mask's two forms: one RDRAND word per 8
// bytes up to 64 bytes, above that AES-256-CTR keyed by 4 words (hardware_rng_keyed_xor).
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <set>
#include <string>

#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_output.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/vdso_getrandom.h"
#include "rng/status.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

class KernelOutput : public ::testing::Test {
 protected:
  void SetUp() override { testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}}); }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

Bytes draw(size_t size) {
  Bytes bytes(size);
  fill(bytes.data(), bytes.size());
  return bytes;
}

// Draws 16 bytes, puts this thread's vDSO state back as it was before, draws again:
// what a process restored twice from one image does. Returns whether both draws match.
bool replayed_vdso_state_repeats() {
  bool repeated = false;
  testing::on_new_thread([&] {
    draw(16);  // the thread's vDSO state now exists
    size_t length = 0;
    void* state = rng_internal::vdso_getrandom_thread_state(&length);
    ASSERT_NE(state, nullptr);
    const Bytes saved(static_cast<uint8_t*>(state), static_cast<uint8_t*>(state) + length);
    const Bytes first = draw(16);
    std::memcpy(state, saved.data(), length);  // the restore
    repeated = draw(16) == first;
  });
  return repeated;
}

TEST_F(KernelOutput, AReplayedVdsoStateIsMaskedByTheHardwareRng) {
  if (!rng_internal::vdso_getrandom_available()) GTEST_SKIP() << "no vDSO getrandom";
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  EXPECT_FALSE(replayed_vdso_state_repeats());
}

TEST_F(KernelOutput, WithoutAHardwareRngTheVdsoIsNeverUsed) {
  if (!rng_internal::vdso_getrandom_available()) GTEST_SKIP() << "no vDSO getrandom";
  rng_internal::g_test_hooks.disable_hardware_rng = true;
  testing::on_new_thread([] {
    EXPECT_NE(draw(16), draw(16));
    size_t length = 0;
    EXPECT_EQ(rng_internal::vdso_getrandom_thread_state(&length), nullptr)
        << "no replayable state: every draw is a getrandom(2) system call";
  });
}

TEST_F(KernelOutput, NegativeControlTheVdsoAloneReplays) {
  if (!rng_internal::vdso_getrandom_available()) GTEST_SKIP() << "no vDSO getrandom";
  rng_internal::g_test_hooks.unmasked_vdso_output = true;
  // The kernel may reseed (and so re-key the vDSO) between the two draws: rare, retried.
  bool repeated = false;
  for (int attempt = 0; attempt < 3 && !repeated; ++attempt)
    repeated = replayed_vdso_state_repeats();
  EXPECT_TRUE(repeated);
}

// Distinct values among `count` draws of `size` bytes from a kernel RNG that repeats.
size_t distinct_draws_from_a_cloned_kernel(size_t count, size_t size) {
  rng_internal::g_test_hooks.cloned_kernel = true;
  std::set<Bytes> seen;
  for (size_t i = 0; i < count; ++i) seen.insert(draw(size));
  return seen.size();
}

TEST_F(KernelOutput, ACloneOfTheKernelRngIsMaskedByTheHardwareRng) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(64, 16), 64u);
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(8, 4096), 8u);  // the keystream mask
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(8, 65), 8u);
  EXPECT_TRUE(status().cloned_kernel_rng.covered) << status().to_string();
}

TEST_F(KernelOutput, NegativeControlWithoutAHardwareRngACloneRepeats) {
  rng_internal::g_test_hooks.disable_hardware_rng = true;
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(64, 16), 1u);
  EXPECT_FALSE(status().cloned_kernel_rng.covered) << "status must say so";
}

// Health checks: each bad pattern is refused, so the output falls back to the kernel.
uint64_t g_next_value = 0;
uint64_t g_step = 0;
uint64_t scripted_value() { return g_next_value += g_step; }

bool hardware_words_accepted(uint64_t start, uint64_t step) {
  g_next_value = start - step;
  g_step = step;
  rng_internal::g_test_hooks.hardware_rng_value = &scripted_value;
  uint64_t words[4];
  const bool ok = rng_internal::hardware_rng_words(words, 4);
  rng_internal::g_test_hooks.hardware_rng_value = nullptr;
  return ok;
}

TEST_F(KernelOutput, TheHardwareRngIsHealthChecked) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  EXPECT_TRUE(hardware_words_accepted(0x0123456789abcdefu, 0x1111));  // changing values
  EXPECT_FALSE(hardware_words_accepted(0x0123456789abcdefu, 0));      // stuck
  EXPECT_FALSE(hardware_words_accepted(~uint64_t{0}, 0));             // all ones (AMD)
  EXPECT_FALSE(hardware_words_accepted(0, 0));                        // all zeros
}

// Every byte of the mask is a hardware byte, in order: with scripted values XORed over
// zeros, the output is exactly those values' bytes, for sizes around the 8-byte words and
// past 64 bytes (the signal-safe path masks any size this way). Mutation
// "rdrand-xor-tail" (a partial last word left unmasked) fails it.
TEST_F(KernelOutput, TheHardwareMaskCoversEveryByte) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  for (size_t size : {1, 7, 8, 9, 16, 63, 64, 65, 71, 72, 127, 128, 129, 200}) {
    g_next_value = 0x0123456789abcdefu - 0x1111;
    g_step = 0x1111;
    rng_internal::g_test_hooks.hardware_rng_value = &scripted_value;
    Bytes masked(size, 0);
    const bool ok = rng_internal::hardware_rng_xor(masked.data(), size);
    rng_internal::g_test_hooks.hardware_rng_value = nullptr;
    ASSERT_TRUE(ok) << size;
    Bytes expected(size);
    for (size_t i = 0; i < size; ++i) {
      const uint64_t word = 0x0123456789abcdefu + 0x1111 * (i / 8);
      expected[i] = static_cast<uint8_t>(word >> (8 * (i % 8)));
    }
    EXPECT_EQ(masked, expected) << size << " bytes";
  }
}

// Above 64 bytes the mask is AES-256-CTR (counter block 0) keyed by 4 healthy hardware
// words, in order: with scripted values XORed over zeros, the output is exactly that
// keystream (EVP computes it here), at sizes around the blocks and the 256-byte chunks.
bool in_page_aes() { return rng_internal::aes_ctr_variant() != rng_internal::AesVariant::kEvp; }

TEST_F(KernelOutput, TheKeyedMaskIsAes256CtrUnderFourHardwareWords) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  if (!in_page_aes()) GTEST_SKIP() << "evp keystream: no keyed mask";
  for (size_t size : {65, 80, 255, 256, 257, 1000, 4096, 4099}) {
    g_next_value = 0x0123456789abcdefu - 0x1111;
    g_step = 0x1111;
    rng_internal::g_test_hooks.hardware_rng_value = &scripted_value;
    Bytes masked(size, 0);
    const bool ok = rng_internal::hardware_rng_keyed_xor(masked.data(), size);
    rng_internal::g_test_hooks.hardware_rng_value = nullptr;
    ASSERT_TRUE(ok) << size;
    uint64_t key[4];
    for (int i = 0; i < 4; ++i) key[i] = 0x0123456789abcdefu + 0x1111 * i;
    const uint8_t iv[16] = {};
    Bytes expected(size, 0);
    int written = 0;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ASSERT_EQ(
        EVP_EncryptInit_ex2(ctx, EVP_aes_256_ctr(), reinterpret_cast<uint8_t*>(key), iv, nullptr),
        1);
    ASSERT_EQ(
        EVP_EncryptUpdate(ctx, expected.data(), &written, expected.data(), static_cast<int>(size)),
        1);
    EVP_CIPHER_CTX_free(ctx);
    EXPECT_EQ(masked, expected) << size << " bytes";
  }
}

// A kernel-backed draw over 64 bytes takes the keyed mask: 4 hardware words for 4 KiB,
// not 512; up to 64 bytes, one word per 8 bytes.
size_t hardware_words_for_a_draw(size_t size) {
  g_next_value = 0x0123456789abcdefu - 0x1111;
  g_step = 0x1111;
  rng_internal::g_test_hooks.hardware_rng_value = &scripted_value;
  Bytes out(size);
  EXPECT_EQ(rng_internal::kernel_output(out.data(), size, /*signal_safe=*/false), 0);
  rng_internal::g_test_hooks.hardware_rng_value = nullptr;
  return static_cast<size_t>((g_next_value - (0x0123456789abcdefu - 0x1111)) / 0x1111);
}

TEST_F(KernelOutput, LargeDrawsAreMaskedByAKeystreamUnderFourHardwareWords) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  if (!in_page_aes()) GTEST_SKIP() << "evp keystream: every size is masked word by word";
  EXPECT_EQ(hardware_words_for_a_draw(4096), 4u);
  EXPECT_EQ(hardware_words_for_a_draw(65), 4u);
  EXPECT_EQ(hardware_words_for_a_draw(64), 8u);
  EXPECT_EQ(hardware_words_for_a_draw(16), 2u);
}

TEST_F(KernelOutput, AFailingHardwareRngFallsBackToAFreshKernelRead) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  g_next_value = 7;
  g_step = 0;  // stuck: refused
  rng_internal::g_test_hooks.hardware_rng_value = &scripted_value;
  std::set<Bytes> seen;
  for (int i = 0; i < 32; ++i) seen.insert(draw(16));
  EXPECT_EQ(seen.size(), 32u);  // the system call still serves distinct output
}

// status() judges RDRAND by the health checks the draws apply, not by its CPUID bit
// a CPU whose RDRAND returns all ones (the AMD erratum) masks nothing,
// so a cloned kernel's output repeats, and status() must say that case is not covered.
uint64_t all_ones() { return ~uint64_t{0}; }

TEST_F(KernelOutput, StatusSaysAFailingHardwareRngCoversNoClonedKernel) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  rng_internal::g_test_hooks.hardware_rng_value = &all_ones;
  const Status s = status();
  EXPECT_FALSE(s.hardware_rng);
  EXPECT_TRUE(s.hardware_rng_failed);
  EXPECT_FALSE(s.cloned_kernel_rng.covered) << s.to_string();
  EXPECT_EQ(s.to_string().find("XORed with RDRAND"), std::string::npos) << s.to_string();
  EXPECT_NE(s.to_string().find("RDRAND fails its health checks"), std::string::npos)
      << s.to_string();
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(16, 16), 1u) << "a clone repeats indeed";
  rng_internal::g_test_hooks.hardware_rng_value = nullptr;
  EXPECT_TRUE(status().cloned_kernel_rng.covered) << "a healthy RDRAND covers it again";
}

TEST_F(KernelOutput, NegativeControlStatusTrustingTheCpuidBitClaimsCoverage) {
  if (!rng_internal::hardware_rng_present()) GTEST_SKIP() << "no hardware RNG";
  rng_internal::g_test_hooks.status_trusts_cpuid = true;
  rng_internal::g_test_hooks.hardware_rng_value = &all_ones;
  const Status s = status();
  EXPECT_TRUE(s.cloned_kernel_rng.covered) << s.to_string();
  EXPECT_NE(s.to_string().find("XORed with RDRAND"), std::string::npos) << s.to_string();
  EXPECT_EQ(distinct_draws_from_a_cloned_kernel(16, 16), 1u) << "while a clone repeats";
}

}  // namespace
}  // namespace snapsafe
