// SysGenID source: see sysgenid.h for the design.
//
// EAGAIN and acknowledgements (syscall mode). A non-blocking read() says EAGAIN once this
// process's open file description has acknowledged the current generation, without
// saying which it is. The reader then answers with `acknowledged`: the last value the
// kernel *accepted* from this process's write() (or, before any, a token meaning "the
// value when the descriptor was opened"; see next_open_token()). The protocol:
//
//   acknowledger                            reader
//   (w1) busy 0 -> 1 (CAS, seq_cst)          (r1) read() -> EAGAIN: the copy is K, current
//   (w2) write(v): the kernel sets copy = v  (r2) seq_cst fence
//   (w3) only if accepted: acknowledged = v  (r3) wait until busy == 0 (seq_cst; bounded)
//   (w4) busy = 0 (seq_cst), futex wake      (r4) return acknowledged
//
// Claim: (r4) returns K or a later accepted value, never an older one, and never a value
// the kernel refused. Proof: K was set by some accepted write (w2) of an acknowledger A (or
// by open(): then K is the token, published when the descriptor was installed or, on a
// re-open, under busy). A's (w1) precedes its (w2), which precedes the reader's (r1) (the
// driver updates and reads the copy under its lock, so a read() that observes a write()'s
// effect is ordered after it), which precedes (r3). So (r3) reads busy's value stored by
// A's (w1) or a later one in busy's modification order; it returns only on a 0, which is
// then A's (w4) or a later acknowledger's (w4). That (w4) synchronises with (r3), and it
// follows its own (w3): `acknowledged` at (r4) is A's v = K or a value stored after it.
// Acknowledgers are serialised by busy and each stores only a value the kernel just
// accepted as *current*; the generation never goes down, so each stored value is >= the one
// before. Failed writes store nothing. []
// The old code stored before write() and restored on failure, and its readers did not
// wait: a late acknowledgement of an older generation republished that generation until
// the kernel refused it. (With waiting readers the order alone is no longer visible to
// them; storing only accepted values keeps the invariant true at every instant, also for
// the unlocked check at the top of acknowledge_value().)
// Waiting is bounded (kMaxWaitNs): a reader that cannot see busy == 0 in time answers
// kGenerationUnknown, and that draw is served by the kernel. No wake-up is lost: futex
// wait re-checks busy in the kernel, and every release wakes. A fork child finds busy
// 0 (its fork handler resets it), and a signal handler never waits for its own thread:
// a draw in a handler on a thread mid-draw (where acknowledgements happen) goes to the
// kernel.
//
// fork(): parent and child would share one open file description, and so one
// "acknowledged" state: the child's acknowledgement would make the parent's read() say
// EAGAIN while the parent still holds a state from before the change. So a fork child
// opens the device afresh (pthread_atfork), onto the same descriptor number, and starts
// from a new "value at open" token. If it cannot, reads fail and draws are served by the
// kernel.
#include "genid/sysgenid.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>

namespace snapsafe::genid {
namespace {

// How long a reader waits for an acknowledgement in flight (one write() syscall, normally
// microseconds) before it answers "unknown" instead.
constexpr long kMaxWaitNs = 20 * 1000 * 1000;

int g_fd = -1;             // the process's one descriptor on the device
int g_open_flags = 0;      // how it was opened, for the fork child's re-open
std::string g_path;        // where, likewise
bool g_fd_is_file = false;  // a regular-file stand-in (tests): pread, no acknowledgement

// The acknowledgement state; see the top.
struct AckState {
  std::atomic<uint32_t> busy;  // futex word: 1 while an acknowledgement is in flight
  std::atomic<Generation> acknowledged;
};
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<Generation>::is_always_lock_free);
AckState g_state;

// "The value at open": an EAGAIN before any acknowledgement. A value no u32 counter can
// return, and a different one for every open, so that a state labelled with one
// descriptor's token never matches another's.
std::atomic<Generation> g_open_tokens{0};
Generation next_open_token() {
  return (g_open_tokens.fetch_add(1, std::memory_order_relaxed) + 1) << 32;
}
bool is_token(Generation g) { return g > 0xffffffffull && g != kGenerationUnknown; }

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

// ---- busy: a bounded futex lock ----

uint32_t* futex_word() { return reinterpret_cast<uint32_t*>(&g_state.busy); }

long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);  // vDSO; async-signal-safe
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Waits until busy is 0 (true), or kMaxWaitNs have passed (false).
bool wait_until_idle() {
  if (g_state.busy.load(std::memory_order_seq_cst) == 0) return true;
  for (int spin = 0; spin < 100; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (g_state.busy.load(std::memory_order_seq_cst) == 0) return true;
  }
  const long deadline = now_ns() + kMaxWaitNs;
  for (;;) {
    const long left = deadline - now_ns();
    if (left <= 0) return false;
    const timespec timeout = {left / 1000000000L, left % 1000000000L};
    syscall(SYS_futex, futex_word(), FUTEX_WAIT_PRIVATE, 1, &timeout, nullptr, 0);
    if (g_state.busy.load(std::memory_order_seq_cst) == 0) return true;
  }
}

