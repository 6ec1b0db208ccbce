// Output served without the buffer: see kernel_output.h.
#include "rng/internal/kernel_output.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/setup.h"
#include "rng/internal/test_hooks.h"

namespace snapsafe::rng_internal {
namespace {

// Up to this size the mask is RDRAND words (33 ns per 8 bytes here); above it, a keystream
// under a hardware key (~0.3 us fixed cost, then ~8 GB/s).
constexpr size_t kWordMaskMax = 64;

// XORs an AES-256-CTR keystream keyed by 32 hardware bytes over `out`. Allocates.
bool keystream_mask(void* out, size_t size) {
  uint64_t key[4];
  if (!hardware_rng_words(key, 4)) return false;
  const EVP_CIPHER* const cipher = openssl_objects().aes_256_ctr;
  static const uint8_t iv[16] = {};
  EVP_CIPHER_CTX* ctx = cipher != nullptr ? EVP_CIPHER_CTX_new() : nullptr;
  bool ok = ctx != nullptr &&
            EVP_EncryptInit_ex2(ctx, cipher, reinterpret_cast<uint8_t*>(key), iv, nullptr) == 1;
  auto* bytes = static_cast<uint8_t*>(out);
  while (ok && size > 0) {
    const int chunk = static_cast<int>(size < (1u << 30) ? size : (1u << 30));
    int written = 0;
    ok = EVP_EncryptUpdate(ctx, bytes, &written, bytes, chunk) == 1 && written == chunk;
    bytes += chunk;
    size -= static_cast<size_t>(chunk);
  }
  EVP_CIPHER_CTX_free(ctx);  // frees the key schedule with OPENSSL_clear_free
  if (!SNAPSAFE_TEST_FLAG(keep_stack_secrets)) OPENSSL_cleanse(key, sizeof key);
  return ok;
}

bool hardware_mask(void* out, size_t size, bool signal_safe) {
  if (size <= kWordMaskMax || signal_safe || openssl_exiting()) return hardware_rng_xor(out, size);
  return keystream_mask(out, size);
}

}  // namespace

bool kernel_output_uses_hardware_rng() noexcept { return hardware_rng_present(); }

int kernel_output(void* out, size_t size, bool signal_safe) noexcept {
  if (SNAPSAFE_TEST_FLAG(unmasked_vdso_output)) return kernel_fill_fast(out, size);
  if (hardware_rng_present()) {
    // The vDSO's state may be a replayed copy: safe only under the hardware mask.
    const int error = signal_safe ? kernel_fill(out, size) : kernel_fill_fast(out, size);
    if (error != 0) return error;
    if (hardware_mask(out, size, signal_safe)) return 0;
    // The hardware RNG failed a health check: fall through to a fresh kernel read.
  }
  return kernel_fill(out, size);
}

}  // namespace snapsafe::rng_internal
