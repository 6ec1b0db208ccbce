// SysGenID source: see sysgenid.h for the design. This file holds the four parts that need
// care: what EAGAIN means (and the acknowledgement protocol that keeps it honest), knowing
// that the descriptor is still ours, fork children, and pthread cancellation; and, at the
// end, opening (trusted, see sysgenid.h) and saturation (5).
//
// 1. EAGAIN and acknowledgements (syscall mode). A non-blocking read() says EAGAIN once this
//    process's open file description has acknowledged the current generation, without
//    saying which it is. The reader then answers with `acknowledged`: the last value the
//    kernel *accepted* from this process's write() (or, before any, a token meaning "the
//    value when the descriptor was opened"; see next_open_token()). The protocol:
//
//      acknowledger                            reader
//      (w1) busy 0 -> 1 (CAS, seq_cst)          (r1) read() -> EAGAIN: the copy is K, current
//      (w2) write(v): the kernel sets copy = v  (r2) seq_cst fence
//      (w3) only if accepted: acknowledged = v  (r3) wait until busy == 0 (seq_cst; bounded)
//      (w4) busy = 0 (seq_cst), futex wake      (r4) return acknowledged
//
//    Claim: (r4) returns K or a later accepted value, never an older one, and never a value
//    the kernel refused. Proof: K was set by some accepted write (w2) of an acknowledger A
//    (or by open(): then K is the token, published when the descriptor was installed or, on
//    a re-open, under busy). A's (w1) precedes its (w2), which precedes the reader's (r1)
//    (the driver updates and reads the copy under its lock, so a read() that observes a
//    write()'s effect is ordered after it), which precedes (r3). So (r3) reads busy's value
//    stored by A's (w1) or a later one in busy's modification order; it returns only on a
//    0, which is then A's (w4) or a later acknowledger's (w4). That (w4) synchronises with
//    (r3), and it follows its own (w3): `acknowledged` at (r4) is A's v = K or a value
//    stored after it. Acknowledgers are serialised by busy and each stores only a value the
//    kernel just accepted as *current*; the generation never goes down, so each stored
//    value is >= the one before. Failed writes store nothing. []
//    The old code stored before write() and restored on failure, and its readers did not
//    wait: a late acknowledgement of an older generation republished that generation until
//    the kernel refused it. (With waiting readers the order alone is no longer visible to
//    them; storing only accepted values keeps the invariant true at every instant, also for
//    the unlocked check at the top of acknowledge_value().)
//    Waiting is bounded (kMaxWaitNs): a reader that cannot see busy == 0 in time answers
//    kGenerationUnknown, and that draw is served by the kernel. No wake-up is lost: futex
//    wait re-checks busy in the kernel, and every release wakes. A fork child finds busy
//    0 (below), and a signal handler never waits for its own thread: a draw in a handler
//    on a thread mid-draw (which is where acknowledgements happen) goes to the kernel.
//
// 2. Is the descriptor still ours? An application may close every descriptor (a daemon's
//    close-all loop, dup2 over it) and reuse the number for a socket, pipe or file. Then
//    read() would consume its data, block on it, or say EAGAIN (hiding a restore); write()
//    would put acknowledgements into it. So the descriptor's identity (fstat: st_dev,
//    st_ino, st_rdev of what was opened) is checked before every syscall-mode read (a read
//    on a reused number cannot be undone; measured: fstat ~0.45 us next to read's ~0.25
//    us), before every acknowledgement, and when a read returns anything unexpected. A
//    number that is no longer ours is never read, written or closed again: the device is
//    re-opened (checked to be the same device) under a new number; if that fails, the
//    generation is unknown from then on and draws go to the kernel. (OpenSSL checks its
//    cached /dev/urandom descriptor the same way.) What remains: a number closed and reused
//    by another thread between our fstat and our read; and an application that opens this
//    same device itself and gets our number, which fstat cannot tell apart.
//
// 3. fork. Parent and child would share one open file description, and so one
//    acknowledged copy. A fork() child re-opens the device in a pthread_atfork handler,
//    onto the same number (dup3 with O_CLOEXEC) if that number is still ours. _Fork() and
//    clone() children run no atfork handler: the acknowledgement state lives on its own
//    page with MADV_WIPEONFORK, so such a child finds `live` == 0 and re-opens the device
//    on its first EAGAIN or acknowledgement, before it ever writes into the shared
//    description (its reads do not change it). Without WIPEONFORK (kernels before 4.14,
//    where snapsafe keeps no buffered state anyway) the acknowledgement path compares
//    getpid() instead. What remains: until that first use the child holds a descriptor
//    on the parent's description; clone(CLONE_VM) without CLONE_THREAD shares our memory
//    and is not supported (as in glibc).
//
// 4. Cancellation. read(), write(), open() and close() are cancellation points, and the
//    draw is noexcept: a pthread_cancel() acting inside them unwinds into std::terminate.
//    Every syscall here runs with cancellation disabled (pthread_setcancelstate, ~7-10 ns
//    per pair, measured); a pending cancellation acts at the thread's next cancellation
//    point outside the library.
//
// 5. Saturation. The driver keeps the u32 at kSysgenidSaturated once it gets there (one
//    `TRIGGER_GEN_UPDATE` with that minimum did it): no VM fork can move it again, so the
//    source no longer detects anything. Checked at open (mmap mode: the mapped page;
//    syscall mode: one look at the page, mapped and unmapped at once, since a fresh
//    descriptor's read() says only EAGAIN), and by still_valid(): mmap mode loads the
//    page, syscall mode remembers any read() that returned the value. The change to
//    kSysgenidSaturated is itself a change: every thread reseeds, and the reseed asks
//    still_valid() before it seeds, so no state is ever seeded under it.
#include "genid/sysgenid.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <new>

