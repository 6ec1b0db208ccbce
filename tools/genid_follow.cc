// `snapsafe genid follow`: see genid_follow.h.
#include "tools/genid_follow.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sysgenid.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <utility>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/file_trust.h"
#include "genid/vmclock.h"
#include "tools/kernel_reseed.h"
#include "tools/sysgenid_device.h"
#include "tools/uevent.h"

namespace snapsafe::tools {
namespace {

constexpr size_t kVmclockMapSize = 4096;

std::string errno_text(int error) { return std::strerror(error); }

int64_t now_us() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

std::string generation_text(genid::Generation generation) {
  return generation == genid::kGenerationUnknown ? "unknown" : std::to_string(generation);
}

}  // namespace

FollowOptions follow_options(const cli::Parsed& parsed, const std::string& counter_file_default,
                             const std::string& sysgenid_default) {
  cli::no_positional("genid", parsed);
  FollowOptions options;
  auto path_value = [&parsed](const char* name, const std::string& fallback) {
    const auto it = parsed.values.find(name);
    if (it == parsed.values.end()) return fallback;
    if (it->second.empty()) throw cli::UsageError{"genid", std::string(name) + " needs a path"};
    return it->second;
  };
  options.counter_file = path_value("--file", counter_file_default);
  options.vmclock_path = path_value("--vmclock-path", genid::kDefaultVmclockPath);
  options.sysgenid_path = path_value("--sysgenid-path", sysgenid_default);
  if (const auto it = parsed.values.find("--sources"); it != parsed.values.end()) {
    options.sources_named = true;
    options.vmclock = options.uevent = options.sysgenid = false;
    std::stringstream list(it->second);
    std::string name;
    bool any = false;
    while (std::getline(list, name, ',')) {
      if (name == "vmclock") {
        options.vmclock = true;
      } else if (name == "uevent") {
        options.uevent = true;
      } else if (name == "sysgenid") {
        options.sysgenid = true;
      } else {
        throw cli::UsageError{"genid", "unknown source '" + cli::shown(name) +
                                           "' in --sources (vmclock, uevent, sysgenid)"};
      }
      any = true;
    }
    if (!any) throw cli::UsageError{"genid", "--sources needs at least one source"};
  }
  if (const auto it = parsed.values.find("--interval-ms"); it != parsed.values.end()) {
    options.interval_ms =
        cli::parse_number("genid", "--interval-ms", it->second, kMaxFollowIntervalMs);
    if (options.interval_ms == 0)
      throw cli::UsageError{"genid", "--interval-ms must be at least 1"};
  }
  options.reseed_kernel = parsed.flags.count("--reseed-kernel") != 0;
  options.once = parsed.flags.count("--once") != 0;
  options.test_sources = parsed.flags.count("--test-sources") != 0;
  return options;
}

bool accept_uevent_sender(int family, uint32_t port, bool test_sources) {
  if (test_sources) return true;
  return family == AF_NETLINK && port == 0;  // the kernel sends from port 0, nobody else can
}

Follower::Follower(FollowOptions options, Log log)
    : options_(std::move(options)), log_(std::move(log)) {}

Follower::~Follower() {
  if (vmclock_page_ != nullptr) {
    munmap(const_cast<unsigned char*>(vmclock_page_), kVmclockMapSize);
  }
  if (vmclock_fd_ >= 0) close(vmclock_fd_);
  if (uevent_owned_ && uevent_fd_ >= 0) close(uevent_fd_);
  if (sysgenid_fd_ >= 0) close(sysgenid_fd_);
}

void Follower::log(const std::string& line) const {
  if (log_) {
    log_(line);
    return;
  }
  std::fprintf(stderr, "snapsafe genid follow: %s\n", cli::shown(line).c_str());
  std::fflush(stderr);
}

std::string Follower::start() {
  std::string replaced;
  if (std::string error = genid::counter_file_create(options_.counter_file, &replaced);
      !error.empty()) {
    return error;
  }
  if (!replaced.empty()) log(options_.counter_file + ": replaced: " + replaced);
  std::vector<std::string> missing;  // "source: why", for the log and the errors

  if (options_.vmclock) {
    struct stat st;
    std::string error;
    const int fd = genid::open_trusted(options_.vmclock_path, O_RDONLY,
                                       genid::LastComponent::kRegularOrCharDevice, &st, &error);
    if (fd < 0) {
      missing.push_back("vmclock: " + error);
    } else if (S_ISREG(st.st_mode) && !options_.test_sources) {
      close(fd);
      missing.push_back("vmclock: " + options_.vmclock_path +
                        ": a regular file is no VMClock device (--test-sources accepts one)");
    } else if (S_ISREG(st.st_mode) &&
               st.st_size < static_cast<off_t>(genid::kVmclockOffsetGeneration + 8)) {
      close(fd);
      missing.push_back("vmclock: " + options_.vmclock_path + ": truncated VMClock page");
    } else {
      void* map = mmap(nullptr, kVmclockMapSize, PROT_READ, MAP_SHARED, fd, 0);
      const char* problem = nullptr;
      if (map == MAP_FAILED) {
        missing.push_back("vmclock: " + options_.vmclock_path + ": mmap: " + errno_text(errno));
        close(fd);
      } else if ((problem = genid::vmclock_page_problem(static_cast<unsigned char*>(map))) !=
                 nullptr) {
        munmap(map, kVmclockMapSize);
        close(fd);
        missing.push_back("vmclock: " + options_.vmclock_path + ": " + problem);
      } else {
        vmclock_fd_ = fd;
        vmclock_page_ = static_cast<const unsigned char*>(map);
        vmclock_last_ = genid::vmclock_read_generation(vmclock_page_);
        // Notifications: a read clears the descriptor's "seq_count moved" state; then a
        // poll() that reports POLLOUT (a driver without poll, or a regular file) or POLLHUP
        // (no notifications from this device) means: compare every interval instead.
        unsigned char header[genid::kVmclockOffsetGeneration + 8];
        bool poll_works = false;
        if (S_ISCHR(st.st_mode) && pread(fd, header, sizeof header, 0) >= 0) {
          struct pollfd probe = {fd, POLLIN | POLLOUT, 0};
          poll_works = poll(&probe, 1, 0) >= 0 &&
                       !(probe.revents & (POLLOUT | POLLHUP | POLLERR | POLLNVAL));
        }
        vmclock_poll_ = poll_works;
        watched_.push_back("vmclock");
        log("vmclock: " + options_.vmclock_path + ": vm_generation_counter " +
            generation_text(vmclock_last_) +
            (vmclock_poll_ ? ", woken by the device's notifications"
                           : ", compared every " + std::to_string(options_.interval_ms) +
                                 " ms (no notifications)"));
      }
    }
  }

  if (options_.uevent) {
    if (options_.uevent_fd >= 0) {
      uevent_fd_ = options_.uevent_fd;
      watched_.push_back("uevent");
      log("uevent: descriptor " + std::to_string(uevent_fd_) + " (test)");
    } else {
      const int fd =
          socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
      struct sockaddr_nl address = {};
      address.nl_family = AF_NETLINK;
      address.nl_groups = 1;  // the kernel's uevents (2 is udev's re-broadcast)
      if (fd < 0) {
        missing.push_back("uevent: socket(NETLINK_KOBJECT_UEVENT): " + errno_text(errno));
      } else if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof address) != 0) {
        missing.push_back("uevent: bind to the kernel's uevent group: " + errno_text(errno));
        close(fd);
      } else {
        uevent_fd_ = fd;
        uevent_owned_ = true;
        watched_.push_back("uevent");
        log("uevent: listening for the kernel's vmgenid change (NEW_VMGENID=1)");
      }
    }
  }

  if (options_.sysgenid) {
    std::string error;
    const int fd = open_sysgenid_device(options_.sysgenid_path, DeviceUse::kWait, &error);
    if (fd < 0) {
      missing.push_back("sysgenid: " + error);
    } else if (ioctl(fd, SYSGENID_SET_WATCHER_TRACKING, 1) != 0) {
      missing.push_back("sysgenid: " + options_.sysgenid_path +
                        ": SYSGENID_SET_WATCHER_TRACKING: " + errno_text(errno));
      close(fd);
    } else {
      sysgenid_fd_ = fd;
      watched_.push_back("sysgenid");
      log("sysgenid: " + options_.sysgenid_path + ": a tracked watcher");
    }
  }

  for (const std::string& why : missing) log("not watched: " + why);
  if (options_.sources_named && !missing.empty()) return missing.front();
  if (watched_.empty())
    return "no source to follow (" + std::to_string(missing.size()) + " tried: see above)";
  log("bumping " + options_.counter_file + " on every change" +
      (options_.reseed_kernel ? ", the kernel's RNG reseeded first" : ""));
  return "";
}

