// File: genid/file_trust.h
//
// Opening the files a generation comes from (the counter file, a VMClock or SysGenID
// stand-in) so that nobody but the machine's administrator and the process's own user
// can decide what they say, and so that opening them can never hang.
//
// Who may control a generation: whoever can write the file, or replace it, i.e. write
// any directory on the way to it. So a file is trusted only if
//  - it is a regular file (or, where the caller allows it, a character device: VMClock's
//    real path), never a FIFO, socket, directory or block device;
//  - it is owned by root or by the effective user, and (regular files) not writable by
//    group or others;
//  - every directory from "/" to it is owned by root or by the effective user and is not
//    writable by group or others, UNLESS it has the sticky bit (/tmp, /dev/shm): in a
//    sticky directory only an entry's owner, the directory's owner or root may rename or
//    unlink the entry, so a trusted file there cannot be replaced by anyone else, and a
//    file someone else planted there first is refused by its owner. (Who owns the sticky
//    directory still matters: its owner can rename anything in it.)
//  - a symbolic link on the way is followed only if it is owned by root or the effective
//    user (its directory passed the rule above, so nobody else can re-point it); at the
//    last component it is followed only where the caller allows it.
// The walk holds a descriptor on each directory (O_PATH, O_NOFOLLOW, openat), so a
// directory checked is the directory used: nothing can be swapped in between.
//
// Where the walk starts: this process's "/" (the default), or a directory the caller
// opened, e.g. /proc/PID/root, a restored container's root in its own mount namespace
// (open() follows that magic link to the task's real root; its text, "/", would name this
// process's root). Beneath a given root the path is resolved as the kernel's
// RESOLVE_IN_ROOT would: absolute symlinks and the path itself start at that root, ".."
// never climbs above it, and mounts are those of the root's mount namespace. The walk is
// done by hand on every kernel, one component per openat() (never "..", never a name with
// a '/', never following a link), because openat2() resolves a whole path at once and the
// rules above must judge each directory and symlink on the way; ".." goes back to the
// directory the walk came from (a stack of descriptors), never openat(dir, "..").
//
// The file itself is opened with O_NONBLOCK (a FIFO or a device never blocks the open),
// O_NOCTTY and O_NOFOLLOW, and only after an O_PATH look at it (which opens nothing)
// showed an acceptable type and owner, so a device node planted at the path is never
// opened. Error messages start with the path and say what was refused and why.
#pragma once

#include <sys/stat.h>

#include <string>

namespace snapsafe::genid {

// The `root` argument below meaning this process's "/" (a relative path then starts at the
// current directory).
inline constexpr int kThisProcessRoot = -1;

enum class LastComponent {
  kRegularNoFollow,      // a regular file at exactly this path (counter file)
  kRegularOrCharDevice,  // a character device or a regular stand-in; a trusted symlink
                         // at the last component is followed (VMClock)
};

// Opens `path` with `access` (O_RDONLY or O_RDWR) under the rules above, resolved from
// `root` (kThisProcessRoot, or a directory descriptor from open_root_directory(): then
// `path`, absolute or not, is resolved beneath it). Returns the descriptor (O_CLOEXEC) and
// fills *st, or returns -1 with *error set and errno saying why (ENOENT: a component does
// not exist; EPERM: refused by the rules; others as the failing call left them), e.g.
//   "/run/snapsafe/generation: open: No such file or directory"
//   "/srv/g: refused: directory /srv is writable by group or others (mode 0777, not sticky):
//    anyone who can write it can replace the file"
int open_trusted(const std::string& path, int access, LastComponent last, struct stat* st,
                 std::string* error, int root = kThisProcessRoot);

// Resolves every component of `path` but the last under the directory rules above, from
// `root` as open_trusted does. Returns a descriptor (O_PATH) on the trusted parent
// directory and sets *name to the last component, or -1 with *error and errno set. For the
// tool, which creates and renames there.
int open_trusted_parent(const std::string& path, std::string* name, std::string* error,
                        int root = kThisProcessRoot);

// Opens `directory` (an absolute path, followed as given: /proc/PID/root leads to that
// task's root) as a root for the functions above: O_PATH | O_DIRECTORY | O_CLOEXEC. The
// root itself must pass the directory rule (checked again at every walk). Returns the
// descriptor, or -1 with *error set, e.g. "/proc/42/root: open: No such file or directory".
int open_root_directory(const std::string& directory, std::string* error);

// The ownership rule alone, for a stat() result: nullptr if `st` may be trusted as a
// regular file or character device (`is_dir` false) or as a directory (`is_dir` true),
// else a static description of the problem ("owned by another user", ...).
const char* untrusted_reason(const struct stat& st, bool is_dir);

// `path` made absolute against the current directory (no resolution), "" on failure.
std::string absolute_path(const std::string& path);

}  // namespace snapsafe::genid
