// File: genid/source.h
//
// The small interface every generation source implements: open it (validating whatever
// it maps), hand back a Reader for the per-draw check, and optionally acknowledge a
// generation once the process has reseeded for it. One file per source implements
// open_*(); select.cc picks which one is active.
#pragma once

#include <string>

#include "genid/generation.h"

namespace snapsafe::genid {

// Where the generation comes from, in the order auto-detection prefers them.
enum class SourceKind {
  kVmclock,          // /dev/vmclock0: VMClock's vm_generation_counter (seqlock read)
  kSysgenidMmap,     // /dev/sysgenid: counter page mapped read-only, one load per check
  kSysgenidSyscall,  // /dev/sysgenid: one read() per check (what the kernel review asked)
  kCounterFile,      // shared counter file on tmpfs, bumped by tools/snapsafe_counter
  kKernel,           // no source: every draw is served by getrandom (no buffering)
  kForkOnlyUnsafe,   // explicit opt-in: buffered, fork-safe, NOT snapshot-safe
};

// Stable lower-case name ("sysgenid-mmap", "counter-file", ...), as the status prints it.
const char* source_name(SourceKind kind);

struct OpenedSource {
  SourceKind kind = SourceKind::kKernel;
  std::string path;
  Reader reader;
  // Called after a thread reseeded for `generation`; may be null. Must be thread-safe.
  void (*acknowledge)(Generation generation) = nullptr;
  // Called on the draw's slow path (every reseed and refill, never per draw); may be null.
  // Returns false once the source can no longer be trusted (its file unlinked, replaced
  // or corrupted): the process then stops buffering and serves draws from the kernel.
  // Must be thread-safe and must not block.
  bool (*still_valid)() = nullptr;
};

// Result of trying to open a source: `ok` and `source`, or a human-readable `error`
// ("/dev/sysgenid: No such file or directory").
struct OpenResult {
  bool ok = false;
  OpenedSource source;
  std::string error;
};

// A successfully opened source, as each open_*() returns it.
inline OpenResult opened_source(SourceKind kind, const std::string& path, Reader reader,
                                void (*acknowledge)(Generation) = nullptr,
                                bool (*still_valid)() = nullptr) {
  OpenResult result;
  result.ok = true;
  result.source = {kind, path, reader, acknowledge, still_valid};
  return result;
}

}  // namespace snapsafe::genid
