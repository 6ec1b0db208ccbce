// File: genid/counter_file_guard.h
//
// Internal to genid (not API): every mapping of a counter file this process holds, and the
// SIGBUS guard over them (design: counter_file.h, "Abuse while mapped"). The read-side
// source (counter_file.cc) and the writer (counter_file_writer.cc) map files only through
// map_counter(), which installs the guard before the first load and registers the mapping
// in a fixed table of slots; a source's still_valid() finds its own slot by index.
//
// Truncation: a load from a page of a MAP_SHARED mapping past the end of its file raises
// SIGBUS. The guard replaces such a counter page with a tombstone (magic 0, generation
// kGenerationUnknown): the faulting load is retried and reads "unknown", so the draw goes
// to the kernel, and still_valid() is false. Any other SIGBUS goes where it went before
// the guard was installed.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "genid/counter_file_format.h"
#include "genid/file_trust.h"

namespace snapsafe::genid::counter_file_internal {

inline constexpr size_t kSlots = 256;
enum SlotState : int { kFree, kClaimed, kSource };

// Why a source stopped being trusted when the guard caught its truncation.
inline constexpr const char* kReasonTruncated =
    "it was truncated while mapped (SIGBUS caught: the page now reads generation unknown)";

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<uintptr_t> base{0};  // the mapping while registered, else 0
  size_t length = 0;               // of the mapping: one page
  int prot = 0;                    // PROT_READ, or PROT_READ | PROT_WRITE (the tool's)
  // Sources only (state kSource): what the path named when it was opened.
  std::string path;  // absolute, resolved at each check the way the restore hook resolves it
  std::atomic<uint64_t> dev{0};  // the mapped file (atomic: a check may follow a re-mapping)
  std::atomic<uint64_t> ino{0};
  std::atomic<int64_t> next_check_ns{0};      // still_valid's next lstat, CLOCK_MONOTONIC_COARSE
  std::atomic<const char*> invalid{nullptr};  // set once, never cleared: why it is not trusted
};
extern Slot g_slots[kSlots];

// Registers a fresh mapping; the slot index, or -1 if the table is full.
int claim_slot(void* map, int prot);
void release_slot(int index);

// Builds a tombstone aside and moves it over the counter page at `base` in one step
// (mremap), so no load ever sees a half-made page (a zero generation). System calls only:
// safe in a signal handler.
bool tombstone_mapping(uintptr_t base, size_t length, int prot);

// Marks the slot untrusted for `reason` (the first reason wins); returns false.
bool invalidate(Slot& slot, const char* reason);

// Installed once, when a process first maps a counter file (`again`: tests only).
void install_sigbus_guard(bool again);

// "PATH: WHAT: strerror(errno)".
std::string errno_message(const std::string& path, const char* what);

// A validated, registered mapping of a counter file.
struct Mapped {
  void* map = nullptr;
  int slot = -1;
  struct stat st;
};

void unmap_counter(const Mapped& mapped);

// Opens the file under the trust rules (file_trust.h), resolved from `root`, checks its
// size, maps it with `prot`, registers the mapping and checks the magic. On failure returns
// false with *error set, and *missing (if given) true when the path names nothing (ENOENT).
bool map_counter(const std::string& path, int prot, Mapped* mapped, std::string* error,
                 bool* bad_magic = nullptr, int root = kThisProcessRoot, bool* missing = nullptr);

}  // namespace snapsafe::genid::counter_file_internal
