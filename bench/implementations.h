// File: bench/implementations.h
//
// What snapsafe_bench compares: snapsafe (per simulated generation source, through its
// public draw API, and draw_with<kCheck> directly for the generation check's cost) and the
// alternatives (std::random_device, the getrandom system call, the vDSO getrandom,
// arc4random, OpenSSL RAND_bytes, absl::BitGen, std::mt19937_64). Each implementation has
// u64() and fill(out, size); one instance per benchmark thread. Below them the anchors and
// pieces both the benchmarks and the paired runs time, each with op(): the raw EVP
// keystream (the ceiling of a fill), the in-page keystream alone, and the draw path's bulk
// step over 4096 bytes.
#ifndef SNAPSAFE_BENCH_IMPLEMENTATIONS_H_
#define SNAPSAFE_BENCH_IMPLEMENTATIONS_H_

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>

#include "absl/random/random.h"
#include "bench/bench_util.h"
#include "bench/simulated_sources.h"
#include "benchmark/benchmark.h"
#include "ids/ids.h"
#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/keystream.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/thread_state.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::bench {

template <Source kSource>
struct Snapsafe {
  BENCH_INLINE uint64_t u64() { return snapsafe::random_u64(); }
  BENCH_INLINE void fill(void* out, size_t size) { snapsafe::fill(out, size); }
  BENCH_INLINE std::string uuid() { return snapsafe::uuid_v4_string(); }
};

// Generators that fill bytes: a u64 is an 8-byte fill.
template <class Self>
struct BytesU64 {
  BENCH_INLINE uint64_t u64() {
    uint64_t value;
    static_cast<Self*>(this)->fill(&value, sizeof value);
    return value;
  }
};

// rng_internal::draw_with<kCheck> called directly, so the check and no-check variants
// compile to the same shape. kCheck = false is the same fast path with both generation
// reads removed: never snapshot-safe, only the baseline for the check.
template <bool kCheck>
struct SnapsafeDraw : BytesU64<SnapsafeDraw<kCheck>> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (const int error = rng_internal::draw_with<kCheck>(out, size)) {
      rng_internal::throw_entropy_error(error);
    }
  }
};
using SnapsafeNoCheck = SnapsafeDraw<false>;

// Generators that produce words: a fill is a loop of u64 outputs.
template <class Self>
struct WordFill {
  BENCH_INLINE void fill(void* out, size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    while (size >= 8) {
      const uint64_t word = static_cast<Self*>(this)->u64();
      std::memcpy(bytes, &word, 8);
      bytes += 8;
      size -= 8;
    }
    if (size > 0) {
      const uint64_t word = static_cast<Self*>(this)->u64();
      std::memcpy(bytes, &word, size);
    }
  }
};

struct RandomDevice : WordFill<RandomDevice> {
  std::random_device device;  // libstdc++'s "default" token
  BENCH_INLINE uint64_t u64() { return (uint64_t{device()} << 32) | device(); }
};

struct Getrandom : BytesU64<Getrandom> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (rng_internal::kernel_fill(out, size) != 0) die("getrandom failed");  // the syscall
  }
};

struct VdsoGetrandom : BytesU64<VdsoGetrandom> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (snapsafe::rng_internal::vdso_getrandom(out, size) != 0) die("vDSO getrandom failed");
  }
};

struct Arc4random : BytesU64<Arc4random> {
  BENCH_INLINE void fill(void* out, size_t size) { arc4random_buf(out, size); }
};

struct OpensslRand : BytesU64<OpensslRand> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(size)) != 1) {
      die("RAND_bytes failed");
    }
  }
};

struct AbslBitGen : WordFill<AbslBitGen> {
  absl::BitGen gen;
  BENCH_INLINE uint64_t u64() { return gen(); }
};

struct Mt19937 : WordFill<Mt19937> {
  std::mt19937_64 gen{std::random_device{}()};
  BENCH_INLINE uint64_t u64() { return gen(); }
};

