// File: bench/latency.h
//
// The latency part of snapsafe_bench (latency.cc), timed in plain code after the Google
// Benchmark part.
#ifndef SNAPSAFE_BENCH_LATENCY_H_
#define SNAPSAFE_BENCH_LATENCY_H_

#include <string>

namespace snapsafe::bench {

// Runs every latency measurement (`bumps` reseeds after a SysGenID bump, `threads` first
// draws on new threads, the parallel reseeds, memory per thread, the paired ratios) and
// returns them as one JSON object: reseed, control_no_bump, first_draw_new_thread[_*],
// parallel_reseed_threads_{1,2,8,64}, keystream (the variant the draw path uses),
// memory_per_thread, paired, second_draw_new_thread, vdso_getrandom. g_sources must be
// set; leaves the sysgenid-mmap source active.
std::string measure_latency(int bumps, int threads);

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_LATENCY_H_
