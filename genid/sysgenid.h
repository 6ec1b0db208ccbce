// File: genid/sysgenid.h
//
// The SysGenID device (/dev/sysgenid, see ../shared/SYSGENID.md and kernel_shim/): a u32
// system generation counter. Two ways to check it per draw:
//  - mmap: the read-only counter page, one 32-bit load per check (the fast path);
//  - syscall: one non-blocking read() per check, the interface the kernel review asked
//    for instead of mmap. read() returns EAGAIN while this descriptor has acknowledged
//    the current generation, else the new generation.
// Either way, after a thread has reseeded for a new generation the process acknowledges
// it with write() (the watcher workflow). snapsafe never enables watcher tracking: it is
// a lazy user, and a tracked lazy user would deadlock the overseer (SYSGENID.md).
//
// For tests, the path may be a regular file holding the u32 at offset 0: mmap works the
// same, and the syscall path then uses pread() at offset 0 (a file has no EAGAIN state).
#pragma once

#include <string>

#include "genid/source.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultSysgenidPath = "/dev/sysgenid";

OpenResult open_sysgenid_mmap(const std::string& path);
OpenResult open_sysgenid_syscall(const std::string& path);

// Test-only: the process's descriptor on the device (-1 if none). A fork child holds a
// freshly opened one under the same number.
int sysgenid_descriptor_for_testing();

}  // namespace snapsafe::genid
