// The in-page AES-256-CTR keystream (rng/internal/aes_ctr_in_page.h) against
// today's OpenSSL EVP construction (rng/internal/keystream.h), in one run:
//   evp/ctr_{4k,16k}            EVP AES-256-CTR keystream on a keyed context (the anchor:
//                               what snapsafe_bench's keystream/aes256ctr_* measure)
//   evp/step_{4k,64}            keystream_step today: EVP re-key, 32 + n bytes, park
//   inpage/<variant>/ctr_4k     aes256_ctr over 256 blocks, schedule already expanded
//   inpage/<variant>/step_4k    page_keystream_step(4096): expand, 2 + 256 blocks, wipe,
//                               clear (what one step of the draw path would cost)
//   inpage/<variant>/step_64    page_keystream_step(64): what a reseed's step would cost
//   inpage/<variant>/expand     aes256_expand alone (includes the register clear)
//   inpage/<variant>/expand_ctr_4k
//                               aes256_expand, then aes256_ctr over 256 blocks with it: a
//                               4 KiB step's floor (no K', no wipe)
//   inpage/<variant>/ctr_4k_beside_expand
//                               aes256_expand of another schedule, then ctr_4k from one
//                               expanded before: whether the CPU runs the expansion's
//                               serial chain in the shadow of the keystream (measured on AMD
//                               EPYC Zen 3: no, it costs as much as expand_ctr_4k's)
// for every variant this CPU offers (forced through the test seam, so the binary links
// //rng:snapsafe_testing: one test-flag load per call more than production). The CPU
// features that decide the variants are in the benchmark context.
//   bazel run -c opt --config=bench //bench:aes_ctr_in_page_bench -- \
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <cpuid.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/keystream.h"

namespace {

using snapsafe::rng_internal::AesSchedule;
using snapsafe::rng_internal::AesVariant;
namespace ri = snapsafe::rng_internal;

alignas(64) uint8_t g_out[16384];

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "aes_ctr_in_page_bench: %s\n", what);
  std::exit(1);
}

void bm_evp_ctr(benchmark::State& state, int bytes) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  uint8_t key[32];
  const uint8_t iv[16] = {};
  RAND_bytes(key, sizeof key);
  if (EVP_EncryptInit_ex2(ctx, EVP_aes_256_ctr(), key, iv, nullptr) != 1) die("EVP init");
  for (auto _ : state) {
    int written = 0;
    if (EVP_EncryptUpdate(ctx, g_out, &written, g_out, bytes) != 1) die("EVP_EncryptUpdate");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
  EVP_CIPHER_CTX_free(ctx);
}

