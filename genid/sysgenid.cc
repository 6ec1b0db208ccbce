// SysGenID source: see sysgenid.h for the design.
//
// The syscall path has one subtlety. A non-blocking read() on the shared descriptor says
// EAGAIN ("nothing new since the last acknowledgement") without telling the value, so the
// reader answers with g_acknowledged, the last value this process wrote back. The order
// that keeps this safe: g_acknowledged is stored *before* write() acknowledges, so a
// thread whose read() already sees "acknowledged" also sees the new value (the kernel's
// own locking orders the two syscalls). Acknowledgements are serialised (a spin flag) and a
// rejected write() (the generation moved again) restores the previous value: until the
// next acknowledgement the descriptor is outdated, so every read() returns the value.
//
// fork(): parent and child would share one open file description, and so one
// "acknowledged" state: the child's acknowledgement would make the parent's read() say
// EAGAIN while the parent still holds a state from before the change. So a fork child
// opens the device afresh (pthread_atfork), onto the same descriptor number, and starts
// from "value unknown" again. If it cannot, reads fail and draws are served by the kernel.
#include "genid/sysgenid.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace snapsafe::genid {
namespace {

int g_fd = -1;             // the process's one descriptor on the device
int g_open_flags = 0;      // how it was opened, for the fork child's re-open
std::string g_path;        // where, likewise
bool g_fd_is_file = false;  // a regular-file stand-in (tests): pread, no acknowledgement
// Before any acknowledgement, read() returning EAGAIN means "the value at open()". Its
// number is unknown and irrelevant (generations are compared for inequality); 2^32 is a
// value no u32 counter can ever return, so the first real value always differs.
constexpr Generation kValueAtOpen = Generation{1} << 32;
std::atomic<Generation> g_acknowledged{kValueAtOpen};
// Serialises acknowledgements; a plain flag so that a fork child can reset it.
std::atomic<bool> g_ack_busy{false};

// read(), pread() and write() are cancellation points, and the draw that calls us is
// noexcept: a pthread_cancel() acting inside them would unwind into std::terminate(). So
// every syscall here runs with cancellation disabled (measured: ~7-10 ns per pair of
// pthread_setcancelstate calls, next to ~250 ns for the read()); a pending cancellation
// acts at the thread's next cancellation point outside the library.
class NoCancel {
 public:
  NoCancel() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
  ~NoCancel() { pthread_setcancelstate(old_, nullptr); }
  NoCancel(const NoCancel&) = delete;
  NoCancel& operator=(const NoCancel&) = delete;

 private:
  int old_;
};

// pthread_atfork child handler: async-signal-safe calls only.
void reopen_in_child() {
  g_ack_busy.store(false);
  g_acknowledged.store(kValueAtOpen);
  if (g_fd < 0) return;
  const int fd = open(g_path.c_str(), g_open_flags);
  if (fd < 0) {
    close(g_fd);  // reads now fail: the generation is unknown, draws go to the kernel
    return;
  }
  dup3(fd, g_fd, O_CLOEXEC);  // dup2 would drop close-on-exec: an exec would inherit it
  close(fd);
}

std::string describe(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// A descriptor opened and checked, not yet the process's.
struct Opened {
  int fd = -1;
  int flags = 0;
  bool is_file = false;
};

// Opens the device (or stand-in); shared by both modes. A previous descriptor (test
// re-init) is closed first: whatever happens next, at most the new one stays open.
bool open_device(const std::string& path, Opened* opened, std::string* error) {
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
  int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC;
  int fd = open(path.c_str(), flags);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;  // read-only: no acknowledgements
    fd = open(path.c_str(), flags);
  }
  if (fd < 0) {
    *error = describe(path, "open");
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISREG(st.st_mode))) {
    *error = path + ": not a character device or regular file";
    close(fd);
    return false;
  }
  if (S_ISREG(st.st_mode) && st.st_size < 4) {
    *error = path + ": truncated (a SysGenID stand-in holds a 4-byte counter)";
    close(fd);
    return false;
  }
  opened->fd = fd;
  opened->flags = flags;
  opened->is_file = S_ISREG(st.st_mode);
  return true;
}

// Makes `opened` the process's descriptor, once the mode's own checks passed.
void install(const std::string& path, const Opened& opened) {
  g_fd = opened.fd;
  g_open_flags = opened.flags;
  g_path = path;
  g_fd_is_file = opened.is_file;
  g_acknowledged.store(kValueAtOpen);
  static std::once_flag at_fork;
  std::call_once(at_fork, [] { pthread_atfork(nullptr, nullptr, &reopen_in_child); });
}

Generation read_by_syscall() {
  NoCancel no_cancel;
  uint32_t value;
  ssize_t n = g_fd_is_file ? pread(g_fd, &value, sizeof value, 0)
                           : read(g_fd, &value, sizeof value);
  if (n == sizeof value) return value;
  if (n < 0 && errno == EAGAIN) return g_acknowledged.load(std::memory_order_seq_cst);
  return kGenerationUnknown;
}

// `generation` as the reader saw it: in mmap mode the page's first 8 bytes, whose
// little-endian low half is the u32 counter.
static_assert(std::endian::native == std::endian::little,
              "the u32 counter is the low half of the page's first 8 bytes");
void acknowledge(Generation generation) {
  if (g_fd_is_file || generation == kGenerationUnknown) return;
  if (g_acknowledged.load(std::memory_order_relaxed) == generation) return;
  NoCancel no_cancel;
  while (g_ack_busy.exchange(true, std::memory_order_acquire)) sched_yield();
  const Generation previous = g_acknowledged.load(std::memory_order_relaxed);
  if (previous != generation) {
    g_acknowledged.store(generation, std::memory_order_seq_cst);  // before write(): see top
    const uint32_t value = static_cast<uint32_t>(generation);  // little-endian: the counter
    if (write(g_fd, &value, sizeof value) != sizeof value) {
      g_acknowledged.store(previous, std::memory_order_seq_cst);
    }
  }
  g_ack_busy.store(false, std::memory_order_release);
}

}  // namespace

OpenResult open_sysgenid_mmap(const std::string& path) {
  OpenResult result;
  Opened opened;
  if (!open_device(path, &opened, &result.error)) return result;
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, opened.fd, 0);
  if (page == MAP_FAILED) {
    result.error = describe(path, "mmap");
    close(opened.fd);
    return result;
  }
  install(path, opened);
  Reader reader;
  reader.word = static_cast<const uint64_t*>(page);  // the u32 and its 4 neighbours
  return opened_source(SourceKind::kSysgenidMmap, path, reader, &acknowledge);
}

OpenResult open_sysgenid_syscall(const std::string& path) {
  OpenResult result;
  Opened opened;
  if (!open_device(path, &opened, &result.error)) return result;
  uint32_t value;  // the first read: a value, or (the device, freshly opened) EAGAIN
  const ssize_t n = opened.is_file ? pread(opened.fd, &value, sizeof value, 0)
                                   : read(opened.fd, &value, sizeof value);
  if (n != sizeof value && !(n < 0 && errno == EAGAIN && !opened.is_file)) {
    result.error = n < 0 ? describe(path, "read") : path + ": read: short read";
    close(opened.fd);
    return result;
  }
  install(path, opened);
  Reader reader;
  reader.call = &read_by_syscall;
  return opened_source(SourceKind::kSysgenidSyscall, path, reader, &acknowledge);
}

int sysgenid_descriptor_for_testing() { return g_fd; }

}  // namespace snapsafe::genid
