// The genid commands on the SysGenID device: see sysgenid_device.h.
#include "tools/sysgenid_device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <linux/sysgenid.h>

#include "genid/file_trust.h"

namespace snapsafe::tools {

DeviceTestFlags g_device_test_flags;

namespace {

// Acknowledgements refused in a row because the generation had moved on again (EINVAL)
// before the wait gives up: each one needs a bump between our read() and write(), so
// this many in a row means something else is wrong, not that the system is busy.
constexpr int kMaxStaleAcknowledgements = 100;

std::string errno_text(const std::string& path, const char* what, int error) {
  return path + ": " + what + ": " + std::strerror(error);
}

// An ioctl's errno as a message.
std::string ioctl_error(const std::string& path, const char* name, int error) {
  if (error == ENOTTY || error == EINVAL) {
    return path + ": not a SysGenID device (" + name + ": " + std::strerror(error) + ")";
  }
  if (error == EACCES || error == EPERM) {
    return path + ": " + name + ": " + std::strerror(error) +
           " (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)";
  }
  if (error == EOVERFLOW) {
    return path + ": " + name + ": the generation is saturated at 4294967295 and can never " +
           "change again (reload the sysgenid module or reboot)";
  }
  return errno_text(path, name, error);
}

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

std::string timed_out(const std::string& path, uint64_t timeout_ms) {
  return path + ": timed out after " + std::to_string(timeout_ms) +
         " ms: some watchers have not acknowledged the generation";
}

// After an EINTR: acknowledges the generation this descriptor has not seen yet. Sets
// *stale when the kernel refused it because a newer one came meanwhile (next round).
std::string acknowledge(int fd, const std::string& path, bool* stale) {
  *stale = false;
  uint32_t generation = 0;
  const ssize_t n = read(fd, &generation, sizeof generation);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return "";  // not outdated: a signal
  if (n != static_cast<ssize_t>(sizeof generation)) {
    return n < 0 ? errno_text(path, "read", errno) : path + ": read: short read";
  }
  if (write(fd, &generation, sizeof generation) == static_cast<ssize_t>(sizeof generation)) {
    return "";
  }
  if (errno == EINVAL) {
    *stale = true;
    return "";
  }
  return path + ": cannot acknowledge generation " + std::to_string(generation) +
         " (write: " + std::strerror(errno) + "); without it every wait returns at once (EINTR)";
}

}  // namespace

int open_sysgenid_device(const std::string& path, DeviceUse use, std::string* error) {
  if (g_device_test_flags.plain_open) {  // the negative control: as before
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) *error = errno_text(path, "open", errno);
    return fd;
  }
  const int access = use == DeviceUse::kWait ? O_RDWR : O_RDONLY;
  struct stat st;
  const int fd =
      genid::open_trusted(path, access, genid::LastComponent::kRegularOrCharDevice, &st, error);
  if (fd < 0) {
    if (use == DeviceUse::kWait && error->find(std::strerror(EACCES)) != std::string::npos) {
      *error += " (genid wait opens the device read-write: it acknowledges generations)";
    }
    return -1;
  }
  if (!S_ISCHR(st.st_mode)) {
    close(fd);
    *error = path + ": not a character device (a regular file is no SysGenID device)";
    return -1;
  }
  return fd;
}

std::string sysgenid_device_generation(int fd, const std::string& path, uint32_t* generation) {
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) {
    return path + ": not a SysGenID device (mmap: " + std::strerror(errno) + ")";
  }
  *generation = __atomic_load_n(static_cast<const uint32_t*>(page), __ATOMIC_ACQUIRE);
  munmap(page, 4096);
  return "";
}

std::string sysgenid_device_trigger(int fd, const std::string& path, uint32_t min,
                                    uint32_t* generation) {
  if (ioctl(fd, SYSGENID_TRIGGER_GEN_UPDATE, static_cast<unsigned long>(min)) != 0) {
    return ioctl_error(path, "SYSGENID_TRIGGER_GEN_UPDATE", errno);
  }
  return sysgenid_device_generation(fd, path, generation);
}

std::string sysgenid_device_wait(int fd, const std::string& path, uint64_t timeout_ms,
                                 uint32_t* generation) {
  const uint64_t deadline = monotonic_ms() + timeout_ms;
  int stale_in_a_row = 0;
  for (;;) {
    uint64_t left = 0;
    if (timeout_ms != 0) {
      const uint64_t now = monotonic_ms();
      if (now >= deadline) return timed_out(path, timeout_ms);
      left = deadline - now;
    }
    if (ioctl(fd, SYSGENID_WAIT_WATCHERS, static_cast<unsigned long>(left)) == 0) break;
    const int error = errno;
    if (error == ETIMEDOUT || error == EAGAIN || error == EBUSY) {
      return timed_out(path, timeout_ms);
    }
    if (error != EINTR) return ioctl_error(path, "SYSGENID_WAIT_WATCHERS", error);
    // The generation moved (or a signal came): acknowledge it on this descriptor, as the
    // interface asks, and wait again.
    bool stale = false;
    std::string problem = acknowledge(fd, path, &stale);
    if (g_device_test_flags.ignore_failed_acknowledgement) problem.clear();
    if (!problem.empty()) return problem;
    stale_in_a_row = stale ? stale_in_a_row + 1 : 0;
    if (stale_in_a_row >= kMaxStaleAcknowledgements) {
      return path + ": cannot acknowledge the generation: the device refused " +
             std::to_string(stale_in_a_row) + " acknowledgements in a row (EINVAL)";
    }
  }
  return sysgenid_device_generation(fd, path, generation);
}

}  // namespace snapsafe::tools
