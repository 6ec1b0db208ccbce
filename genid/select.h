// File: genid/select.h
//
// Chooses the one active generation source, once per process, from the environment:
//
//   SNAPSAFE_SOURCE         auto (default) | vmclock | sysgenid | counter-file | kernel |
//                           fork-only-unsafe
//   SNAPSAFE_SYSGENID_PATH  default /dev/sysgenid
//   SNAPSAFE_SYSGENID_MODE  mmap (default) | syscall
//   SNAPSAFE_VMCLOCK_PATH   default /dev/vmclock0
//   SNAPSAFE_COUNTER_FILE   default /run/snapsafe/generation
//
// auto tries VMClock, then SysGenID, then the counter file, and otherwise selects the
// kernel-backed mode (every draw from getrandom). An explicitly requested source that
// cannot be opened, or an unknown setting, also ends in the kernel-backed mode: a
// misconfiguration costs speed, never safety. Every skipped source leaves a note saying
// why, which snapsafe::status() reports. Buffered output without any source happens only
// with SNAPSAFE_SOURCE=fork-only-unsafe.
#pragma once

#include <string>
#include <vector>

#include "genid/source.h"

namespace snapsafe::genid {

struct Selection {
  OpenedSource active;
  std::vector<std::string> notes;  // one line per source that was tried and skipped
};

// Selects the source on first call (thread-safe) and installs its reader in g_reader.
const Selection& init();

// Test-only: forget the selection and select again from the current environment.
// Call only while no other thread draws.
void reinit_for_testing();

}  // namespace snapsafe::genid
