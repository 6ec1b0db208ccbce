// The fast-key-erasure construction: see keystream.h.
#include "rng/internal/keystream.h"

#include <openssl/crypto.h>

#include <cstring>

namespace snapsafe::rng_internal {
namespace {

const uint8_t kZeroIv[16] = {};

const EVP_CIPHER* cipher() {
  static const EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
  return fetched;
}

// The keystream itself: zeros encrypted from a static all-zero block straight into `out`
// (no separate pass to clear `out` first). EVP takes int lengths.
constexpr size_t kZeroBlockBytes = 16384;
alignas(64) const uint8_t kZeros[kZeroBlockBytes] = {};

bool stream(EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size) {
  while (size > 0) {
    const int chunk = static_cast<int>(size < kZeroBlockBytes ? size : kZeroBlockBytes);
    int written = 0;
    if (EVP_EncryptUpdate(ctx, out, &written, kZeros, chunk) != 1 || written != chunk) {
      return false;
    }
    out += chunk;
    size -= static_cast<size_t>(chunk);
  }
  return true;
}

}  // namespace

EVP_CIPHER_CTX* keystream_new(const uint8_t key[kKeyBytes]) noexcept {
  if (cipher() == nullptr) return nullptr;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_EncryptInit_ex2(ctx, cipher(), key, kZeroIv, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

bool keystream_rekey(EVP_CIPHER_CTX* ctx, const uint8_t key[kKeyBytes]) noexcept {
  return EVP_EncryptInit_ex2(ctx, nullptr, key, kZeroIv, nullptr) == 1;
}

bool keystream_rekey_continuing(EVP_CIPHER_CTX* ctx, const uint8_t key[kKeyBytes]) noexcept {
  return EVP_EncryptInit_ex2(ctx, nullptr, key, nullptr, nullptr) == 1;
}

bool keystream_bulk_step(EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size,
                         const uint8_t next_key[kKeyBytes]) noexcept {
  const bool ok = stream(ctx, out, size) && keystream_rekey_continuing(ctx, next_key);
  if (!ok) OPENSSL_cleanse(out, size);
  return ok;
}

// A step is a bulk step whose next key is the first 32 bytes of its own keystream.
bool keystream_step(EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size) noexcept {
  uint8_t next_key[kKeyBytes];
  const bool ok = stream(ctx, next_key, sizeof next_key) &&
                  keystream_bulk_step(ctx, out, size, next_key);
  OPENSSL_cleanse(next_key, sizeof next_key);
  if (!ok) OPENSSL_cleanse(out, size);
  return ok;
}

void keystream_free(EVP_CIPHER_CTX* ctx) noexcept { EVP_CIPHER_CTX_free(ctx); }

}  // namespace snapsafe::rng_internal
