// File: bench/benchmarks.cc
//
// The Google Benchmark part of snapsafe_bench: the benchmark bodies and their
// registration. Benchmarks are named "<operation>/<implementation>" (Google Benchmark
// appends "/real_time" and "/threads:N"); every one is timed in wall-clock time
// (UseRealTime):
//   u64, fill16 (a UUID's bytes), fill32, fill4096 (bytes/s too), uuid_string
//     x snapsafe_sysgenid_mmap | snapsafe_sysgenid_syscall | snapsafe_counter_file |
//       snapsafe_kernel | snapsafe_nocheck (draw_with<false>: the same fast path with both
//       generation reads removed) | random_device | getrandom | vdso_getrandom |
//       arc4random | openssl_rand | absl_bitgen | mt19937_64
//   keystream/<cipher>_16k: OpenSSL EVP encrypting a 16 KiB buffer in place (the ceiling)
//   keystream/aes256ctr_4k: the same in 4096-byte calls (EVP's per-call cost)
//   keystream/inpage_aes256ctr_16k: the in-page keystream alone, 16 KiB per call, in the
//     variant the draw path dispatched to (skipped when that is evp)
//   u64_threads/<impl>/threads:1|2: throughput scaling
//   u64/snapsafe_draw_sysgenid_{mmap,syscall}: draw_with<true>, shaped like the no-check
//     baseline, for check_{mmap,syscall}_ns
//   generate_random/{bulk,loop}_{128,1024}: BitGen's bulk member against a loop of draws
//   component/*: the pieces of a reseed (seed derivation, re-key, buffer refill, wipe,
//     and the CPUID / RDSEED / RDRAND instructions the seed derivation runs), and a
//     4096-byte bulk step
#include "bench/benchmarks.h"

#include <openssl/crypto.h>

#include <array>
#include <string>
#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "bench/implementations.h"
#include "bench/simulated_sources.h"
#include "benchmark/benchmark.h"
#include "rng/bit_gen.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/seed.h"

namespace snapsafe::bench {
namespace {

// ---------------------------------------------------------------------------------------
// Benchmark bodies.

template <class Impl>
void bm_u64(benchmark::State& state) {
  if (!available<Impl>(state)) return;
  Impl impl;
  benchmark::DoNotOptimize(impl.u64());  // this thread's first draw (state creation)
  for (auto _ : state) {
    benchmark::DoNotOptimize(impl.u64());
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Impl, size_t kSize>
void bm_fill(benchmark::State& state) {
  if (!available<Impl>(state)) return;
  Impl impl;
  alignas(64) unsigned char buffer[kSize];
  unsigned char* p = buffer;
  impl.fill(buffer, kSize);
  for (auto _ : state) {
    impl.fill(buffer, kSize);
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kSize));
  state.SetItemsProcessed(state.iterations());
}

template <class Impl>
void bm_uuid_string(benchmark::State& state) {
  Impl impl;
  benchmark::DoNotOptimize(impl.uuid());
  for (auto _ : state) {
    benchmark::DoNotOptimize(impl.uuid());
  }
  state.SetItemsProcessed(state.iterations());
}

// Kernel-backed mode serves a thread that has no state: the benchmark body runs in a
// fresh thread (the main thread keeps the state it made under earlier sources, which a
// re-selection does not take away; see genid::reinit_for_testing).
template <void (*kBody)(benchmark::State&)>
void on_fresh_thread(benchmark::State& state) {
  std::thread thread([&state] { kBody(state); });
  thread.join();
}

// A range of kWords 64-bit integers: BitGen's bulk member (what C++26's
// std::ranges::generate_random calls) against a loop of single draws.
template <size_t kWords, bool kBulk>
void bm_generate_random(benchmark::State& state) {
  snapsafe::BitGen gen;
  static std::array<uint64_t, kWords> words;
  uint64_t* p = words.data();
  for (auto _ : state) {
    if constexpr (kBulk) {
      gen.generate_random(words);
    } else {
      for (uint64_t& w : words) w = gen();
    }
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kWords * 8);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kWords);
}

template <int kBytes>
void bm_keystream(benchmark::State& state, const char* cipher_name) {
  KeystreamOp<kBytes> keystream(cipher_name);
  if (!keystream.ready) {
    state.SkipWithError("cipher unavailable");
    return;
  }
  for (auto _ : state) keystream.op();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBytes);
}

// Pieces of a reseed, to explain the reseed latency.
void bm_component_derive_seed(benchmark::State& state) {
  uint8_t key[32];
  for (auto _ : state) {
    if (rng_internal::derive_seed(1, key) != 0) die("derive_seed");
    benchmark::DoNotOptimize(key);
  }
}

// One getrandom(32) system call made kDepth non-inlined frames deep, each returned through
// after it: what a frame pending across a system call costs (the reseed makes its call
// with as few as it can; rng/internal/kernel_entropy.h). Measured here 441 ns at depth 0,
// 531 at depth 8: the return-stack predictor comes back from the kernel empty.
template <int kDepth>
[[gnu::noinline]] void getrandom_at_depth(uint8_t* out) {
  if constexpr (kDepth == 0) {
    if (rng_internal::getrandom_syscall(out, 32) != 32) die("getrandom");
  } else {
    getrandom_at_depth<kDepth - 1>(out);
  }
  __asm__ volatile("" ::: "memory");  // not a tail call: each frame is returned through
}
template <int kDepth>
void bm_component_getrandom_at_depth(benchmark::State& state) {
  uint8_t out[32];
  for (auto _ : state) {
    getrandom_at_depth<kDepth>(out);
    benchmark::DoNotOptimize(out);
  }
}

// A step's fixed cost: the next key alone (in the page: expand, 2 blocks, wipe the
// schedule, clear the registers; evp: key the context, 2 blocks, park on the zero key).
void bm_component_step_fixed(benchmark::State& state) {
  StepState s(1);
  uint8_t none[16];
  for (auto _ : state) {
    if (!rng_internal::state_keystream_step(s.st, s.ctx, none, 0)) die("keystream_step");
    benchmark::DoNotOptimize(s.st->key);
  }
}

// One refill of the thread buffer: a step over kBufferBytes (a key step included).
void bm_component_refill(benchmark::State& state) {
  StepState s(2);
  alignas(64) static uint8_t buffer[rng_internal::kBufferBytes];
  uint8_t* p = buffer;
  for (auto _ : state) {
    if (!rng_internal::state_keystream_step(s.st, s.ctx, buffer, sizeof buffer)) {
      die("keystream_step");
    }
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(sizeof buffer));
}

void bm_component_bulk_step_4096(benchmark::State& state) {
  BulkStep4096Op step;
  for (auto _ : state) step.op();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(sizeof step.out));
}