#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

// How long a reader waits for an acknowledgement in flight (one write() syscall, normally
// microseconds) before it answers "unknown" instead.
constexpr long kMaxWaitNs = 20 * 1000 * 1000;

// The per-process acknowledgement state. On its own page with MADV_WIPEONFORK: every child
// (fork, _Fork, clone without CLONE_VM) finds it all zero, i.e. not live, not busy.
struct AckState {
  std::atomic<uint32_t> live;            // 1: the descriptor's open file description is ours
  std::atomic<uint32_t> busy;            // futex word: 1 while an acknowledgement/re-open runs
  std::atomic<Generation> acknowledged;  // see (1) at the top
};
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<Generation>::is_always_lock_free);

AckState g_fallback_state;  // if the page cannot be mapped (no WIPEONFORK)
AckState* g_state = &g_fallback_state;
bool g_state_wipes_on_fork = false;

// The descriptor and what it must be. g_fd changes only under busy (or in a fork child's
// handler); the rest is written once per open, before any reader exists.
std::atomic<int> g_fd{-1};
bool g_fd_is_file = false;  // a regular-file stand-in (tests): pread, no acknowledgement
bool g_writable = false;    // opened read-write: acknowledgements possible
int g_open_flags = 0;
std::string g_path;
struct stat g_identity;         // st_dev, st_ino, st_rdev of what was opened
std::atomic<pid_t> g_owner{0};  // the process that opened it (used without WIPEONFORK)

// Saturation (5): the mapped page (mmap mode), and whether a read returned the value.
std::atomic<const uint32_t*> g_page{nullptr};
std::atomic<bool> g_saturated{false};

// Test-only switches (sysgenid.h).
std::atomic<bool> g_accept_regular_file{false};
std::atomic<bool> g_trust_check{true};
std::atomic<bool> g_saturation_check{true};

// Remembers a value the device showed; true if it is the saturated one.
bool note_saturation(uint32_t value) {
  if (value != kSysgenidSaturated) return false;
  g_saturated.store(true, std::memory_order_relaxed);
  return true;
}

