// File: tools/genid_follow.h
//
// `snapsafe genid follow`: a small long-running root command that bridges the VM
// generation signals only root can see to the world-readable counter file
// (genid/counter_file.h), so that a non-root process or a container (which cannot open
// /dev/vmclock0, root-only, nor hear a uevent) still reseeds after a VM restore.
//
// Sources (each used if it can be opened; `--sources` names the ones to use, and then each
// must open):
//  - vmclock: /dev/vmclock0's page, mapped read-only; vm_generation_counter compared for
//    inequality (genid/vmclock.h's seqlock read; a wedged seqlock reads "unknown", which is
//    a value like any other: the change to it is bumped once). Woken by poll() where the
//    kernel supports it (Linux 7.0's vmclock notifications: POLLIN when seq_count moved,
//    cleared by a read of the page); POLLHUP (the device has no notifications), an older
//    driver without poll (it reports POLLOUT, which the real poll never does) and a
//    simulated page (a regular file) fall back to a comparison every `interval_ms`.
//  - uevent: the kernel's uevent netlink socket (group 1); a datagram from the kernel
//    (sender port 0) that tools/uevent.h parses as "change" with NEW_VMGENID=1 (newer
//    kernels' vmgenid driver, after the kernel reseeded its own RNG).
//  - sysgenid: /dev/sysgenid opened read-write as a tracked watcher
//    (SYSGENID_SET_WATCHER_TRACKING): poll() for POLLIN, read() the new generation, and
//    acknowledge it with write() only after the counter file was bumped, so an overseer's
//    SYSGENID_WAIT_WATCHERS returns only once the bridge has done its job.
// On each change: the counter file is set to a fresh random generation
// (counter_file_bump(), as `snapsafe genid bump` does), with --reseed-kernel first mixed
// into the kernel's RNG (tools/kernel_reseed.h). One log line per event. A bump that fails
// is logged and retried every interval (a SysGenID change stays unacknowledged until then).
//
// Asynchronous by nature: a process in a clone can draw before the follower has bumped.
// A process that can read a device itself should watch it directly (docs/DESIGN.md).
//
// Test seams: `test_sources` (--test-sources) accepts a regular file as the VMClock page and
// uevents from user-space senders (a synthetic uevent on a private netlink socket);
// `uevent_fd` hands in any datagram descriptor instead of the netlink socket.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "genid/generation.h"
#include "tools/cli_args.h"

namespace snapsafe::tools {

inline constexpr uint64_t kDefaultFollowIntervalMs = 100;
inline constexpr uint64_t kMaxFollowIntervalMs = 60000;

struct FollowOptions {
  std::string counter_file;    // --file (default: SNAPSAFE_COUNTER_FILE, else /run/...)
  bool reseed_kernel = false;  // --reseed-kernel
  bool vmclock = true;         // --sources vmclock,uevent,sysgenid (default: all three)
  bool uevent = true;
  bool sysgenid = true;
  bool sources_named = false;  // --sources was given: every named source must open
  std::string vmclock_path;    // --vmclock-path (default /dev/vmclock0)
  std::string sysgenid_path;   // --sysgenid-path (default SNAPSAFE_SYSGENID_PATH, else
                               // /dev/sysgenid)
  uint64_t interval_ms = kDefaultFollowIntervalMs;  // --interval-ms, 1..60000
  bool once = false;                                // --once: exit 0 after the first bump
  bool test_sources = false;                        // --test-sources (see top)
  int uevent_fd = -1;  // test-only: a datagram descriptor instead of netlink
};

// `genid follow`'s options from the parsed command line (tools/cli_args.h); a UsageError
// for bad ones: an unknown source name, an empty path, an interval out of range.
// `counter_file_default` and `sysgenid_default` fill what was not given.
FollowOptions follow_options(const cli::Parsed& parsed, const std::string& counter_file_default,
                             const std::string& sysgenid_default);

// Whether a uevent datagram from this sender is taken: the kernel's (AF_NETLINK, port 0),
// or with `test_sources` anyone's. A sender that is not netlink at all (an injected
// test descriptor) is taken only with `test_sources`.
bool accept_uevent_sender(int family, uint32_t port, bool test_sources);

class Follower {
 public:
  // Where log lines go (one per call, no newline); default: stderr with a newline.
  using Log = std::function<void(const std::string&)>;
  explicit Follower(FollowOptions options, Log log = nullptr);
  ~Follower();
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // Creates the counter file if it does not exist, opens the sources, logs what is
  // watched and why anything is not. "" or an error (no source at all, or a source named
  // by --sources that cannot be opened, or the counter file refused).
  std::string start();

  // Waits for events up to `timeout_ms` (-1: until the next VMClock comparison or bump
  // retry is due, or forever) and handles them: returns how many bumps were done (0 or 1).
  int step(int timeout_ms = -1);

  // start(), then step() forever (until the first bump with `once`). The exit status.
  int run();

  // The sources watched after start(), e.g. {"vmclock", "uevent"}.
  const std::vector<std::string>& watched() const { return watched_; }
  uint64_t bumps() const { return bumps_; }

 private:
  bool check_vmclock(std::string* why);
  bool drain_uevents(std::string* why);
  bool read_sysgenid(std::string* why);
  bool bump(const std::string& why);
  void acknowledge_sysgenid();
  void log(const std::string& line) const;

  FollowOptions options_;
  Log log_;
  std::vector<std::string> watched_;
  int vmclock_fd_ = -1;
  const unsigned char* vmclock_page_ = nullptr;
  bool vmclock_poll_ = false;  // notifications work: poll() the descriptor
  genid::Generation vmclock_last_ = 0;
  int uevent_fd_ = -1;
  bool uevent_owned_ = false;
  int sysgenid_fd_ = -1;
  bool sysgenid_ack_pending_ = false;
  uint32_t sysgenid_pending_ = 0;
  bool bump_pending_ = false;
  std::string pending_why_;
  uint64_t bumps_ = 0;
};

}  // namespace snapsafe::tools