bool Follower::check_vmclock(std::string* why) {
  if (vmclock_page_ == nullptr) return false;
  if (vmclock_poll_) {
    unsigned char header[genid::kVmclockOffsetGeneration + 8];
    (void)!pread(vmclock_fd_, header, sizeof header, 0);  // clears POLLIN until seq moves
  }
  const genid::Generation now = genid::vmclock_read_generation(vmclock_page_);
  if (now == vmclock_last_) return false;
  *why = "vmclock: vm_generation_counter " + generation_text(vmclock_last_) + " -> " +
         generation_text(now);
  vmclock_last_ = now;
  return true;
}

bool Follower::drain_uevents(std::string* why) {
  if (uevent_fd_ < 0) return false;
  bool changed = false;
  for (int i = 0; i < 64; ++i) {  // bounded: a flood is drained over several steps
    unsigned char buffer[kMaxUeventSize + 1];
    struct sockaddr_storage sender = {};
    struct iovec iov = {buffer, sizeof buffer};
    struct msghdr message = {};
    message.msg_name = &sender;
    message.msg_namelen = sizeof sender;
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    const ssize_t n = recvmsg(uevent_fd_, &message, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // ENOBUFS: the socket overflowed and uevents were lost; one of them may have been
        // a VM generation change. Bump: a needless bump only costs a reseed.
        if (errno == ENOBUFS) {
          *why = "uevent: messages lost (ENOBUFS)";
          changed = true;
        } else {
          log("uevent: recvmsg: " + errno_text(errno));
        }
      }
      break;
    }
    uint32_t port = 0;
    if (sender.ss_family == AF_NETLINK) {
      port = reinterpret_cast<const struct sockaddr_nl*>(&sender)->nl_pid;
    }
    if (!accept_uevent_sender(sender.ss_family, port, options_.test_sources)) continue;
    if ((message.msg_flags & MSG_TRUNC) != 0) continue;  // longer than any kernel uevent
    const Uevent event = parse_uevent(buffer, static_cast<size_t>(n));
    if (!event.ok || !event.new_vmgenid) continue;
    *why = "uevent: " + event.action + "@" + event.devpath + " NEW_VMGENID=1";
    changed = true;
  }
  return changed;
}

