// File: bench/simulated_sources.h
//
// The generation sources snapsafe_bench times snapsafe under, simulated with regular
// files on tmpfs (/dev/shm, else $TMPDIR or /tmp): a 4096-byte SysGenID page holding a
// u32 at offset 0 (in syscall mode the check is then a pread() at offset 0, standing in
// for the device's read()), and a counter file made by genid::counter_file_create. A
// benchmark's Setup() points the SNAPSAFE_* environment at one of them, calls
// genid::reinit_for_testing() (only the main thread exists then) and draws once so the
// thread state reseeds under it. The latency runs bump the page through a separate
// writable MAP_SHARED mapping, as the device's backend would.
#ifndef SNAPSAFE_BENCH_SIMULATED_SOURCES_H_
#define SNAPSAFE_BENCH_SIMULATED_SOURCES_H_

#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"

namespace snapsafe::bench {

enum class Source { kSysgenidMmap, kSysgenidSyscall, kCounterFile, kKernel };

// The simulated page and counter file, created in a fresh directory by the constructor
// and removed by the destructor. One instance, made by main(), reached through g_sources.
class SimulatedSources {
 public:
  SimulatedSources();
  ~SimulatedSources();

  // Makes `source` the process's active source. Only the calling thread may be drawing.
  void activate(Source source) const;

  // Changes the simulated SysGenID generation, as the device backend would.
  void bump_sysgenid() const { __atomic_add_fetch(sysgenid_page_, 1, __ATOMIC_SEQ_CST); }

 private:
  std::string dir_, sysgenid_path_, counter_path_;
  uint32_t* sysgenid_page_ = nullptr;
};

// The process's one SimulatedSources while main() runs; null before and after.
extern SimulatedSources* g_sources;

// A Google Benchmark Setup() that activates kSource.
template <Source kSource>
void setup_source(const benchmark::State&) {
  g_sources->activate(kSource);
}

}  // namespace snapsafe::bench

#endif  // SNAPSAFE_BENCH_SIMULATED_SOURCES_H_
