// File: bench/paired.h
//
// The paired ratios of snapsafe_bench (paired.cc): each target ratio's two sides timed in
// alternating bursts on one thread, so the host's drift hits both alike.
#ifndef SNAPSAFE_BENCH_PAIRED_H_
#define SNAPSAFE_BENCH_PAIRED_H_

#include <string>

namespace snapsafe::bench {

// Times every pair and returns them as one JSON object, one key per pair: u64_vs_absl,
// check_mmap, fill4096_vs_keystream16k, bulk_step4096_vs_keystream16k,
// fill4096_vs_inpage_keystream16k and bulk_step4096_vs_inpage_keystream16k (both unless the
// variant in use is evp), kernel_fill16_vs_vdso16 and
// masked_floor16_vs_vdso16 (with the vDSO getrandom and RDRAND), reseed_vs_getrandom32.
// g_sources must be set; leaves the sysgenid-mmap source active.
std::string measure_paired();

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_PAIRED_H_