bool Follower::read_sysgenid(std::string* why) {
  if (sysgenid_fd_ < 0) return false;
  uint32_t generation = 0;
  const ssize_t n = read(sysgenid_fd_, &generation, sizeof generation);
  if (n != static_cast<ssize_t>(sizeof generation)) {
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      log("sysgenid: read: " + errno_text(errno));
    }
    return false;
  }
  *why = "sysgenid: generation " + std::to_string(generation);
  sysgenid_pending_ = generation;
  sysgenid_ack_pending_ = true;
  return true;
}

void Follower::acknowledge_sysgenid() {
  if (!sysgenid_ack_pending_) return;
  sysgenid_ack_pending_ = false;
  if (write(sysgenid_fd_, &sysgenid_pending_, sizeof sysgenid_pending_) !=
      static_cast<ssize_t>(sizeof sysgenid_pending_)) {
    // EINVAL: a newer generation already; its read() comes on the next step.
    if (errno != EINVAL) log("sysgenid: acknowledge: " + errno_text(errno));
  }
}

bool Follower::bump(const std::string& why) {
  const int64_t start = now_us();
  genid::Generation generation = 0;
  KernelReseedReport report;
  bool reseeded = false;
  const std::string error =
      genid::counter_file_bump(options_.counter_file, &generation, genid::kThisProcessRoot, nullptr,
                               [&](genid::Generation next) {
                                 if (!options_.reseed_kernel) return;
                                 report = reseed_kernel(next);
                                 reseeded = true;
                               });
  if (!error.empty()) {
    log(why + ": bump failed (retried every " + std::to_string(options_.interval_ms) +
        " ms): " + error);
    return false;
  }
  ++bumps_;
  const int64_t took = now_us() - start;
  log(why + ": " + options_.counter_file + " bumped to " + std::to_string(generation) + " in " +
      std::to_string(took) + " us" + (reseeded ? "; --reseed-kernel: " + report.describe() : ""));
  return true;
}

int Follower::step(int timeout_ms) {
  struct pollfd fds[3];
  nfds_t count = 0;
  if (vmclock_poll_) fds[count++] = {vmclock_fd_, POLLIN, 0};
  if (uevent_fd_ >= 0) fds[count++] = {uevent_fd_, POLLIN, 0};
  if (sysgenid_fd_ >= 0) fds[count++] = {sysgenid_fd_, POLLIN, 0};
  if (timeout_ms < 0 && ((vmclock_page_ != nullptr && !vmclock_poll_) || bump_pending_)) {
    timeout_ms = static_cast<int>(options_.interval_ms);
  }
  if (poll(fds, count, timeout_ms) < 0 && errno != EINTR) {
    log(std::string("poll: ") + errno_text(errno));
  }
  for (nfds_t i = 0; i < count; ++i) {
    if (vmclock_poll_ && fds[i].fd == vmclock_fd_ && (fds[i].revents & (POLLHUP | POLLERR))) {
      vmclock_poll_ = false;  // notifications stopped: compare every interval from now on
      log("vmclock: the device stopped notifying; compared every " +
          std::to_string(options_.interval_ms) + " ms from now on");
    }
  }
  // Every source is looked at on every wake: each check is one load or a non-blocking call.
  std::string why;
  for (auto check :
       {&Follower::check_vmclock, &Follower::drain_uevents, &Follower::read_sysgenid}) {
    std::string reason;
    if ((this->*check)(&reason)) {
      bump_pending_ = true;
      why = why.empty() ? reason : why + "; " + reason;
    }
  }
  if (!why.empty()) pending_why_ = why;
  if (!bump_pending_) return 0;
  if (!bump(pending_why_)) return 0;
  bump_pending_ = false;
  pending_why_.clear();
  acknowledge_sysgenid();  // only now: the counter file already moved
  return 1;
}

int Follower::run() {
  if (std::string error = start(); !error.empty()) {
    std::fprintf(stderr, "snapsafe: genid follow: %s\n", cli::shown(error).c_str());
    return cli::kExitRuntime;
  }
  for (;;) {
    if (step() > 0 && options_.once) return cli::kExitOk;
  }
}

}  // namespace snapsafe::tools
