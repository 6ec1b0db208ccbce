// File: bench/benchmarks.h
//
// The Google Benchmark part of snapsafe_bench (benchmarks.cc lists every benchmark name).
#ifndef SNAPSAFE_BENCH_BENCHMARKS_H_
#define SNAPSAFE_BENCH_BENCHMARKS_H_

namespace snapsafe::bench {

// Registers every benchmark with Google Benchmark; g_sources must be set (their Setup()
// activates a simulated source).
void register_benchmarks();

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_BENCHMARKS_H_
