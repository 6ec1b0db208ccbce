// File: bench/latency.cc
//
// The latency part of snapsafe_bench, in plain code (clock_gettime) after the Google
// Benchmark part, written as one JSON object (latency.h lists its keys):
//   reseed: bump the simulated SysGenID page through a separate writable MAP_SHARED
//     mapping, time from the bump to the completion of the next u64 draw; --latency_bumps.
//   first_draw: the first 16-byte draw of a freshly spawned thread; --latency_threads.
//   parallel reseed of 1, 2, 8 and 64 threads after one bump, memory per thread, the
//   keystream variant in use, and the paired ratios (paired.h).
#include "bench/latency.h"

#include <malloc.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/paired.h"
#include "bench/simulated_sources.h"
#include "benchmark/benchmark.h"
#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/keystream.h"
#include "rng/internal/thread_state.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe::bench {
namespace {

struct Summary {
  size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, min = 0, mean = 0;
};

Summary summarize_us(std::vector<uint64_t> ns) {
  Summary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto at = [&ns](double q) { return nearest_rank(ns, q) / 1000.0; };
  s.n = ns.size();
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.min = static_cast<double>(ns.front()) / 1000.0;
  s.max = static_cast<double>(ns.back()) / 1000.0;
  double total = 0;
  for (uint64_t v : ns) total += static_cast<double>(v);
  s.mean = total / static_cast<double>(ns.size()) / 1000.0;
  return s;
}

std::string json(const Summary& s) {
  char out[512];
  std::snprintf(out, sizeof out,
                "{\"n\": %zu, \"p50_us\": %.4f, \"p90_us\": %.4f, \"p99_us\": %.4f, "
                "\"p999_us\": %.4f, \"max_us\": %.4f, \"min_us\": %.4f, \"mean_us\": %.4f}",
                s.n, s.p50, s.p90, s.p99, s.p999, s.max, s.min, s.mean);
  return out;
}

// N threads, each with a seeded state, wait at a barrier; the main thread bumps the
// generation and releases them; each times its own next u64 draw (which must reseed),
// so the wake-up is not counted but the contention of N reseeds at once is (2 cores
// here: N > 2 also counts being preempted by the other reseeding threads). The round
// time is from the bump until the last thread is done (wake-ups included). Control: the
// same per-thread draw in a round without a bump.
std::string measure_parallel_reseed(int n, int rounds) {
  std::vector<uint64_t> per_thread, control, round;
  std::mutex lock;
  std::barrier start(n + 1), done(n + 1);
  std::atomic<bool> bump_round{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&] {
      benchmark::DoNotOptimize(snapsafe::random_u64());  // seeded before the first round
      std::vector<uint64_t> mine, mine_control;
      for (int r = 0; r < 2 * rounds; ++r) {
        start.arrive_and_wait();
        const uint64_t t0 = now_ns();
        benchmark::DoNotOptimize(snapsafe::random_u64());
        const uint64_t t1 = now_ns();
        (bump_round.load() ? mine : mine_control).push_back(t1 - t0);
        done.arrive_and_wait();
      }
      std::lock_guard<std::mutex> guard(lock);
      per_thread.insert(per_thread.end(), mine.begin(), mine.end());
      control.insert(control.end(), mine_control.begin(), mine_control.end());
    });
  }
  const uint64_t reseeds_before = rng_internal::reseed_count();
  for (int r = 0; r < 2 * rounds; ++r) {
    const bool bump = r % 2 == 0;
    bump_round.store(bump);
    const uint64_t t0 = now_ns();
    if (bump) g_sources->bump_sysgenid();
    start.arrive_and_wait();
    done.arrive_and_wait();
    if (bump) round.push_back(now_ns() - t0);
  }
  for (std::thread& thread : threads) thread.join();
  const uint64_t reseeds = rng_internal::reseed_count() - reseeds_before;
  return "{\"threads\": " + std::to_string(n) + ", \"rounds\": " + std::to_string(rounds) +
         ", \"reseeds_observed\": " + std::to_string(reseeds) +
         ", \"per_thread\": " + json(summarize_us(per_thread)) +
         ", \"control_no_bump\": " + json(summarize_us(control)) +
         ", \"round_bump_to_last_done\": " + json(summarize_us(round)) + "}";
}

