// File: rng/status.h
//
// What protects this process's random numbers right now: every watched generation
// source, whether output is buffered, and exactly which events the process is covered
// against, each with the mechanism or the reason it is not. Calling status() selects the
// sources if no draw has yet.
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

// One event that can duplicate this process's memory, and whether draws stay unique
// across it.
struct Coverage {
  bool covered;     // draws after the event differ between the copies
  std::string how;  // the mechanism, or why not and what to change
};

struct WatchedSource {
  std::string name;     // "vmclock", "sysgenid-mmap", "sysgenid-syscall", "counter-file"
  std::string path;     // the device or file it reads
  uint64_t generation;  // as it reads now
};

struct Status {
  SourceKind source;                   // the first watched source, or kKernel / kForkOnlyUnsafe
  std::string source_name;             // its stable name: "sysgenid-mmap", "kernel", ...
  std::string path;                    // the device or file it reads ("" for kernel modes)
  std::vector<WatchedSource> watched;  // every source checked on every draw
  bool buffered;                       // false: every draw is served by the kernel
  std::string keystream;               // what buffered output is made with, e.g. "AES-256-CTR in
                                       // the state page (vaes-avx2)", or "(OpenSSL EVP)" for a CPU
                                       // without AES-NI or SNAPSAFE_KEYSTREAM=evp
  std::string kernel_interface;        // "vDSO getrandom" or "getrandom syscall"
  bool hardware_rng;                   // kernel-served output is XORed with RDRAND: the CPU has
                                       // it and two fresh words pass the draws' health checks
  bool hardware_rng_failed;            // the CPU has RDRAND, but it fails those checks (all ones,
                                       // zeros, stuck): not used, a cloned kernel is not covered
  bool snapshot_safe;                  // false only for SNAPSAFE_SOURCE=fork-only-unsafe
  bool fork_detection;                 // MADV_WIPEONFORK works on this kernel
  Coverage fork;                       // fork(), including after a process restore
  Coverage vm_clone;                   // a VM restored or cloned with a new VMGenID
  Coverage process_restore;            // a process restored by CRIU, runc/podman, SnapStart
  Coverage cloned_kernel_rng;          // a VM clone whose kernel RNG was not told (same GUID,
                                       // no VMGenID, or before the kernel handles it)
  std::string retired;                 // why buffering stopped mid-run ("" if it did not)
  uint64_t generation;                 // the generation as the draw reads it now
  uint64_t reseeds;                    // reseeds so far, all threads
  uint64_t live_thread_states;         // threads holding a generator state
  std::vector<std::string> notes;      // why each other source is not watched

  // A multi-line human-readable report.
  std::string to_string() const;
};

Status status();

}  // namespace snapsafe
