// File: bench/pairs.h
//
// Two operations timed in alternating bursts on one thread (bench/paired.cc says why: this
// host's speed drifts within seconds, and a drift slower than a pair hits both sides
// alike), for snapsafe_bench's paired targets and c_api_dlopen_bench's. measure_pairs<A,
// B>() returns one JSON object: the pairs, each side's p50 ns per op, the p10/p50/p90 of
// the per-pair ratios A/B and the p50 of the per-pair differences A - B.
#ifndef SNAPSAFE_BENCH_PAIRS_H_
#define SNAPSAFE_BENCH_PAIRS_H_

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.h"

namespace snapsafe::bench {

// ns per op of `n` back-to-back op() calls.
template <class Op>
BENCH_INLINE double burst_ns_per_op(Op& op, int n) {
  const uint64_t t0 = now_ns();
  for (int i = 0; i < n; ++i) op.op();
  return static_cast<double>(now_ns() - t0) / n;
}

// ns per op of A and of B, p50 of each side, the per-pair ratios A/B and the per-pair
// differences A - B in ns per op (what A adds to B, for the generation check's cost).
inline std::string paired_json(std::vector<double> a, std::vector<double> b, const char* a_name,
                               const char* b_name) {
  std::vector<double> ratios(a.size()), diffs(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ratios[i] = a[i] / b[i];
    diffs[i] = a[i] - b[i];
  }
  for (std::vector<double>* v : {&a, &b, &ratios, &diffs}) std::sort(v->begin(), v->end());
  char out[512];
  std::snprintf(out, sizeof out,
                "{\"pairs\": %zu, \"%s_p50\": %.4f, \"%s_p50\": %.4f, \"ratio_p10\": %.4f, "
                "\"ratio_p50\": %.4f, \"ratio_p90\": %.4f, \"diff_p50_ns\": %.4f}",
                a.size(), a_name, nearest_rank(a, 0.5), b_name, nearest_rank(b, 0.5),
                nearest_rank(ratios, 0.1), nearest_rank(ratios, 0.5), nearest_rank(ratios, 0.9),
                nearest_rank(diffs, 0.5));
  return out;
}

template <class A, class B>
std::string measure_pairs(int pairs, int burst_a, int burst_b, const char* a_name,
                          const char* b_name) {
  // Locals whose address never escapes, as in bm_u64: the compiler may keep a
  // generator's index in a register across its burst (measured: absl::BitGen on the heap
  // took longer per u64 than in bm_u64).
  A a;
  B b;
  std::vector<double> ta, tb;
  ta.reserve(static_cast<size_t>(pairs));
  tb.reserve(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs / 10; ++i) {  // warm-up, not recorded
    burst_ns_per_op(a, burst_a);
    burst_ns_per_op(b, burst_b);
  }
  for (int i = 0; i < pairs; ++i) {
    if (i % 2 == 0) {
      ta.push_back(burst_ns_per_op(a, burst_a));
      tb.push_back(burst_ns_per_op(b, burst_b));
    } else {
      tb.push_back(burst_ns_per_op(b, burst_b));
      ta.push_back(burst_ns_per_op(a, burst_a));
    }
  }
  return paired_json(ta, tb, a_name, b_name);
}

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_PAIRS_H_
