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
// For tests, the path may be a regular file holding the u32 at offset 0: mmap works the
// same, and the syscall path then uses pread() at offset 0 (a file has no EAGAIN state,
// and nothing is acknowledged). tests/fake_sysgenid.h fakes the character device itself.
#pragma once

#include <string>

#include "genid/source.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultSysgenidPath = "/dev/sysgenid";

OpenResult open_sysgenid_mmap(const std::string& path);
OpenResult open_sysgenid_syscall(const std::string& path);

// Test-only: the process's descriptor on the device (-1 if none). A fork child holds a
// freshly opened one, under the same number if that number was still the device's.
int sysgenid_descriptor_for_testing();

}  // namespace snapsafe::genid