// "The value at open": an EAGAIN before any acknowledgement. A value no u32 counter can
// return, and a different one for every open, so that a state labelled with one
// descriptor's token never matches another's (a re-open may happen after a change).
std::atomic<Generation> g_open_tokens{0};
Generation next_open_token() {
  return (g_open_tokens.fetch_add(1, std::memory_order_relaxed) + 1) << 32;
}
bool is_token(Generation g) { return g > 0xffffffffull && g != kGenerationUnknown; }

// Disables cancellation for its scope (see (4)).
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

uint32_t* futex_word(AckState& s) { return reinterpret_cast<uint32_t*>(&s.busy); }

long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);  // vDSO; async-signal-safe
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Waits until busy is 0 (true), or kMaxWaitNs have passed (false).
bool wait_until_idle(AckState& s) {
  if (s.busy.load(std::memory_order_seq_cst) == 0) return true;
  for (int spin = 0; spin < 100; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (s.busy.load(std::memory_order_seq_cst) == 0) return true;
  }
  const long deadline = now_ns() + kMaxWaitNs;
  for (;;) {
    const long left = deadline - now_ns();
    if (left <= 0) return false;
    const timespec timeout = {left / 1000000000L, left % 1000000000L};
    syscall(SYS_futex, futex_word(s), FUTEX_WAIT_PRIVATE, 1, &timeout, nullptr, 0);
    if (s.busy.load(std::memory_order_seq_cst) == 0) return true;
  }
}