#if defined(__x86_64__)
// The instructions a reseed's seed derivation runs: CPUID (a VM exit under a hypervisor),
// RDSEED and RDRAND.
void bm_component_cpuid(benchmark::State& state) {
  for (auto _ : state) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    benchmark::DoNotOptimize(__get_cpuid(1, &eax, &ebx, &ecx, &edx));
    benchmark::DoNotOptimize(ecx);
  }
}

__attribute__((target("rdseed"))) void bm_component_rdseed64(benchmark::State& state) {
  for (auto _ : state) {
    unsigned long long value = 0;
    benchmark::DoNotOptimize(_rdseed64_step(&value));
    benchmark::DoNotOptimize(value);
  }
}

__attribute__((target("rdrnd"))) void bm_component_rdrand64(benchmark::State& state) {
  for (auto _ : state) {
    unsigned long long value = 0;
    benchmark::DoNotOptimize(_rdrand64_step(&value));
    benchmark::DoNotOptimize(value);
  }
}

bool cpu_has_rdseed_rdrand() {
  unsigned int eax, ebx, ecx, edx;
  const bool rdrand = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_RDRND);
  const bool rdseed = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & bit_RDSEED);
  return rdrand && rdseed;
}
#endif

// The wipe of an unread buffer that a reseed does first.
void bm_component_cleanse(benchmark::State& state) {
  alignas(64) static uint8_t buffer[rng_internal::kBufferBytes];
  uint8_t* p = buffer;
  for (auto _ : state) {
    OPENSSL_cleanse(buffer, sizeof buffer);
    benchmark::DoNotOptimize(p);
  }
}

void bm_inpage_keystream(benchmark::State& state) {
  InPageKeystreamOp<16384> keystream;
  if (!keystream.ready) {
    state.SkipWithError("no in-page keystream: the variant in use is evp");
    return;
  }
  for (auto _ : state) keystream.op();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 16384);
}

// ---------------------------------------------------------------------------------------
// Registration.

using Body = void (*)(benchmark::State&);
using Setup = void (*)(const benchmark::State&);

benchmark::internal::Benchmark* add(const std::string& name, Body body, Setup setup = nullptr) {
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), body);
  b->UseRealTime()->Unit(benchmark::kNanosecond);
  if (setup != nullptr) b->Setup(setup);
  return b;
}

template <class Impl>
void add_ops(const std::string& impl, Setup setup, bool with_fresh_thread = false) {
  if (with_fresh_thread) {
    add("u64/" + impl, on_fresh_thread<bm_u64<Impl>>, setup);
    add("fill16/" + impl, on_fresh_thread<bm_fill<Impl, 16>>, setup);
    add("fill32/" + impl, on_fresh_thread<bm_fill<Impl, 32>>, setup);
    add("fill4096/" + impl, on_fresh_thread<bm_fill<Impl, 4096>>, setup);
  } else {
    add("u64/" + impl, bm_u64<Impl>, setup);
    add("fill16/" + impl, bm_fill<Impl, 16>, setup);
    add("fill32/" + impl, bm_fill<Impl, 32>, setup);
    add("fill4096/" + impl, bm_fill<Impl, 4096>, setup);
  }
}

}  // namespace

