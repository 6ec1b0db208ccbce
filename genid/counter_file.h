// File: genid/counter_file.h
//
// The read side (what the library's draw path uses): open_counter_file() and the source's
// still_valid(). The file lives in three rooms: this one (counter_file.cc), the mappings
// and their SIGBUS guard with its tombstones (counter_file_guard.h, internal), and the
// writer (create, bump, set, read: counter_file_writer.h, //genid:counter_file_writer),
// which the tools link and applications do not. The format: counter_file_format.h.
//
// The shared counter file: snapshot detection for containers without any kernel module.
// A small file, best on tmpfs (/run, /dev/shm), holds a 64-bit generation; every process
// maps it MAP_SHARED read-only and checks it with one load per draw. A restore hook
// (CRIU action script, Lambda SnapStart afterRestore hook, ...) runs
// `snapsafe_counter bump PATH`, which sets it atomically, through a shared writable mapping
// (readers never see a torn value), to a fresh random generation drawn where the bump
// runs (for CRIU and containers: the host), or `snapsafe_counter set VALUE PATH` to a
// value handed in from outside (an agent that got it from its host).
//
// Layout: counter_file_format.h (16 bytes: magic "SSGENv1\n", then the generation).
// Generations are only compared for inequality. `create` starts a new file at 64 random
// bits from getrandom (never 0, and at least 2^32 below kGenerationUnknown), so a file
// recreated at restore (a fresh tmpfs) never repeats the number the checkpoint had.
// `bump` draws such a value too (not +1, as it once did): clones of one VM or
// container whose files were copied at the same generation, each bumped on its own host
// side, get different generations, and the reseed hashes the generation into the seed
// (rng/internal/seed.cc), so their random streams differ even when everything else in
// the seed is a clone (a guest kernel RNG that was not told, no RDRAND).
// A missing, truncated or corrupt file is reported as an error: the library then falls
// back to the next safe mode. Nothing here ever truncates a file.
//
// Who may control it (genid/file_trust.h): the file must be a regular file at exactly the
// path (no symlink at the last component; a FIFO there never blocks the open), owned by
// root or the effective user and not writable by group or others, in directories owned by
// root or the effective user that are not writable by group or others unless sticky.
// Anything else is refused with a message saying why; the library then runs kernel-backed
// with that note in status(). The tool refuses such a file the same way.
//
// Abuse while mapped, and what still_valid() (source.h) then says:
//  - unlinked, renamed away or replaced (the hook would bump another file): false, from
//    an lstat() of the path: no file, or another inode than the one mapped (a mapping
//    that was itself re-made onto the file now at the path, as a CRIU restore does, is
//    still fine: /proc/self/maps tells). At most one lstat per 1 ms per source
//    (CLOCK_MONOTONIC_COARSE: in practice once per clock tick);
//  - magic overwritten, or the file made writable by others or given away: false;
//  - truncated (`: > FILE`; `echo 1 > FILE` if a load lands between its truncation and
//    its write): a load from a page past the end of the file raises SIGBUS. A process-wide
//    SIGBUS handler, installed when the process first maps a counter file, replaces the
//    faulting counter page with an anonymous "tombstone" page (magic 0, generation
//    kGenerationUnknown), so the retried load reads "unknown" (the draw is served by the
//    kernel) and still_valid() is false. A SIGBUS anywhere else goes where it went before:
//    to the handler installed before ours (called with the same arguments; its sa_mask
//    and SA_RESETHAND are not replayed), else it kills as it did (the default action
//    restored and the signal raised again; an ignored kill() stays ignored).
//    Limit: an application that installs its own SIGBUS handler after its first counter
//    file was mapped replaces ours; a truncation then kills it again, unless its handler
//    passes faults it does not know on to the one it replaced. `echo 1 > FILE` that lands
//    no load in between leaves a 2-byte file: no fault, a wrong magic: still_valid() false.
// Once false it stays false; counter_file_invalid_reason() says why. The first false also
// turns the source's page into the same tombstone, so every thread's per-draw check reads
// "unknown" from then on and the whole process draws from the kernel, whichever thread
// asked. The draw calls it on its slow path (and stops buffering when it is false). It is
// thread-safe and async-signal-safe, leaves errno alone, and never blocks on anything but
// the lstat() of a path on tmpfs.
// Not detected: a trusted writer rewriting the 16 bytes in place with a valid magic
// (`cp` over the file). Never write the file any other way than with the tool.
#pragma once

#include <cstdint>
#include <string>

#include "genid/counter_file_format.h"
#include "genid/file_trust.h"
#include "genid/source.h"

namespace snapsafe::genid {

// Maps the file read-only and validates it; the source for the per-draw check, with its
// still_valid(). A process keeps every counter file it opened mapped (at most 256 distinct
// ones; opening the same, still trusted file again reuses its mapping).
OpenResult open_counter_file(const std::string& path);

// Why the counter file whose source has `still_valid` stopped being trusted, as a line for
// status() ("/run/snapsafe/generation: no longer trusted: it was replaced (...)"); "" while
// it is trusted, or if `still_valid` is not a counter file's.
std::string counter_file_invalid_reason(bool (*still_valid)());

// Test-only: defined only in //genid:genid_testing (SNAPSAFE_TESTING), so production code
// that calls one fails to link. The SIGBUS guard: with `enabled` false, faults on counter
// pages are passed on like any other (the negative control: the process dies of SIGBUS as
// it did).
void counter_file_sigbus_guard_for_testing(bool enabled);
// Installs the SIGBUS handler again, taking the one installed now as the one to pass
// foreign faults to (as if this process mapped its first counter file now).
void counter_file_reinstall_sigbus_handler_for_testing();
// still_valid()'s rate limit for the lstat() (default kCounterFileCheckIntervalNs; 0:
// every call).
void counter_file_check_interval_for_testing(int64_t nanoseconds);

}  // namespace snapsafe::genid
