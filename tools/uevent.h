// File: tools/uevent.h
//
// One datagram from the kernel's uevent netlink socket (NETLINK_KOBJECT_UEVENT, multicast
// group 1), parsed, for `snapsafe genid follow` (tools/genid_follow.h). Kept apart from
// any I/O so that a test (tests/genid_follow_test.cc) and a fuzzer can feed it any bytes.
//
// The kernel's format (lib/kobject_uevent.c): a header "ACTION@DEVPATH" and then
// "KEY=VALUE" fields, each ended by a NUL byte, in at most 2048 bytes (UEVENT_BUFFER_SIZE).
// The VMGenID driver of newer kernels (drivers/virt/vmgenid.c) sends, when the VM
// generation ID changed (after it has reseeded the kernel's own RNG):
//   change@/devices/.../VMGEN...\0ACTION=change\0DEVPATH=...\0SUBSYSTEM=...\0NEW_VMGENID=1\0...
// udev's re-broadcasts (group 2, magic "libudev\0") are not the kernel's and are refused.
//
// Bounded: at most kMaxUeventSize bytes are looked at (a longer datagram is an error, never
// read past), one pass, no allocation beyond the strings returned.
#pragma once

#include <cstddef>
#include <string>

namespace snapsafe::tools {

// The largest datagram accepted (the kernel sends at most 2048 bytes; the room above that
// is for other senders' messages, which are then refused as malformed rather than cut).
inline constexpr size_t kMaxUeventSize = 8192;

struct Uevent {
  bool ok = false;  // well formed; else `error` says why
  std::string error;
  std::string action;        // "change", "add", ... (from the header)
  std::string devpath;       // "/devices/..." (from the header)
  bool new_vmgenid = false;  // a "change" carrying the field NEW_VMGENID=1 exactly
};

// Parses `size` bytes at `data` (see top). Never reads outside [data, data + size).
Uevent parse_uevent(const unsigned char* data, size_t size);

}  // namespace snapsafe::tools
