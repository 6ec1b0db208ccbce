// File: bench/paired.cc
//
// The paired ratios of snapsafe_bench (the target ratios of bench/summarize.py) timed
// drift-free: snapsafe and its anchor in alternating bursts on one thread (u64 against
// absl::BitGen; a 4096-byte fill against the raw EVP keystream and against the in-page
// keystream alone), and the reseed, one getrandom(32) system call and the reseed's
// floors in rotating blocks. The floors: of the 4096-byte fill, the bulk step alone (the
// draw path's: in the page, expand, keystream, wipe; under SNAPSAFE_KEYSTREAM=evp, re-key,
// keystream, park), against each of the fill's two anchors; of the reseed, derive_seed
// and a 16-byte reseed step (what the restore-proof design cannot skip: see
// measure_reseed_rounds), and the seed's inputs alone (the getrandom(32) system call and two RDRAND words); and, on a machine with the
// vDSO getrandom and RDRAND, a kernel-backed 16-byte draw against the vDSO call, beside
// its floor (the vDSO call and two raw RDRAND words XORed over it).
#include "bench/paired.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bench/bench_util.h"
#include "bench/implementations.h"
#include "bench/pairs.h"
#include "bench/simulated_sources.h"
#include "benchmark/benchmark.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/seed.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::bench {
namespace {

// Paired ratios. Each target ratio compares snapsafe with an anchor. Google Benchmark
// times the two in separate 0.15 s repetitions, seconds apart, and this host's speed moves
// within seconds (absl's u64 took 2.8 ns in one run and 4.6 ns in the next). Here the two
// sides run in alternating bursts of ~10-50 us on one thread, A first in even pairs and B
// first in odd ones, and the ratio is the median of the per-pair ratios: a drift slower
// than a pair hits both sides alike.

// The sides of the pairs, each with op() (the anchors KeystreamOp and BulkStep4096Op are
// defined with their benchmarks above): one u64 of an implementation (snapsafe's draw,
// with and without both generation reads for the check's cost, and absl's), and one
// 16-byte fill (kernel-backed snapsafe, the vDSO alone).
template <class Impl>
struct U64Op {
  Impl impl;
  BENCH_INLINE void op() { benchmark::DoNotOptimize(impl.u64()); }
};
template <class Impl>
struct Fill16Op {
  Impl impl;
  uint8_t out[16];
  BENCH_INLINE void op() {
    impl.fill(out, sizeof out);
    benchmark::DoNotOptimize(out);
  }
};
struct SnapsafeFill4096Op {
  alignas(64) static inline uint8_t out[4096];
  BENCH_INLINE void op() {
    snapsafe::fill(out, sizeof out);
    uint8_t* p = out;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

// The floor of a kernel-backed 16-byte draw (SNAPSAFE_SOURCE=kernel): the vDSO and the
// two raw RDRAND words of the mask that a replayed vDSO state needs (kernel_output.h),
// with no health check, call or wipe around them.
__attribute__((target("rdrnd"), noinline)) void raw_rdrand_mask16(uint8_t out[16]) {
  unsigned long long words[2];
  if (!(_rdrand64_step(&words[0]) & _rdrand64_step(&words[1]))) die("RDRAND failed");
  uint64_t mixed[2];
  std::memcpy(mixed, out, sizeof mixed);
  mixed[0] ^= words[0];
  mixed[1] ^= words[1];
  std::memcpy(out, mixed, sizeof mixed);
}
struct MaskedVdso {
  VdsoGetrandom vdso;
  BENCH_INLINE void fill(void* out, size_t size) {
    vdso.fill(out, size);
    raw_rdrand_mask16(static_cast<uint8_t*>(out));
  }
};

// The reseed against one getrandom(32) system call, and against two floors timed in the
// same loop. The reseed's floor is the part of a reseed the restore-proof design leaves no
// way around: derive_seed (the kernel's bytes by system call, never from the vDSO, whose
// state a snapshot replays; two RDRAND words, which keep clones of a cloned kernel apart;
// the TSC) and a reseed step (the inputs CBC-MAC'd into its first counter block) that
// makes only a 16-byte draw's output (the draw path's: in the page, expand, next key, wipe;
// evp: key and IV schedule, next key, park on the zero key, so no key stays in OpenSSL's
// heap). The seed inputs' floor (with RDRAND only) is what any sound reseed must fetch: the
// getrandom(32) system call and two RDRAND words XORed over it. Each round times a block of
// kBlock of each, back to back as Google Benchmark's loops do (each operation after one of
// its kind; the first of a block is not recorded), the blocks in rotating order: a round
// takes ~0.2 ms, far shorter than the host's drift.
std::string measure_reseed_rounds(int rounds) {
  constexpr int kBlock = 33;
  std::vector<double> syscall_ns, reseed_ns, floor_ns, inputs_ns;
  uint8_t seed[32], out[16];
  const bool rdrand = rng_internal::hardware_rng_present();
  StepState s(5);
  auto time_syscall = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      if (rng_internal::kernel_fill(seed, sizeof seed) != 0) die("getrandom failed");
      if (k > 0) syscall_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  auto time_reseed = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      g_sources->bump_sysgenid();
      benchmark::DoNotOptimize(snapsafe::random_u64());
      if (k > 0) reseed_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  auto time_floor = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      if (rng_internal::derive_seed(1, s.st->key) != 0 ||
          !rng_internal::state_keystream_reseed_step(s.st, s.ctx, out, sizeof out)) {
        die("derive_seed / keystream_reseed_step");
      }
      benchmark::DoNotOptimize(out);
      if (k > 0) floor_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  auto time_inputs = [&] {
    if (!rdrand) return;
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      if (rng_internal::kernel_fill(seed, sizeof seed) != 0) die("getrandom failed");
      raw_rdrand_mask16(seed);
      benchmark::DoNotOptimize(seed);
      if (k > 0) inputs_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  for (int i = 0; i < rounds; ++i) {
    switch (i % 4) {
      case 0:
        time_syscall();
        time_reseed();
        time_floor();
        time_inputs();
        break;
      case 1:
        time_reseed();
        time_floor();
        time_inputs();
        time_syscall();
        break;
      case 2:
        time_floor();
        time_inputs();
        time_syscall();
        time_reseed();
        break;
      default:
        time_inputs();
        time_syscall();
        time_reseed();
        time_floor();
        break;
    }
  }
  for (std::vector<double>* v : {&syscall_ns, &reseed_ns, &floor_ns, &inputs_ns}) {
    std::sort(v->begin(), v->end());
  }
  const double syscall_p50 = nearest_rank(syscall_ns, 0.5);
  const double reseed_p50 = nearest_rank(reseed_ns, 0.5),
               reseed_p99 = nearest_rank(reseed_ns, 0.99);
  const double floor_p50 = nearest_rank(floor_ns, 0.5), floor_p99 = nearest_rank(floor_ns, 0.99);
  char text[640];
  std::snprintf(text, sizeof text,
                "{\"rounds\": %d, \"reseed_p50_ns\": %.1f, \"reseed_p99_ns\": %.1f, "
                "\"getrandom32_p50_ns\": %.1f, \"getrandom32_p99_ns\": %.1f, "
                "\"floor_p50_ns\": %.1f, \"floor_p99_ns\": %.1f, "
                "\"p50_ratio\": %.4f, \"p99_ratio\": %.4f, "
                "\"floor_p50_ratio\": %.4f, \"floor_p99_ratio\": %.4f",
                rounds, reseed_p50, reseed_p99, syscall_p50, nearest_rank(syscall_ns, 0.99),
                floor_p50, floor_p99, reseed_p50 / syscall_p50, reseed_p99 / syscall_p50,
                floor_p50 / syscall_p50, floor_p99 / syscall_p50);
  std::string json = text;
  if (!inputs_ns.empty()) {  // the seed inputs' floor: getrandom(32) and two RDRAND words
    const double inputs_p50 = nearest_rank(inputs_ns, 0.5);
    std::snprintf(text, sizeof text,
                  ", \"seed_inputs_p50_ns\": %.1f, \"seed_inputs_p50_ratio\": %.4f, "
                  "\"reseed_vs_seed_inputs_p50_ratio\": %.4f",
                  inputs_p50, inputs_p50 / syscall_p50, reseed_p50 / inputs_p50);
    json += text;
  }
  return json + "}";
}

}  // namespace

std::string measure_paired() {
  g_sources->activate(Source::kSysgenidMmap);
  if (!KeystreamOp<16384>().ready) die("AES-256-CTR unavailable");
  std::string out = "{\n";
  out += "    \"u64_vs_absl\": " +
         measure_pairs<U64Op<Snapsafe<Source::kSysgenidMmap>>, U64Op<AbslBitGen>>(
             4000, 4096, 4096, "snapsafe_ns", "absl_ns") +
         ",\n";
  out += "    \"check_mmap\": " +
         measure_pairs<U64Op<SnapsafeDraw<true>>, U64Op<SnapsafeDraw<false>>>(
             4000, 4096, 4096, "checked_ns", "unchecked_ns") +
         ",\n";
  out += "    \"fill4096_vs_keystream16k\": " +
         measure_pairs<SnapsafeFill4096Op, KeystreamOp<16384>>(4000, 16, 4, "fill4096_ns",
                                                               "keystream16k_ns") +
         ",\n";
  out += "    \"bulk_step4096_vs_keystream16k\": " +
         measure_pairs<BulkStep4096Op, KeystreamOp<16384>>(4000, 16, 4, "bulk_step4096_ns",
                                                           "keystream16k_ns") +
         ",\n";
  if (InPageKeystreamOp<16384>().ready) {  // the variant in use is not evp
    out += "    \"fill4096_vs_inpage_keystream16k\": " +
           measure_pairs<SnapsafeFill4096Op, InPageKeystreamOp<16384>>(4000, 16, 4, "fill4096_ns",
                                                                       "inpage_keystream16k_ns") +
           ",\n";
    out += "    \"bulk_step4096_vs_inpage_keystream16k\": " +
           measure_pairs<BulkStep4096Op, InPageKeystreamOp<16384>>(4000, 16, 4, "bulk_step4096_ns",
                                                                   "inpage_keystream16k_ns") +
           ",\n";
  }
  if (rng_internal::vdso_getrandom_available() && rng_internal::hardware_rng_present()) {
    g_sources->activate(Source::kKernel);
    // On a new thread: this one keeps the state it made under the mmap source.
    std::thread([&out] {
      out += "    \"kernel_fill16_vs_vdso16\": " +
             measure_pairs<Fill16Op<Snapsafe<Source::kKernel>>, Fill16Op<VdsoGetrandom>>(
                 4000, 64, 64, "kernel_fill16_ns", "vdso16_ns") +
             ",\n";
      out += "    \"masked_floor16_vs_vdso16\": " +
             measure_pairs<Fill16Op<MaskedVdso>, Fill16Op<VdsoGetrandom>>(
                 4000, 64, 64, "floor16_ns", "vdso16_ns") +
             ",\n";
    }).join();
    g_sources->activate(Source::kSysgenidMmap);
  }
  out += "    \"reseed_vs_getrandom32\": " + measure_reseed_rounds(600) + "\n  }";
  return out;
}

}  // namespace snapsafe::bench
