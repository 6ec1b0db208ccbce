// File: genid/sysgenid.h
//
// The SysGenID device (/dev/sysgenid, see ../shared/SYSGENID.md and kernel_shim/): a u32
// system generation counter. Two ways to check it per draw:
//  - mmap: the read-only counter page, one 64-bit load per check (the fast path);
//  - syscall: one non-blocking read() per check, the interface the kernel review asked
//    for instead of mmap, preceded by an fstat() that makes sure the descriptor is still
//    ours (an application may have closed it and reused the number). read() returns the
//    new generation while this process's descriptor is outdated, EAGAIN once it has
//    acknowledged the current one; EAGAIN is answered with the last value the kernel
//    accepted from this process (sysgenid.cc explains the ordering).
// Either way, after a thread has reseeded for a new generation the process acknowledges
// it with write() (the watcher workflow). snapsafe never enables watcher tracking: it is
// a lazy user, and a tracked lazy user would deadlock the overseer (SYSGENID.md).
//
// The descriptor is the process's own: close-on-exec; re-opened in a fork child (also one
// made by _Fork() or clone(), which run no atfork handler: detected on first use); never
// read, written or closed once the number belongs to someone else (the device is then
// re-opened, or the generation is unknown and draws go to the kernel). Every syscall runs
// with pthread cancellation disabled: the draw is noexcept.
//
// Who may control it (genid/file_trust.h, as for VMClock): the path is opened with
// open_trusted(): a character device owned by root or the effective user, reached through
// directories and symbolic links nobody else can change; a FIFO, socket or directory
// there is refused without being opened (an O_PATH look first, then O_NONBLOCK). Without
// that, SNAPSAFE_SYSGENID_PATH naming another user's file let its owner hold the
// generation still, or truncate the file under the mapping (SIGBUS).
//
// A regular file holding the u32 at offset 0 stands in for the device in tests only: it
// is accepted after sysgenid_accept_regular_file_for_testing(true), never otherwise (a
// mapped regular file that shrinks kills the process with SIGBUS, and a generation in a
// file proves nothing about VM clones). mmap works the same on it, and the syscall path
// then uses pread() at offset 0 (a file has no EAGAIN state, and nothing is acknowledged).
// tests/fake_sysgenid.h fakes the character device itself.
//
// Saturation. The u32 never wraps: the driver (kernel_shim/sysgenid.c) keeps it at
// 4294967295 (kSysgenidSaturated) once there, and every later VM fork is then lost (a
// kernel warning only). A device that reads kSysgenidSaturated is refused at open, and a
// watched one that reaches it stops being valid (still_valid() false: the process retires
// the selection and draws from the kernel; status() says why). `snapsafe genid bump`
// never drives it there (tools/cli_args.h).
#pragma once

#include <cstdint>
#include <string>

#include "genid/source.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultSysgenidPath = "/dev/sysgenid";

// The value at which the counter stays for good (U32_MAX): the source is then no longer
// valid.
inline constexpr uint32_t kSysgenidSaturated = 0xffffffffu;

// Open the device at `path` (trusted as above, read-write if allowed, else read-only: no
// acknowledgements) and return the source, or an error such as
//   "/srv/sysgenid: refused: the file is writable by group or others (...)"
//   "/dev/sysgenid: generation 4294967295 is saturated: ..."
OpenResult open_sysgenid_mmap(const std::string& path);
OpenResult open_sysgenid_syscall(const std::string& path);

// Why the watched SysGenID source stopped being valid ("" while it is valid), as a line
// for status(): "generation 4294967295 is saturated: ...".
std::string sysgenid_invalid_reason();

// Test-only, each of these: defined only in //genid:genid_testing (SNAPSAFE_TESTING), so
// production code that calls one fails to link. Accept a regular file as a stand-in for the
// device (default: refused).
void sysgenid_accept_regular_file_for_testing(bool accept);
// Negative controls: open the path with a plain open() as before, with no trust check
// (`enabled` false); and ignore saturation (at open and in still_valid()).
void sysgenid_trust_check_for_testing(bool enabled);
void sysgenid_saturation_check_for_testing(bool enabled);

// Test-only: the process's descriptor on the device (-1 if none). A fork child holds a
// freshly opened one, under the same number if that number was still the device's.
int sysgenid_descriptor_for_testing();

}  // namespace snapsafe::genid