// What one thread costs in memory: its state mapping (key, buffer, bookkeeping), the
// vDSO getrandom state it maps when a draw is served by the kernel (kernel-backed mode,
// a signal handler's draw), and the OpenSSL cipher context it keys (heap bytes, from
// mallinfo2 around creating one).
std::string measure_memory_per_thread() {
  size_t vdso_buffered = 0, vdso_kernel = 0;
  std::thread buffered([&vdso_buffered] {
    benchmark::DoNotOptimize(snapsafe::random_u64());
    rng_internal::vdso_getrandom_thread_state(&vdso_buffered);
  });
  buffered.join();
  // Many at once: malloc's per-thread cache (tcache) counts as in use in mallinfo2, so a
  // single allocation it serves shows no change.
  constexpr int kContexts = 256;
  std::vector<EVP_CIPHER_CTX*> contexts;
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < kContexts; ++i) contexts.push_back(rng_internal::keystream_new());
  const size_t evp_bytes = (mallinfo2().uordblks - before) / kContexts;
  for (EVP_CIPHER_CTX* ctx : contexts) rng_internal::keystream_free(ctx);
  uint8_t ignored[16];
  std::thread kernel([&vdso_kernel, &ignored] {
    if (snapsafe::rng_internal::vdso_getrandom(ignored, sizeof ignored) == 0) {
      rng_internal::vdso_getrandom_thread_state(&vdso_kernel);
    }
  });
  kernel.join();
  return "{\"state_mapping_bytes\": " + std::to_string(rng_internal::kStateBytes) +
         ", \"evp_cipher_ctx_heap_bytes\": " + std::to_string(evp_bytes) +
         ", \"vdso_state_bytes_buffered_thread\": " + std::to_string(vdso_buffered) +
         ", \"vdso_state_bytes_kernel_served_thread\": " + std::to_string(vdso_kernel) + "}";
}

// Times the first and second 16-byte fill of `threads` threads, created one after
// another; with `empty_pool`, the state pools (thread states and vDSO states) are emptied
// before each.
void time_new_threads_first_fills(int threads, bool empty_pool, std::vector<uint64_t>* first,
                                  std::vector<uint64_t>* second) {
  first->reserve(static_cast<size_t>(threads));
  second->reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    if (empty_pool) {
      rng_internal::thread_state_pool_clear();
      rng_internal::vdso_getrandom_pool_clear();
    }
    std::thread thread([first, second] {
      alignas(16) unsigned char bytes[16];
      unsigned char* p = bytes;
      const uint64_t t0 = now_ns();
      snapsafe::fill(bytes, sizeof bytes);
      benchmark::DoNotOptimize(p);
      const uint64_t t1 = now_ns();
      snapsafe::fill(bytes, sizeof bytes);
      benchmark::DoNotOptimize(p);
      const uint64_t t2 = now_ns();
      first->push_back(t1 - t0);
      second->push_back(t2 - t1);
    });
    thread.join();
  }
}
}  // namespace

