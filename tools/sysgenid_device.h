// File: tools/sysgenid_device.h
//
// What `snapsafe genid read|bump|wait` do on the SysGenID device (UAPI:
// kernel_shim/include/uapi/linux/sysgenid.h), apart from tools/snapsafe.cc so that a test
// can run them against the fake device (tests/fake_sysgenid.h, tests/cli_device_test.cc).
//
// Opening. The path comes from the environment (SNAPSAFE_SYSGENID_PATH), so it is opened
// as the library opens it (genid/file_trust.h's open_trusted(): trusted owner, trusted
// directories and links, an O_PATH look before anything is opened, then O_NONBLOCK), and
// only a character device is accepted. A FIFO at the path used to hang every genid
// command in open(); a regular file was taken for the device.
//
// Waiting. SYSGENID_WAIT_WATCHERS returns EINTR while the caller's own descriptor is
// outdated, so the waiter must acknowledge each new generation (read() it, write() it
// back) before it waits again. That needs a descriptor open for writing: `wait` opens the
// device read-write. An acknowledgement that fails for any reason but a newer generation
// (EINVAL: acknowledged on the next round) is an error: before, a read-only descriptor's
// write() failed with EBADF unnoticed, and every later ioctl returned EINTR at once, a
// busy loop at 100% CPU for as long as the timeout (by default forever).
//
// Every function returns "" on success or an error message starting with the path.
#pragma once

#include <cstdint>
#include <string>

namespace snapsafe::tools {

enum class DeviceUse {
  kRead,  // read-only: the page
  kBump,  // read-only: the page and SYSGENID_TRIGGER_GEN_UPDATE
  kWait,  // read-write: SYSGENID_WAIT_WATCHERS and acknowledgements
};

// Opens the device at `path` for `use` (see top). Returns a descriptor (O_CLOEXEC,
// O_NONBLOCK) or -1 with *error set, e.g. "/run/x: not a character device or regular
// file" (a FIFO), "/tmp/f: not a character device (a regular file is no SysGenID device)".
int open_sysgenid_device(const std::string& path, DeviceUse use, std::string* error);

// The current generation: the first 4 bytes of the device's read-only page.
std::string sysgenid_device_generation(int fd, const std::string& path, uint32_t* generation);

// SYSGENID_TRIGGER_GEN_UPDATE with `min` (the caller has checked it: cli_args.h), then the
// new generation.
std::string sysgenid_device_trigger(int fd, const std::string& path, uint32_t min,
                                    uint32_t* generation);

// SYSGENID_WAIT_WATCHERS until no tracked watcher is outdated (`timeout_ms` 0: no limit),
// acknowledging every generation change on the way (see top); then the generation.
std::string sysgenid_device_wait(int fd, const std::string& path, uint64_t timeout_ms,
                                 uint32_t* generation);

// Test-only switches, for the negative controls: each puts one old behaviour back.
struct DeviceTestFlags {
  bool plain_open = false;  // open(path, O_RDONLY) with no look, no O_NONBLOCK, no
                            // type check (4.2's read-only waiter, 4.8's FIFO hang)
  bool ignore_failed_acknowledgement = false;  // wait: a failed write() is not an error
};
extern DeviceTestFlags g_device_test_flags;

}  // namespace snapsafe::tools