// Whether the implementation can run here; skips the benchmark with the reason if not.
template <class Impl>
bool available(benchmark::State& state) {
  if constexpr (std::is_same_v<Impl, VdsoGetrandom>) {
    if (!snapsafe::rng_internal::vdso_getrandom_available()) {
      state.SkipWithError(snapsafe::rng_internal::vdso_getrandom_unavailable_reason().c_str());
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Anchors and pieces, each with op().

// The raw keystream ceiling: `cipher_name` encrypting a kBytes buffer in place, one EVP
// call per op(). Used by bm_keystream and, as the anchor of a pair, by measure_pairs.
template <int kBytes>
struct KeystreamOp {
  EVP_CIPHER* cipher;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  alignas(64) static inline uint8_t buffer[kBytes];
  bool ready = false;
  explicit KeystreamOp(const char* cipher_name = "AES-256-CTR")
      : cipher(EVP_CIPHER_fetch(nullptr, cipher_name, nullptr)) {
    uint8_t key[32];
    const uint8_t iv[16] = {};
    RAND_bytes(key, sizeof key);
    ready = cipher != nullptr && ctx != nullptr &&
            EVP_EncryptInit_ex2(ctx, cipher, key, iv, nullptr) == 1;
  }
  ~KeystreamOp() {
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
  }
  BENCH_INLINE void op() {
    int written = 0;
    if (EVP_EncryptUpdate(ctx, buffer, &written, buffer, kBytes) != 1) die("EVP_EncryptUpdate");
    uint8_t* p = buffer;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

// The in-page keystream alone (rng/internal/aes_ctr_in_page.h, the variant the draw path
// dispatched to): aes256_ctr over a kBytes buffer from a schedule expanded once, the
// ceiling of the draw path's own keystream. Not ready when the variant in use is evp.
template <int kBytes>
struct InPageKeystreamOp {
  alignas(16) rng_internal::AesSchedule schedule;
  uint8_t counter[rng_internal::kAesBlockBytes] = {};
  alignas(64) static inline uint8_t buffer[kBytes];
  bool ready = false;
  InPageKeystreamOp() {
    uint8_t key[32];
    RAND_bytes(key, sizeof key);
    ready = rng_internal::aes256_expand(&schedule, key);
  }
  ~InPageKeystreamOp() { rng_internal::aes256_wipe(&schedule); }
  BENCH_INLINE void op() {
    if (!rng_internal::aes256_ctr(&schedule, counter, buffer,
                                  kBytes / rng_internal::kAesBlockBytes)) {
      die("aes256_ctr");
    }
    uint8_t* p = buffer;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

// A thread state of the bench's own (not the thread's) and the cipher context the
// keystream in use needs (state_keystream.h: none in the page, an EVP context under
// SNAPSAFE_KEYSTREAM=evp), to time the steps the draw path makes, through its seam.
struct StepState {
  rng_internal::ThreadState* st = new rng_internal::ThreadState{};
  EVP_CIPHER_CTX* ctx = nullptr;
  explicit StepState(uint8_t key_byte) {
    st->key[0] = key_byte;
    if (rng_internal::state_keystream_in_page()) return;
    ctx = rng_internal::keystream_new();
    if (ctx == nullptr) die("keystream_new");
  }
  ~StepState() {
    rng_internal::keystream_free(ctx);
    delete st;
  }
};

// A 4096-byte fill's bulk step alone, as the draw path makes it (in the page: expand,
// 4096 bytes of keystream straight to the output, wipe; evp: re-key, keystream, park); the
// next key is handed in, as produce() takes it from the buffer. What a 4096-byte fill
// cannot go below (component/bulk_step_4096, and the bound of the fill's paired ratio).
struct BulkStep4096Op {
  StepState s{3};
  const uint8_t next_key[32] = {4};
  alignas(64) static inline uint8_t out[4096];
  BENCH_INLINE void op() {
    if (!rng_internal::state_keystream_bulk_step(s.st, s.ctx, out, sizeof out, next_key)) {
      die("keystream_bulk_step");
    }
    uint8_t* p = out;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_IMPLEMENTATIONS_H_
