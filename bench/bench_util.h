// File: bench/bench_util.h
//
// What every part of snapsafe_bench (and c_api_dlopen_bench) shares: die() for a setup
// that cannot go on, BENCH_INLINE for the wrappers that must inline into a timed loop,
// take_flag() for the flags Google Benchmark does not know, the monotonic clock the
// latency and paired runs read, and the nearest-rank quantile they report.
#ifndef SNAPSAFE_BENCH_BENCH_UTIL_H_
#define SNAPSAFE_BENCH_BENCH_UTIL_H_

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// The wrappers are forced inline so each loop calls the library exactly as a caller's own
// code would, with the size a compile-time constant; what the library itself inlines (or
// not) is left to the compiler, as it is for every application.
#define BENCH_INLINE [[gnu::always_inline]] inline

namespace snapsafe::bench {

// Prints "snapsafe_bench: <what>" and exits with status 2.
[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "snapsafe_bench: %s\n", what.c_str());
  std::exit(2);
}

// Takes --NAME=VALUE out of argv (Google Benchmark rejects flags it does not know).
inline bool take_flag(int* argc, char** argv, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      *value = argv[i] + prefix.size();
      for (int j = i; j + 1 < *argc; ++j) argv[j] = argv[j + 1];
      --*argc;
      return true;
    }
  }
  return false;
}

// CLOCK_MONOTONIC in ns.
inline uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The q-quantile (nearest rank) of a sorted, non-empty vector.
template <class T>
double nearest_rank(const std::vector<T>& sorted, double q) {
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_BENCH_UTIL_H_