bool lock(AckState& s) {
  for (;;) {
    uint32_t expected = 0;
    if (s.busy.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return true;
    if (!wait_until_idle(s)) return false;
  }
}

void unlock(AckState& s) {
  s.busy.store(0, std::memory_order_seq_cst);
  syscall(SYS_futex, futex_word(s), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// ---- the descriptor ----

bool same_identity(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_rdev == b.st_rdev &&
         (a.st_mode & S_IFMT) == (b.st_mode & S_IFMT);
}

// Is `fd` still the device we opened? (fstat is async-signal-safe.)
bool is_ours(int fd) {
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && same_identity(st, g_identity);
}

// Does the descriptor's description belong to a parent process (a fork child that ran no
// handler)? One load: the page is wiped in such a child. Per read.
bool shares_parents_description(const AckState& s) {
  return s.live.load(std::memory_order_acquire) == 0;
}

// The same, on the acknowledgement path (rare): without WIPEONFORK, compare getpid().
bool forked_without_handlers(const AckState& s) {
  return shares_parents_description(s) ||
         (!g_state_wipes_on_fork && getpid() != g_owner.load(std::memory_order_relaxed));
}

// Opens the device again, with busy held (or in a single-threaded fork child). `stale` is
// the current number; `stale_is_ours`: it still refers to our device (then it is replaced
// in place, keeping the number, or closed), else it belongs to someone else now and is
// left alone. Publishes a fresh token. Returns false if the device cannot be opened again:
// then there is no descriptor and the generation is unknown from now on.
bool reopen_locked(AckState& s, int stale, bool stale_is_ours) {
  int fresh = open(g_path.c_str(), g_open_flags);
  if (fresh >= 0 && !is_ours(fresh)) {  // the path now names something else
    close(fresh);
    fresh = -1;
  }
  if (fresh >= 0 && stale_is_ours) {
    if (dup3(fresh, stale, O_CLOEXEC) == stale) {  // dup2 would drop close-on-exec
      close(fresh);
      fresh = stale;
    } else {
      close(stale);
    }
  } else if (stale_is_ours) {
    close(stale);
  }
  g_owner.store(getpid(), std::memory_order_relaxed);
  s.acknowledged.store(next_open_token(), std::memory_order_seq_cst);
  s.live.store(1, std::memory_order_release);
  g_fd.store(fresh, std::memory_order_release);
  return fresh >= 0;
}

// The descriptor `seen` turned out unusable: not ours any more (`stale_is_ours` false), or
// shared with a parent process. Re-opens it unless another thread already did.
bool replace_descriptor(int seen, bool stale_is_ours) {
  AckState& s = *g_state;
  if (!lock(s)) return false;
  bool ok;
  const int fd = g_fd.load(std::memory_order_acquire);
  if (fd != seen || (stale_is_ours && !shares_parents_description(s))) {
    ok = fd >= 0;  // done meanwhile
  } else {
    ok = reopen_locked(s, seen, stale_is_ours && is_ours(seen));
  }
  unlock(s);
  return ok;
}

// pthread_atfork child handler: async-signal-safe calls only, one thread.
void reopen_in_child() {
  AckState& s = *g_state;
  s.busy.store(0);  // already 0 on a wiped page; not so without WIPEONFORK
  s.live.store(0);
  const int fd = g_fd.load();
  if (fd < 0) return;
  reopen_locked(s, fd, is_ours(fd));  // the regular-file stand-in too (tests watch it)
}

// ---- reading ----

// The regular-file stand-in: the u32 at offset 0.
Generation read_file() {
  NoCancel no_cancel;
  uint32_t value;
  if (pread(g_fd.load(std::memory_order_relaxed), &value, sizeof value, 0) == sizeof value) {
    note_saturation(value);
    return value;
  }
  return kGenerationUnknown;
}

// The device: one read(), after checking that the descriptor is ours.
Generation read_device() {
  NoCancel no_cancel;
  AckState& s = *g_state;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = g_fd.load(std::memory_order_acquire);
    if (fd < 0) return kGenerationUnknown;
    if (!is_ours(fd)) {
      if (!replace_descriptor(fd, false)) return kGenerationUnknown;
      continue;
    }
    uint32_t value;
    const ssize_t n = read(fd, &value, sizeof value);
    if (n == sizeof value) {  // outdated: the current generation
      note_saturation(value);
      return value;
    }
    if (n < 0 && errno == EAGAIN) {                         // (r1)
      std::atomic_thread_fence(std::memory_order_seq_cst);  // (r2)
      if (shares_parents_description(s)) {  // the parent's acknowledgements, not ours
        if (!replace_descriptor(fd, true)) return kGenerationUnknown;
        continue;
      }
      if (!wait_until_idle(s)) return kGenerationUnknown;     // (r3)
      return s.acknowledged.load(std::memory_order_seq_cst);  // (r4)
    }
    if (is_ours(fd)) return kGenerationUnknown;  // the device failed this read
    if (!replace_descriptor(fd, false)) return kGenerationUnknown;
  }
  return kGenerationUnknown;
}

// ---- acknowledging ----

// Acknowledges `value` (the u32 the device showed), published as `published` (the value
// the reader returns for it). Thread-safe, bounded, best-effort.
void acknowledge_value(uint32_t value, Generation published) {
  if (g_fd_is_file || !g_writable) return;
  AckState& s = *g_state;
  if (s.live.load(std::memory_order_relaxed) == 1 &&
      s.acknowledged.load(std::memory_order_relaxed) == published) {
    return;  // most threads: another one acknowledged this generation already
  }
  NoCancel no_cancel;
  if (!lock(s)) return;  // (w1)
  if (s.live.load(std::memory_order_relaxed) == 1 &&
      s.acknowledged.load(std::memory_order_relaxed) == published) {
    unlock(s);  // done while we waited
    return;
  }
  int fd = g_fd.load(std::memory_order_acquire);
  bool usable = fd >= 0;
  if (usable && forked_without_handlers(s)) {
    usable = reopen_locked(s, fd, is_ours(fd));  // never write into the parent's copy
  } else if (usable && !is_ours(fd)) {
    usable = reopen_locked(s, fd, false);  // never write into someone else's file
  }
  fd = g_fd.load(std::memory_order_relaxed);
  if (usable && s.acknowledged.load(std::memory_order_relaxed) != published &&
      write(fd, &value, sizeof value) == sizeof value) {         // (w2)
    s.acknowledged.store(published, std::memory_order_seq_cst);  // (w3)
  }
  unlock(s);  // (w4)
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

// ---- saturation (5) ----

constexpr const char* kSaturatedReason =
    "generation 4294967295 is saturated: the counter can no longer change, so it cannot "
    "signal a VM clone (reload the sysgenid module or reboot)";

// still_valid() (source.h): false once the counter is saturated. Lock-free, no syscall,
// async-signal-safe.
bool still_valid() {
  if (!g_saturation_check.load(std::memory_order_relaxed)) return true;
  if (g_saturated.load(std::memory_order_relaxed)) return false;
  const uint32_t* page = g_page.load(std::memory_order_acquire);
  return page == nullptr || !note_saturation(__atomic_load_n(page, __ATOMIC_ACQUIRE));
}

// invalid_reason() (source.h): why still_valid() said false.
std::string invalid_reason(const OpenedSource&) {
  return g_saturated.load() ? kSaturatedReason : "";
}

// ---- opening ----

std::string describe(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// Once per process: the acknowledgement state's page, and the fork handler.
void prepare_process() {
  static std::once_flag once;
  std::call_once(once, [] {
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED && madvise(page, 4096, MADV_WIPEONFORK) == 0) {
      g_state = new (page) AckState();
      g_state_wipes_on_fork = true;
    } else if (page != MAP_FAILED) {
      munmap(page, 4096);
    }
    pthread_atfork(nullptr, nullptr, &reopen_in_child);
  });
}

// A descriptor opened and checked, not yet the process's.
struct Opened {
  int fd = -1;
  int flags = 0;
  struct stat st;
};

// Drops the process's descriptor, if it has one and it is still ours (test re-init).
void drop_descriptor() {
  const int fd = g_fd.exchange(-1);
  if (fd >= 0 && is_ours(fd)) close(fd);
}

// Opens `path` with `access` (O_RDWR or O_RDONLY): trusted (sysgenid.h), or, in the
// negative control, with a plain open() as before. Returns the descriptor and its fstat.
int open_checked(const std::string& path, int access, struct stat* st, std::string* error) {
  if (g_trust_check.load()) {
    return open_trusted(path, access, LastComponent::kRegularOrCharDevice, st, error);
  }
  const int fd = open(path.c_str(), access | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = describe(path, "open");
    return -1;
  }
  if (fstat(fd, st) != 0 || !(S_ISCHR(st->st_mode) || S_ISREG(st->st_mode))) {
    *error = path + ": not a character device or regular file";
    close(fd);
    return -1;
  }
  return fd;
}

bool open_device(const std::string& path, Opened* opened, std::string* error) {
  prepare_process();
  drop_descriptor();
  int access = O_RDWR;
  int fd = open_checked(path, access, &opened->st, error);
  if (fd < 0) {  // e.g. EACCES: read-only, with no acknowledgements
    access = O_RDONLY;
    error->clear();
    fd = open_checked(path, access, &opened->st, error);
  }
  if (fd < 0) return false;
  const bool is_file = S_ISREG(opened->st.st_mode);
  if (is_file && !g_accept_regular_file.load()) {
    *error = path +
             ": not a character device (a regular file stands in for the SysGenID "
             "device only in tests)";
    close(fd);
    return false;
  }
  if (is_file && opened->st.st_size < 4) {
    *error = path + ": truncated (a SysGenID stand-in holds a 4-byte counter)";
    close(fd);
    return false;
  }
  opened->fd = fd;
  opened->flags = access | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;  // the re-open's (no O_NOFOLLOW:
                                                               // the path may be a link)
  return true;
}

// (5) at open: the generation `value` the device shows now. Returns false, with the
// descriptor closed and *error set, if it is saturated.
bool refuse_if_saturated(const std::string& path, const Opened& opened, uint32_t value,
                         std::string* error) {
  if (value != kSysgenidSaturated || !g_saturation_check.load()) return true;
  *error = path + ": " + kSaturatedReason;
  close(opened.fd);
  return false;
}

// Syscall mode's one look at the device's page (5); `fallback` if it cannot be mapped or
// read (the SysGenID device always can: then only still_valid() watches for saturation).
// The word is copied with process_vm_readv() on this process, which answers EFAULT for a
// page with nothing behind it where a load would raise SIGBUS: a character device at
// the path that maps but does not back its page (seen with the fuzzer's fake device)
// cannot kill the process. Where a seccomp policy refuses the call (EPERM, ENOSYS), the
// plain load is taken, as before.
uint32_t peek_page(int fd, uint32_t fallback) {
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) return fallback;
  uint32_t value = fallback;
  struct iovec local = {&value, sizeof value};
  struct iovec remote = {page, sizeof value};
  const ssize_t copied = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (copied != static_cast<ssize_t>(sizeof value)) {
    value = copied < 0 && (errno == EPERM || errno == ENOSYS)
                ? __atomic_load_n(static_cast<const uint32_t*>(page), __ATOMIC_ACQUIRE)
                : fallback;
  }
  munmap(page, 4096);
  return value;
}

// Makes `opened` the process's descriptor.
void install(const std::string& path, const Opened& opened) {
  g_path = path;
  g_open_flags = opened.flags;
  g_identity = opened.st;
  g_fd_is_file = S_ISREG(opened.st.st_mode);
  g_writable = (opened.flags & O_ACCMODE) == O_RDWR;
  g_owner.store(getpid());
  g_page.store(nullptr);
  g_saturated.store(false);
  g_state->busy.store(0);
  g_state->acknowledged.store(next_open_token());
  g_state->live.store(1);
  g_fd.store(opened.fd, std::memory_order_release);
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
  const auto* counter = static_cast<const uint32_t*>(page);
  if (!refuse_if_saturated(path, opened, __atomic_load_n(counter, __ATOMIC_ACQUIRE),
                           &result.error)) {
    munmap(page, 4096);
    return result;
  }
  install(path, opened);
  g_page.store(counter);
  Reader reader;
  reader.word = static_cast<const uint64_t*>(page);  // the u32 and its 4 neighbours
  return opened_source(SourceKind::kSysgenidMmap, path, reader, &acknowledge_page_value,
                       &still_valid, &invalid_reason);
}

OpenResult open_sysgenid_syscall(const std::string& path) {
  OpenResult result;
  Opened opened;
  if (!open_device(path, &opened, &result.error)) return result;
  uint32_t value;
  const bool is_file = S_ISREG(opened.st.st_mode);
  const ssize_t n =
      is_file ? pread(opened.fd, &value, sizeof value, 0) : read(opened.fd, &value, sizeof value);
  if (n != sizeof value && !(n < 0 && errno == EAGAIN && !is_file)) {
    result.error = n < 0 ? describe(path, "read") : path + ": read: short read";
    close(opened.fd);
    return result;
  }
  const uint32_t now = is_file ? value : peek_page(opened.fd, n == sizeof value ? value : 0);
  if (!refuse_if_saturated(path, opened, now, &result.error)) return result;
  install(path, opened);
  Reader reader;
  reader.call = is_file ? &read_file : &read_device;
  return opened_source(SourceKind::kSysgenidSyscall, path, reader, &acknowledge_read_value,
                       &still_valid, &invalid_reason);
}

std::string sysgenid_invalid_reason() { return g_saturated.load() ? kSaturatedReason : ""; }

#ifdef SNAPSAFE_TESTING  // //genid:genid_testing only
int sysgenid_descriptor_for_testing() { return g_fd.load(); }
void sysgenid_accept_regular_file_for_testing(bool accept) { g_accept_regular_file = accept; }
void sysgenid_trust_check_for_testing(bool enabled) { g_trust_check = enabled; }
void sysgenid_saturation_check_for_testing(bool enabled) { g_saturation_check = enabled; }
#endif

}  // namespace snapsafe::genid
