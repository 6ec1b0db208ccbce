// File: rng/status.h
//
// What protects this process's random numbers right now: which generation source is
// active, whether output is buffered, whether fork detection works, and why every other
// source was skipped. Calling status() selects the source if no draw has yet.
//
// Example:
//   std::cout << snapsafe::status().to_string();
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genid/source.h"

namespace snapsafe {

using genid::SourceKind;

struct Status {
  SourceKind source;            // the active generation source
  std::string source_name;      // its stable name: "sysgenid-mmap", "kernel", ...
  std::string path;             // the device or file it reads ("" for kernel modes)
  bool buffered;                // false: every draw is served by getrandom
  std::string kernel_interface;  // how the kernel RNG is reached: "vDSO getrandom" or
                                 // "getrandom syscall" (seeds, kernel-backed draws)
  bool snapshot_safe;           // false only for SNAPSAFE_SOURCE=fork-only-unsafe
  bool fork_detection;          // MADV_WIPEONFORK works on this kernel
  uint64_t generation;          // the generation as the source reads it now
  uint64_t reseeds;             // reseeds so far, all threads
  uint64_t live_thread_states;  // threads holding a generator state
  std::vector<std::string> notes;  // why each other source is not active

  // A multi-line human-readable report.
  std::string to_string() const;
};

Status status();

}  // namespace snapsafe
