// File: bench/snapsafe_bench_main.cc
//
// snapsafe's benchmark suite: per-draw cost and reseed latency, against the alternatives,
// in one binary so every ratio compares numbers from the same run. main() makes the
// simulated generation sources (simulated_sources.h), records the CPU features and the
// keystream variant in the benchmark context, runs the Google Benchmark part
// (benchmarks.cc) and then the latency part with its paired ratios (latency.cc,
// paired.cc), written as JSON to --latency_out=FILE (else to stderr).
//
// Usage (bench/run does all of this):
//   bazel build --config=bench //bench:snapsafe_bench
//   "$(bazel info --config=bench bazel-bin)"/bench/snapsafe_bench
//       --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.15
//       --benchmark_format=json --latency_out=latency.json
//       > benchmarks.json
// --latency_bumps=N (default 20000) and --latency_threads=N (default 500) size the latency
// part; both 0 skip it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/latency.h"
#include "bench/simulated_sources.h"
#include "benchmark/benchmark.h"
#include "rng/internal/aes_ctr_in_page.h"

namespace {

namespace bench = snapsafe::bench;
namespace rng_internal = snapsafe::rng_internal;

// Records in the benchmark context (the "context" object of the JSON) the CPU features the
// targets' limits depend on (cpu_aes, cpu_vaes, cpu_avx512f, cpu_rdrand: "yes" or "no")
// and the keystream variant the draw path dispatched to (keystream: "vaes-avx2", "aesni"
// or "evp").
void add_cpu_context() {
  const auto yes = [](bool b) { return b ? "yes" : "no"; };
#if defined(__x86_64__)
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;  // CPUID leaf 7: ECX bit 9 is VAES
  const bool vaes = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 9));
  benchmark::AddCustomContext("cpu_aes", yes(__builtin_cpu_supports("aes")));
  benchmark::AddCustomContext("cpu_vaes", yes(vaes));
  benchmark::AddCustomContext("cpu_avx512f", yes(__builtin_cpu_supports("avx512f")));
  benchmark::AddCustomContext("cpu_rdrand", yes(__builtin_cpu_supports("rdrnd")));
#else
  for (const char* feature : {"cpu_aes", "cpu_vaes", "cpu_avx512f", "cpu_rdrand"}) {
    benchmark::AddCustomContext(feature, yes(false));
  }
#endif
  benchmark::AddCustomContext("keystream",
                              rng_internal::aes_ctr_variant_name(rng_internal::aes_ctr_variant()));
}

}  // namespace

int main(int argc, char** argv) {
  std::string latency_out, bumps = "20000", threads = "500";
  bench::take_flag(&argc, argv, "latency_out", &latency_out);
  bench::take_flag(&argc, argv, "latency_bumps", &bumps);
  bench::take_flag(&argc, argv, "latency_threads", &threads);

  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    listing = listing || std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0;
  }
  bench::SimulatedSources sources;
  bench::g_sources = &sources;
  add_cpu_context();
  bench::register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  const int n_bumps = std::atoi(bumps.c_str());
  const int n_threads = std::atoi(threads.c_str());
  if (!listing && (n_bumps > 0 || n_threads > 0)) {
    const std::string latency =
        bench::measure_latency(std::max(n_bumps, 1), std::max(n_threads, 1));
    if (latency_out.empty()) {
      std::fputs(latency.c_str(), stderr);
    } else {
      FILE* f = std::fopen(latency_out.c_str(), "w");
      if (f == nullptr || std::fputs(latency.c_str(), f) < 0 || std::fclose(f) != 0) {
        bench::die("cannot write " + latency_out);
      }
    }
  }
  bench::g_sources = nullptr;
  return 0;
}