void bm_evp_step(benchmark::State& state, size_t bytes) {
  EVP_CIPHER_CTX* ctx = ri::keystream_new();
  if (ctx == nullptr) die("keystream_new");
  uint8_t key[32];
  RAND_bytes(key, sizeof key);
  if (!ri::keystream_reseed_step(ctx, key, g_out, bytes)) die("keystream_reseed_step");
  for (auto _ : state) {
    if (!ri::keystream_step(ctx, key, g_out, bytes)) die("keystream_step");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
  ri::keystream_free(ctx);
}

void force(AesVariant variant) {
  if (!ri::aes_ctr_force_variant_for_testing(variant)) die("variant not offered");
}

void bm_inpage_ctr(benchmark::State& state, AesVariant variant) {
  force(variant);
  alignas(16) static AesSchedule schedule;
  uint8_t key[32], counter[16] = {};
  RAND_bytes(key, sizeof key);
  ri::aes256_expand(&schedule, key);
  for (auto _ : state) {
    ri::aes256_ctr(&schedule, counter, g_out, 256);
    benchmark::ClobberMemory();
  }
  ri::aes256_wipe(&schedule);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}

void bm_inpage_step(benchmark::State& state, AesVariant variant, size_t bytes) {
  force(variant);
  alignas(16) static AesSchedule schedule;
  uint8_t key[32], counter[16] = {};
  RAND_bytes(key, sizeof key);
  if (!ri::page_keystream_reseed_step(&schedule, counter, key, g_out, bytes)) die("step");
  for (auto _ : state) {
    if (!ri::page_keystream_step(&schedule, counter, key, g_out, bytes)) die("step");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
}

// expand_ctr_4k (beside = false) and ctr_4k_beside_expand (true): see the top.
void bm_inpage_expand_ctr(benchmark::State& state, AesVariant variant, bool beside) {
  force(variant);
  alignas(16) static AesSchedule schedule, other;
  uint8_t key[32], counter[16] = {};
  RAND_bytes(key, sizeof key);
  ri::aes256_expand(&schedule, key);
  for (auto _ : state) {
    ri::aes256_expand(beside ? &other : &schedule, key);
    ri::aes256_ctr(&schedule, counter, g_out, 256);
    benchmark::ClobberMemory();
  }
  ri::aes256_wipe(&schedule);
  ri::aes256_wipe(&other);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}

void bm_inpage_expand(benchmark::State& state, AesVariant variant) {
  force(variant);
  alignas(16) static AesSchedule schedule;
  uint8_t key[32];
  RAND_bytes(key, sizeof key);
  for (auto _ : state) {
    ri::aes256_expand(&schedule, key);
    benchmark::ClobberMemory();
  }
  ri::aes256_wipe(&schedule);
}

void add_cpu_context() {
  __builtin_cpu_init();
  const auto yes = [](bool b) { return b ? "yes" : "no"; };
  benchmark::AddCustomContext("cpu_aes", yes(__builtin_cpu_supports("aes")));
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;  // CPUID leaf 7: ECX bit 9 VAES, 10 VPCLMULQDQ
  __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  benchmark::AddCustomContext("cpu_vaes", yes(ecx & (1u << 9)));
  benchmark::AddCustomContext("cpu_avx2", yes(__builtin_cpu_supports("avx2")));
  benchmark::AddCustomContext("cpu_avx512f", yes(__builtin_cpu_supports("avx512f")));
  benchmark::AddCustomContext("cpu_vpclmulqdq", yes(ecx & (1u << 10)));
  benchmark::AddCustomContext("cpu_rdrand", yes(__builtin_cpu_supports("rdrnd")));
  benchmark::AddCustomContext("cpu_sha", yes(__builtin_cpu_supports("sha")));
  benchmark::AddCustomContext("in_page_default_variant",
                              ri::aes_ctr_variant_name(ri::aes_ctr_variant()));
}

void register_benchmarks() {
  benchmark::RegisterBenchmark("evp/ctr_4k", bm_evp_ctr, 4096);
  benchmark::RegisterBenchmark("evp/ctr_16k", bm_evp_ctr, 16384);
  benchmark::RegisterBenchmark("evp/step_4k", bm_evp_step, size_t{4096});
  benchmark::RegisterBenchmark("evp/step_64", bm_evp_step, size_t{64});
  for (AesVariant v : {AesVariant::kAesni, AesVariant::kVaesAvx2}) {
    if (!ri::aes_ctr_variant_supported(v)) continue;
    const std::string prefix = std::string("inpage/") + ri::aes_ctr_variant_name(v) + "/";
    benchmark::RegisterBenchmark((prefix + "ctr_4k").c_str(), bm_inpage_ctr, v);
    benchmark::RegisterBenchmark((prefix + "step_4k").c_str(), bm_inpage_step, v, size_t{4096});
    benchmark::RegisterBenchmark((prefix + "step_64").c_str(), bm_inpage_step, v, size_t{64});
    benchmark::RegisterBenchmark((prefix + "expand").c_str(), bm_inpage_expand, v);
    benchmark::RegisterBenchmark((prefix + "expand_ctr_4k").c_str(), bm_inpage_expand_ctr, v,
                                 false);
    benchmark::RegisterBenchmark((prefix + "ctr_4k_beside_expand").c_str(), bm_inpage_expand_ctr, v,
                                 true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  add_cpu_context();
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