bool lock() {
  for (;;) {
    uint32_t expected = 0;
    if (g_state.busy.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) {
      return true;
    }
    if (!wait_until_idle()) return false;
  }
}

void unlock() {
  g_state.busy.store(0, std::memory_order_seq_cst);
  syscall(SYS_futex, futex_word(), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// pthread_atfork child handler: async-signal-safe calls only.
void reopen_in_child() {
  g_state.busy.store(0);  // a thread of the parent may have held it: it is not here
  g_state.acknowledged.store(next_open_token());
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
  g_state.busy.store(0);
  g_state.acknowledged.store(next_open_token());
  static std::once_flag at_fork;
  std::call_once(at_fork, [] { pthread_atfork(nullptr, nullptr, &reopen_in_child); });
}

Generation read_by_syscall() {
  NoCancel no_cancel;
  uint32_t value;
  if (g_fd_is_file) {
    return pread(g_fd, &value, sizeof value, 0) == sizeof value ? value : kGenerationUnknown;
  }
  const ssize_t n = read(g_fd, &value, sizeof value);
  if (n == sizeof value) return value;  // outdated: the current generation
  if (n < 0 && errno == EAGAIN) {       // (r1)
    std::atomic_thread_fence(std::memory_order_seq_cst);  // (r2)
    if (!wait_until_idle()) return kGenerationUnknown;    // (r3)
    return g_state.acknowledged.load(std::memory_order_seq_cst);  // (r4)
  }
  return kGenerationUnknown;
}

// Acknowledges `value` (the u32 the device showed), published as `published` (the value
// the reader returns for it). Thread-safe, bounded, best-effort.
void acknowledge_value(uint32_t value, Generation published) {
  if (g_fd_is_file) return;
  if (g_state.acknowledged.load(std::memory_order_relaxed) == published) return;
  NoCancel no_cancel;
  if (!lock()) return;  // (w1)
  if (g_state.acknowledged.load(std::memory_order_relaxed) != published &&
      write(g_fd, &value, sizeof value) == sizeof value) {         // (w2)
    g_state.acknowledged.store(published, std::memory_order_seq_cst);  // (w3)
  }
  unlock();  // (w4)
}

// Syscall mode: the reader returned the u32 zero-extended; tokens are nothing to write.
void acknowledge_read_value(Generation generation) {
  if (generation == kGenerationUnknown || is_token(generation)) return;
  acknowledge_value(static_cast<uint32_t>(generation), generation);
}

// mmap mode: `generation` is the page's first 8 bytes; the u32 counter is their
// little-endian low half.
static_assert(std::endian::native == std::endian::little,
              "the u32 counter is the low half of the page's first 8 bytes");
void acknowledge_page_value(Generation generation) {
  if (generation == kGenerationUnknown) return;
  acknowledge_value(static_cast<uint32_t>(generation), generation);
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
  return opened_source(SourceKind::kSysgenidMmap, path, reader, &acknowledge_page_value);
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
  return opened_source(SourceKind::kSysgenidSyscall, path, reader, &acknowledge_read_value);
}

int sysgenid_descriptor_for_testing() { return g_fd; }

}  // namespace snapsafe::genid
