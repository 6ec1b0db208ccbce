// File: genid/counter_file_writer.h
//
// The shared counter file's writer: what tools/snapsafe_counter, `snapsafe genid` and the
// restore hooks use to create, bump, set and read the file (design and trust rules:
// counter_file.h; format: counter_file_format.h). Its own library,
// //genid:counter_file_writer, which the tools link and applications do not: the library
// applications link (//rng:snapsafe, libsnapsafe) only ever reads the file.
#pragma once

#include <functional>
#include <string>

#include "genid/counter_file_format.h"
#include "genid/file_trust.h"

namespace snapsafe::genid {

// Each returns "" on success or an error message. None of them ever truncates a file,
// follows a symlink at the last component, or blocks on a FIFO; each applies the trust
// rules of counter_file.h. `root`: where `path` is resolved
// (file_trust.h): kThisProcessRoot, or a directory descriptor from open_root_directory(),
// e.g. on /proc/PID/root for a restore hook that must reach the file a restored container
// maps; `path` is then walked beneath that root (absolute symlinks and ".." never leave it).
// create: makes a fresh file (mode 0644 whatever the umask, owned by the caller) at a
// random generation unless a valid trusted one exists (then unchanged). Refuses a
// directory others could write. Something at the path that is positively not a usable
// counter file (bad magic, shorter than 16 bytes, not a regular file, untrusted) is
// replaced atomically (rename), after it was retired where that is safe (a 16-byte
// regular file with one link): generation word kGenerationUnknown, magic 0, so processes
// still mapping it see "unknown"; `*replaced` then says why it was replaced. A file it
// cannot judge (not readable by the caller) is an error, left alone. Fails closed
// (nothing written) if getrandom fails.
std::string counter_file_create(const std::string& path, std::string* replaced = nullptr,
                                int root = kThisProcessRoot);
// bump: atomically sets the generation to a fresh random value (as create's start: never
// 0, at least 2^32 below kGenerationUnknown) that differs from the value it replaces (a
// compare-and-swap loop); `*generation` receives the new value. Fails closed (nothing
// written, an error) if getrandom fails. On an error, `*missing` (if given) says whether
// it was that the path names nothing (ENOENT: the file, or a directory on the way, does
// not exist) as opposed to anything else (refused, corrupt, ...). `before_store` (if given)
// is called with each value right before it is stored (again if a concurrent writer made
// the store retry): `snapsafe genid bump --reseed-kernel` mixes it into the kernel first.
std::string counter_file_bump(const std::string& path, Generation* generation,
                              int root = kThisProcessRoot, bool* missing = nullptr,
                              const std::function<void(Generation)>& before_store = nullptr);
// set: atomically stores `value` (anything but kGenerationUnknown, which is refused), a
// generation handed in from outside the clone. `*unchanged` (if given) says whether the
// file already held it (CRIU runs hooks twice per stage: a second set is no error).
// `root` and `*missing` as for bump.
std::string counter_file_set(const std::string& path, Generation value, bool* unchanged = nullptr,
                             int root = kThisProcessRoot, bool* missing = nullptr);
// read: the current generation; `root` and `*missing` as for bump.
std::string counter_file_read(const std::string& path, Generation* generation,
                              int root = kThisProcessRoot, bool* missing = nullptr);

// Test-only (defined only in //genid:counter_file_writer_testing, SNAPSAFE_TESTING).
// Where bump and create take their fresh generations from (nullptr: getrandom); `fresh`
// returns false for a getrandom failure.
void counter_file_fresh_generation_for_testing(bool (*fresh)(Generation*));

}  // namespace snapsafe::genid
