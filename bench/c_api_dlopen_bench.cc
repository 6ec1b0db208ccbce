// The C API through the shared library, as the OpenSSL provider and every language binding
// reach it: libsnapsafe.so dlopen()ed at run time, snapsafe_u64 found by dlsym,
// against the inline C++ draw of a u64 (snapsafe::random_u64, draw.h's fast path) linked
// statically into this binary. The two benchmark names are what bench/summarize.py's target
// "u64 through the C API of the shared library, dlopen'd / the inline draw" reads:
//   BM_CApiDlopenU64  snapsafe_u64 through a function pointer from dlsym
//   BM_InlineU64      snapsafe::random_u64() inlined here
// Both copies of the library (the dlopen'd one and the static one) watch the same counter
// file, created here, so both draw from a buffer with the generation check of a real
// deployment. The library: $SNAPSAFE_LIBRARY, else the libsnapsafe.so in this binary's
// runfiles (bazel run, bench/run, or a test's runfiles root).
// With --paired_out=FILE it also times the two in alternating bursts (bench/pairs.h, as
// snapsafe_bench's paired targets) and writes {"capi_dlopen_u64_vs_inline": {...}} to FILE:
// bench/run merges it into the latency JSON's "paired", where summarize.py's target reads
// the median per-pair ratio (the two benchmarks' medians are its fallback).
//   bazel run -c opt --config=bench //bench:c_api_dlopen_bench
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "bench/pairs.h"

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "rng/fill.h"

namespace {

using U64Function = int (*)(uint64_t*);
U64Function g_snapsafe_u64 = nullptr;

void BM_CApiDlopenU64(benchmark::State& state) {
  uint64_t value = 0;
  for (auto _ : state) {
    if (g_snapsafe_u64(&value) != 0) {
      state.SkipWithError("snapsafe_u64 failed");
      break;
    }
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK(BM_CApiDlopenU64);

void BM_InlineU64(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(snapsafe::random_u64());
}
BENCHMARK(BM_InlineU64);

// The two sides of the pair, each with op(): one u64 each way.
struct CApiU64Op {
  uint64_t value = 0;
  BENCH_INLINE void op() {
    if (g_snapsafe_u64(&value) != 0) snapsafe::bench::die("snapsafe_u64 failed");
    benchmark::DoNotOptimize(value);
  }
};
struct InlineU64Op {
  BENCH_INLINE void op() { benchmark::DoNotOptimize(snapsafe::random_u64()); }
};

// Where libsnapsafe.so is: the first of these that exists.
std::string library_path(const char* argv0) {
  std::vector<std::string> candidates;
  if (const char* path = getenv("SNAPSAFE_LIBRARY")) candidates.push_back(path);
  candidates.push_back(std::string(argv0) + ".runfiles/snapsafe/libsnapsafe.so");
  if (const char* runfiles = getenv("RUNFILES_DIR")) {
    candidates.push_back(std::string(runfiles) + "/snapsafe/libsnapsafe.so");
  }
  candidates.push_back("./libsnapsafe.so");  // a test's working directory: the runfiles root
  for (const std::string& path : candidates) {
    if (access(path.c_str(), R_OK) == 0) return path;
  }
  return candidates.back();
}

}  // namespace

int main(int argc, char** argv) {
  // The generation source of both copies: a counter file (a container's deployment).
  const char* tmpdir = getenv("TMPDIR");
  const std::string counter = std::string(tmpdir != nullptr ? tmpdir : "/tmp") +
                              "/snapsafe-dlopen-bench." + std::to_string(getpid());
  if (const std::string error = snapsafe::genid::counter_file_create(counter); !error.empty()) {
    std::fprintf(stderr, "c_api_dlopen_bench: %s\n", error.c_str());
    return 1;
  }
  setenv("SNAPSAFE_SOURCE", "counter-file", 1);
  setenv("SNAPSAFE_COUNTER_FILE", counter.c_str(), 1);

  const std::string path = library_path(argv[0]);
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    std::fprintf(stderr, "c_api_dlopen_bench: dlopen %s: %s\n", path.c_str(), dlerror());
    unlink(counter.c_str());
    return 1;
  }
  g_snapsafe_u64 = reinterpret_cast<U64Function>(dlsym(library, "snapsafe_u64"));
  uint64_t value = 0;
  if (g_snapsafe_u64 == nullptr || g_snapsafe_u64(&value) != 0) {
    std::fprintf(stderr, "c_api_dlopen_bench: snapsafe_u64 unavailable in %s\n", path.c_str());
    unlink(counter.c_str());
    return 1;
  }
  std::string paired_out;
  snapsafe::bench::take_flag(&argc, argv, "paired_out", &paired_out);
  benchmark::AddCustomContext("library", path);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!paired_out.empty()) {
    const std::string pair = snapsafe::bench::measure_pairs<CApiU64Op, InlineU64Op>(
        4000, 4096, 4096, "capi_ns", "inline_ns");
    FILE* f = std::fopen(paired_out.c_str(), "w");
    if (f == nullptr) snapsafe::bench::die("cannot write " + paired_out);
    std::fprintf(f, "{\"capi_dlopen_u64_vs_inline\": %s}\n", pair.c_str());
    std::fclose(f);
  }
  unlink(counter.c_str());
  return 0;
}
