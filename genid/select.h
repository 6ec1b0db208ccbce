// File: genid/select.h
//
// Chooses the generation sources this process watches, once per process, from the
// environment (read with secure_getenv: a setuid or setgid program ignores it):
// SNAPSAFE_SOURCE, SNAPSAFE_SYSGENID_PATH, SNAPSAFE_SYSGENID_MODE, SNAPSAFE_VMCLOCK_PATH and
// SNAPSAFE_COUNTER_FILE, whose values and defaults docs/USAGE.md ("Settings") documents.
//
// Every source found is watched on every draw, not only the first: a container in a VM
// can be restored by CRIU (its hook bumps the counter file) and cloned as a VM (VMClock or
// SysGenID moves). auto watches VMClock and SysGenID when present. A counter file is
// evidence of nothing by itself (a file nobody bumps looked safe and repeated in VM
// clones), so auto relies on one only when SNAPSAFE_COUNTER_FILE names it (the operator's
// statement that a restore hook bumps it), or alongside a VM source at the default path.
// With no source, the kernel-backed mode serves every draw from the kernel (with the
// hardware RNG mixed in: rng/internal/kernel_output.h), which needs no hook at all.
// An explicitly requested source that cannot be opened, or an unknown setting, also ends
// in the kernel-backed mode: a misconfiguration costs speed, never safety. Every skipped
// source leaves a note saying why, which snapsafe::status() reports. Buffered output
// without any source happens only with SNAPSAFE_SOURCE=fork-only-unsafe.
//
// A watched source that stops being trustworthy (its still_valid() says so on a slow
// path) retires the selection: from then on every check reads "unknown" and every draw is
// served from the kernel, and the reason joins the notes.
#pragma once

#include <string>
#include <vector>

#include "genid/source.h"

namespace snapsafe::genid {

struct Selection {
  // What the draw uses: the one watched source, or a composite of several (its kind is
  // the first one's), or the constant source of the kernel-backed / fork-only modes.
  OpenedSource active;
  std::vector<OpenedSource> watched;  // every source checked per draw (may be empty)
  std::vector<std::string> notes;     // one line per source that was tried and skipped
};

// Selects on first call (thread-safe) and installs the reader in g_reader.
const Selection& init();

// Asks every watched source's still_valid(); on the first "no", retires the selection
// (see top) and returns false. Cheap when nothing is watched. Thread-safe.
bool sources_still_valid();

// Retires the selection now (see top); `why` becomes the status note. Idempotent.
void retire(const std::string& why);

// Whether the selection was retired, and why ("" if not).
bool retired();
std::string retired_reason();

// Test-only (defined only in //genid:genid_testing, SNAPSAFE_TESTING): forget the
// selection and select again from the current environment. Call only while no other
// thread draws.
void reinit_for_testing();

}  // namespace snapsafe::genid
