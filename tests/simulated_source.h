// File: tests/simulated_source.h
//
// Stand-ins for every generation source, as regular files with the real layout (the way
// AWS-LC tests its detectors): a SysGenID counter page, a VMClock page, a counter file.
// Each can be made the active source and bumped as its real writer would.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/sysgenid.h"
#include "genid/vmclock.h"
#include "tests/test_util.h"

namespace snapsafe::testing {

enum class Simulated { kSysgenidMmap, kSysgenidSyscall, kVmclock, kCounterFile };

inline const char* simulated_name(Simulated kind) {
  switch (kind) {
    case Simulated::kSysgenidMmap: return "SysgenidMmap";
    case Simulated::kSysgenidSyscall: return "SysgenidSyscall";
    case Simulated::kVmclock: return "Vmclock";
    case Simulated::kCounterFile: return "CounterFile";
  }
  return "?";
}

class SimulatedSource {
 public:
  explicit SimulatedSource(Simulated kind) : kind_(kind), path_(temp_path("source")) {
    if (kind == Simulated::kCounterFile) {
      EXPECT_EQ(genid::counter_file_create(path_), "");
      return;
    }
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 4096), 0);
    page_ =
        static_cast<unsigned char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    close(fd);
    if (kind == Simulated::kVmclock) write_vmclock_header(page_);
  }

  // Makes this the process's active source.
  void activate() const {
    switch (kind_) {
      case Simulated::kSysgenidMmap:
      case Simulated::kSysgenidSyscall:
        genid::sysgenid_accept_regular_file_for_testing(true);  // a file: tests only
        use_source(
            {{"SNAPSAFE_SOURCE", "sysgenid"},
             {"SNAPSAFE_SYSGENID_PATH", path_},
             {"SNAPSAFE_SYSGENID_MODE", kind_ == Simulated::kSysgenidMmap ? "mmap" : "syscall"}});
        break;
      case Simulated::kVmclock:
        use_source({{"SNAPSAFE_SOURCE", "vmclock"}, {"SNAPSAFE_VMCLOCK_PATH", path_}});
        break;
      case Simulated::kCounterFile:
        use_source({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path_}});
        break;
    }
  }

  // Changes the generation as the source's real writer would. Async-signal-safe enough
  // for test hooks (no allocation) except for the counter file, which maps the file.
  void bump() const {
    switch (kind_) {
      case Simulated::kSysgenidMmap:
      case Simulated::kSysgenidSyscall:
        __atomic_add_fetch(reinterpret_cast<uint32_t*>(page_), 1, __ATOMIC_SEQ_CST);
        break;
      case Simulated::kVmclock: {
        auto* seq = reinterpret_cast<uint32_t*>(page_ + genid::kVmclockOffsetSeqCount);
        auto* gen = reinterpret_cast<uint64_t*>(page_ + genid::kVmclockOffsetGeneration);
        __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // odd: writing
        // VMClock's counter jumps to "another non-repeating value", not +1.
        __atomic_store_n(gen, *gen * 6364136223846793005ull + 1442695040888963407ull,
                         __ATOMIC_SEQ_CST);
        __atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);  // even: done
        break;
      }
      case Simulated::kCounterFile: {
        genid::Generation generation;
        EXPECT_EQ(genid::counter_file_bump(path_, &generation), "");
        break;
      }
    }
  }

  const std::string& path() const { return path_; }
  unsigned char* page() const { return page_; }

  static void write_vmclock_header(unsigned char* page) {
    std::memset(page, 0, 4096);
    const uint32_t magic = genid::kVmclockMagic, size = 4096, seq = 0;
    const uint16_t version = 1;
    const uint64_t flags = genid::kVmclockFlagGenCounterPresent, generation = 0x1234;
    std::memcpy(page + genid::kVmclockOffsetMagic, &magic, 4);
    std::memcpy(page + genid::kVmclockOffsetSize, &size, 4);
    std::memcpy(page + genid::kVmclockOffsetVersion, &version, 2);
    std::memcpy(page + genid::kVmclockOffsetSeqCount, &seq, 4);
    std::memcpy(page + genid::kVmclockOffsetFlags, &flags, 8);
    std::memcpy(page + genid::kVmclockOffsetGeneration, &generation, 8);
  }

 private:
  Simulated kind_;
  std::string path_;
  unsigned char* page_ = nullptr;
};

}  // namespace snapsafe::testing
