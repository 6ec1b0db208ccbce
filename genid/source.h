// File: genid/source.h
//
// The small interface every generation source implements: open it (validating whatever
// it maps), hand back a Reader for the per-draw check, and optionally acknowledge a
// generation once the process has reseeded for it. One file per source implements
// open_*(); source.cc says what each kind covers (SourceTraits); select.cc picks which
// sources are watched. docs/DESIGN.md "Adding a generation source" lists every file a
// new source touches.
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
#ifdef SNAPSAFE_PROBE_FORGOTTEN_KIND
  kForgottenForProbe,  // tests/packaging/run: a kind source_traits() forgets must not build
#endif
};

// What a kind of source covers: the questions status() and the draw path ask about the
// sources watched, answered once per kind in source_traits() (source.cc), never by
// comparing kinds or names elsewhere.
struct SourceTraits {
  // Stable lower-case name ("sysgenid-mmap", "counter-file", ...), as the status prints it
  // and SNAPSAFE_SOURCE / the C API's snapsafe_source_name() spell it.
  const char* name;
  // Draws are served from a per-thread buffer (false: every draw from the kernel).
  bool buffers_output;
  // A duplicated memory image is detected at all (false only for fork-only-unsafe).
  bool detects_snapshots;
  // The generation moves when the VM is restored or cloned (the hypervisor moves it).
  bool moves_on_vm_clone;
  // The generation moves when a process or container is restored (CRIU, runc/podman,
  // SnapStart): a restore hook moves it.
  bool moves_on_process_restore;
  // A move may come from a restore that dropped MADV_WIPEONFORK from every page (a process
  // restore: a VM snapshot keeps page flags), so a reseed re-applies it to the state page.
  bool restores_drop_page_flags;
};

// The traits of `kind`: one exhaustive switch, no default, built with -Werror=switch
// (genid/BUILD.bazel), so a kind added to SourceKind and forgotten here fails the build.
SourceTraits source_traits(SourceKind kind);

// source_traits(kind).name.
const char* source_name(SourceKind kind);

struct OpenedSource {
  SourceKind kind = SourceKind::kKernel;
  SourceTraits traits = source_traits(SourceKind::kKernel);  // always source_traits(kind)
  std::string path;
  Reader reader;
  // Called after a thread reseeded for `generation`; may be null. Must be thread-safe.
  void (*acknowledge)(Generation generation) = nullptr;
  // Called on the draw's slow path (every reseed and refill, never per draw); may be null.
  // Returns false once the source can no longer be trusted (its file unlinked, replaced
  // or corrupted): the process then stops buffering and serves draws from the kernel.
  // Must be thread-safe and must not block.
  bool (*still_valid)() = nullptr;
  // Why still_valid() said false, for the status note ("" if it cannot tell); may be null.
  std::string (*invalid_reason)(const OpenedSource& source) = nullptr;
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
                                bool (*still_valid)() = nullptr,
                                std::string (*invalid_reason)(const OpenedSource&) = nullptr) {
  OpenResult result;
  result.ok = true;
  result.source = {kind,        source_traits(kind), path,          reader,
                   acknowledge, still_valid,         invalid_reason};
  return result;
}

}  // namespace snapsafe::genid