void register_benchmarks() {
  constexpr Source kMmap = Source::kSysgenidMmap;
  constexpr Source kSyscall = Source::kSysgenidSyscall;
  constexpr Source kCounter = Source::kCounterFile;
  constexpr Source kKernel = Source::kKernel;

  // snapsafe, per generation source, and the no-check baseline.
  add_ops<Snapsafe<kMmap>>("snapsafe_sysgenid_mmap", setup_source<kMmap>);
  add("uuid_string/snapsafe_sysgenid_mmap", bm_uuid_string<Snapsafe<kMmap>>, setup_source<kMmap>);
  add_ops<SnapsafeNoCheck>("snapsafe_nocheck", setup_source<kMmap>);
  // The check's cost: draw_with<true> against draw_with<false>, identical call shape.
  add("u64/snapsafe_draw_sysgenid_mmap", bm_u64<SnapsafeDraw<true>>, setup_source<kMmap>);
  add("u64/snapsafe_draw_sysgenid_syscall", bm_u64<SnapsafeDraw<true>>, setup_source<kSyscall>);
  add_ops<Snapsafe<kSyscall>>("snapsafe_sysgenid_syscall", setup_source<kSyscall>);
  add("uuid_string/snapsafe_sysgenid_syscall", bm_uuid_string<Snapsafe<kSyscall>>,
      setup_source<kSyscall>);
  add_ops<Snapsafe<kCounter>>("snapsafe_counter_file", setup_source<kCounter>);
  add("uuid_string/snapsafe_counter_file", bm_uuid_string<Snapsafe<kCounter>>,
      setup_source<kCounter>);
  add_ops<Snapsafe<kKernel>>("snapsafe_kernel", setup_source<kKernel>, true);
  add("uuid_string/snapsafe_kernel", on_fresh_thread<bm_uuid_string<Snapsafe<kKernel>>>,
      setup_source<kKernel>);

  // The alternatives.
  add("u64/random_device", bm_u64<RandomDevice>);
  add("fill16/random_device", bm_fill<RandomDevice, 16>);
  add_ops<Getrandom>("getrandom", nullptr);
  add_ops<VdsoGetrandom>("vdso_getrandom", nullptr);
  add_ops<Arc4random>("arc4random", nullptr);
  add_ops<OpensslRand>("openssl_rand", nullptr);
  add_ops<AbslBitGen>("absl_bitgen", nullptr);
  add_ops<Mt19937>("mt19937_64", nullptr);

  // The raw keystream ceiling.
  benchmark::RegisterBenchmark("keystream/aes256ctr_16k", bm_keystream<16384>, "AES-256-CTR")
      ->UseRealTime();
  // The same cipher in calls of a 4096-byte fill's size: the per-call cost of EVP.
  benchmark::RegisterBenchmark("keystream/aes256ctr_4k", bm_keystream<4096>, "AES-256-CTR")
      ->UseRealTime();
  benchmark::RegisterBenchmark("keystream/aes128ctr_16k", bm_keystream<16384>, "AES-128-CTR")
      ->UseRealTime();
  benchmark::RegisterBenchmark("keystream/chacha20_16k", bm_keystream<16384>, "ChaCha20")
      ->UseRealTime();
  // The in-page keystream alone: the ceiling of the draw path's own keystream.
  benchmark::RegisterBenchmark("keystream/inpage_aes256ctr_16k", bm_inpage_keystream)
      ->UseRealTime();

  // Thread scaling (each thread has its own state or generator).
  add("u64_threads/snapsafe_sysgenid_mmap", bm_u64<Snapsafe<kMmap>>, setup_source<kMmap>)
      ->Threads(1)
      ->Threads(2);
  add("u64_threads/openssl_rand", bm_u64<OpensslRand>)->Threads(1)->Threads(2);
  add("u64_threads/absl_bitgen", bm_u64<AbslBitGen>)->Threads(1)->Threads(2);

  // What a reseed is made of.
  add("generate_random/bulk_128", bm_generate_random<128, true>, setup_source<kMmap>);
  add("generate_random/loop_128", bm_generate_random<128, false>, setup_source<kMmap>);
  add("generate_random/bulk_1024", bm_generate_random<1024, true>, setup_source<kMmap>);
  add("generate_random/loop_1024", bm_generate_random<1024, false>, setup_source<kMmap>);

  add("component/derive_seed", bm_component_derive_seed);
  add("component/getrandom32_depth0", bm_component_getrandom_at_depth<0>);
  add("component/getrandom32_depth8", bm_component_getrandom_at_depth<8>);
  add("component/step_fixed", bm_component_step_fixed);
  add("component/refill_8128", bm_component_refill);
  add("component/bulk_step_4096", bm_component_bulk_step_4096);
  add("component/cleanse_8128", bm_component_cleanse);
#if defined(__x86_64__)
  add("component/cpuid", bm_component_cpuid);
  if (cpu_has_rdseed_rdrand()) {
    add("component/rdseed64", bm_component_rdseed64);
    add("component/rdrand64", bm_component_rdrand64);
  }
#endif
}

}  // namespace snapsafe::bench
