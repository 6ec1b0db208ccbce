// File: genid/counter_file.h
//
// The shared counter file: snapshot detection for containers without any kernel module.
// A small file, best on tmpfs (/run, /dev/shm), holds a 64-bit generation; every process
// maps it MAP_SHARED read-only and checks it with one load per draw. A restore hook
// (CRIU action script, Lambda SnapStart afterRestore hook, ...) runs
// `snapsafe_counter bump PATH`, which increments it atomically through a shared writable
// mapping, so readers never see a torn value.
//
// Layout (16 bytes, host byte order):
//   0..7   magic "SSGENv1\n"
//   8..15  generation, uint64_t, 8-byte aligned, only ever changed by atomic increment
// Generations are only compared for inequality. `create` starts a new file at 64 random
// bits from getrandom (never 0, and at least 2^32 bumps below kGenerationUnknown), so a
// file recreated at restore (a fresh tmpfs) never repeats the number the checkpoint had.
// A missing, truncated or corrupt file is reported as an error: the library then falls
// back to the next safe mode.
//
// Who may control it (genid/file_trust.h): the file must be a regular file at exactly the
// path (no symlink at the last component; a FIFO there never blocks the open), owned by
// root or the effective user and not writable by group or others, in directories owned by
// root or the effective user that are not writable by group or others unless sticky.
// Anything else is refused with a message saying why; the library then runs kernel-backed
// with that note in status(). The tool refuses such a file the same way. Limit: truncating the file while processes map it makes
// their next check fault (SIGBUS); the tool never truncates an existing file.
#pragma once

#include <string>

#include "genid/source.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultCounterFilePath = "/run/snapsafe/generation";
inline constexpr char kCounterFileMagic[8] = {'S', 'S', 'G', 'E', 'N', 'v', '1', '\n'};
inline constexpr size_t kCounterFileSize = 16;

// Maps the file read-only and validates it; the source for the per-draw check.
OpenResult open_counter_file(const std::string& path);

// Tool side (tools/snapsafe_counter). Each returns "" on success or an error message.
// create: makes a fresh file (mode 0644) at a random generation unless a valid one exists
// (then unchanged). Fails closed (nothing written) if getrandom fails.
std::string counter_file_create(const std::string& path);
// bump: atomically increments the generation; `*generation` receives the new value.
std::string counter_file_bump(const std::string& path, Generation* generation);
// read: the current generation.
std::string counter_file_read(const std::string& path, Generation* generation);

}  // namespace snapsafe::genid