std::string measure_latency(int bumps, int threads) {
  g_sources->activate(Source::kSysgenidMmap);
  // Control: the same timed draw without a bump (timer overhead + one buffered draw).
  std::vector<uint64_t> control;
  control.reserve(static_cast<size_t>(bumps));
  for (int i = 0; i < bumps; ++i) {
    const uint64_t t0 = now_ns();
    benchmark::DoNotOptimize(snapsafe::random_u64());
    control.push_back(now_ns() - t0);
  }
  // Reseed: bump, then the next draw must reseed before it returns.
  std::vector<uint64_t> reseed;
  reseed.reserve(static_cast<size_t>(bumps));
  for (int i = 0; i < 200; ++i) {  // warm-up, not recorded
    g_sources->bump_sysgenid();
    benchmark::DoNotOptimize(snapsafe::random_u64());
  }
  const uint64_t reseeds_before = rng_internal::reseed_count();
  for (int i = 0; i < bumps; ++i) {
    const uint64_t t0 = now_ns();
    g_sources->bump_sysgenid();
    benchmark::DoNotOptimize(snapsafe::random_u64());
    reseed.push_back(now_ns() - t0);
  }
  const uint64_t reseeds = rng_internal::reseed_count() - reseeds_before;
  // First draw in a new thread. Threads come one after another, so each takes the state
  // the one before pooled and seeded at its exit (thread_state.h). Then the same with the
  // pool emptied before each thread: a new mapping, madvise calls, page faults, a new
  // cipher context, a reseed.
  std::vector<uint64_t> first, second, first_empty_pool, second_empty_pool;
  time_new_threads_first_fills(threads, /*empty_pool=*/true, &first_empty_pool, &second_empty_pool);
  time_new_threads_first_fills(threads, /*empty_pool=*/false, &first, &second);
  // The same in kernel-backed mode (no thread state, no buffer): the new thread's vDSO
  // getrandom state, taken from those exited threads left, or with the pool emptied mapped.
  std::vector<uint64_t> first_kernel, first_kernel_empty_pool, unused;
  g_sources->activate(Source::kKernel);
  time_new_threads_first_fills(threads, /*empty_pool=*/true, &first_kernel_empty_pool, &unused);
  time_new_threads_first_fills(threads, /*empty_pool=*/false, &first_kernel, &unused);
  g_sources->activate(Source::kSysgenidMmap);
  std::string out = "{\n";
  out += "  \"source\": \"sysgenid-mmap (simulated page on a regular file)\",\n";
  out += "  \"clock\": \"CLOCK_MONOTONIC\",\n";
  out += "  \"reseed\": " + json(summarize_us(reseed)) + ",\n";
  out += "  \"reseeds_observed\": " + std::to_string(reseeds) + ",\n";
  out += "  \"reseeds_expected\": " + std::to_string(bumps) + ",\n";
  out += "  \"control_no_bump\": " + json(summarize_us(control)) + ",\n";
  out += "  \"first_draw_new_thread\": " + json(summarize_us(first)) + ",\n";
  out += "  \"first_draw_new_thread_empty_pool\": " + json(summarize_us(first_empty_pool)) + ",\n";
  out += "  \"first_draw_new_thread_kernel\": " + json(summarize_us(first_kernel)) + ",\n";
  out += "  \"first_draw_new_thread_kernel_empty_pool\": " +
         json(summarize_us(first_kernel_empty_pool)) + ",\n";
  out += "  \"first_draw_bytes\": 16,\n";
  for (const int n : {1, 2, 8, 64}) {
    out += "  \"parallel_reseed_threads_" + std::to_string(n) +
           "\": " + measure_parallel_reseed(n, n == 64 ? 100 : 300) + ",\n";
  }
  out += std::string("  \"keystream\": \"") +
         rng_internal::aes_ctr_variant_name(rng_internal::aes_ctr_variant()) + "\",\n";
  out += "  \"memory_per_thread\": " + measure_memory_per_thread() + ",\n";
  out += "  \"paired\": " + measure_paired() + ",\n";
  out += "  \"second_draw_new_thread\": " + json(summarize_us(second)) + ",\n";
  out +=
      "  \"vdso_getrandom\": " +
      std::string(snapsafe::rng_internal::vdso_getrandom_available()
                      ? "\"available\""
                      : "\"" + snapsafe::rng_internal::vdso_getrandom_unavailable_reason() + "\"") +
      "\n}\n";
  return out;
}

}  // namespace snapsafe::bench
