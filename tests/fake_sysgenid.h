// File: tests/fake_sysgenid.h
//
// A fake /dev/sysgenid (UAPI: shared/SYSGENID.md) for tests, without a kernel module.
//
// The library opens a fake device node: a symlink to /dev/null, so its descriptor is a real
// character device and everything around it is real (fstat, close-on-exec, dup3, descriptor
// numbers, fork, pthread cancellation). This header *defines* open, openat, read, write,
// mmap, ioctl, close, dup2 and dup3 for the whole test binary (they take precedence over
// libc's, also for calls from the library's shared objects): on a descriptor of the fake
// they act as the device does, every other descriptor is forwarded to the kernel with
// syscall(2). A descriptor is the fake's when it was opened by the node's path (open), or
// by openat() of "null" in /dev while a node exists: genid/file_trust.h's open_trusted()
// follows the node's link and opens its target that way (never with O_PATH).
//
// Modelled per open file description, as the kernel keeps it. The state lives in MAP_SHARED
// memory, so a fork child that keeps an inherited descriptor shares its description with the
// parent, as with the real device; the descriptor table itself is per process (copied by fork).
//   open   a new description; its copy := the current generation
//   read   fewer than 4 bytes: EINVAL; copy outdated: the 4-byte generation, kept until
//          acknowledged; else EAGAIN with O_NONBLOCK (a blocking read waits for a bump)
//   write  not open for writing: EBADF; not 4 bytes: EINVAL; a value that is not the current
//          generation: EINVAL; else copy := value
//   mmap   one page, offset 0, MAP_SHARED, PROT_READ; PROT_WRITE: EPERM. Its first u32 is the
//          generation (a memfd page the fake writes)
//   ioctl  every one counted (the library must issue none: it never enables watcher
//          tracking); modelled as kernel_shim/sysgenid.c does them (the tool issues them):
//          SET_WATCHER_TRACKING; WAIT_WATCHERS: EINTR if the caller is outdated on entry or
//          becomes so, 0 once no tracked description is outdated, ETIMEDOUT; TRIGGER:
//          max(current + 1, min), EOVERFLOW at U32_MAX, EINVAL above it; anything else
//          ENOTTY. Tracking is per description and is not dropped at close (tests untrack).
// The fake's read and write also call glibc's real read()/write() for 0 bytes on the
// underlying /dev/null descriptor: like the device's, they are real cancellation points.
// Hooks let a test stop a thread inside read() or write() at an exact point, inject
// failures (mmap, read), or answer reads itself (a fuzzer scripting the device).
//
// Limits: a descriptor closed behind the fake's back (close_range, a raw syscall) is noticed
// only because every call re-checks that the number still is /dev/null. Include this header
// in exactly ONE translation unit of a test binary.
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace snapsafe::testing::fake_sysgenid {

inline constexpr int kMaxDescriptors = 4096;
inline constexpr int kMaxDescriptions = 1024;

// The fake "kernel": shared by every process forked from the test.
struct Kernel {
  std::atomic<uint32_t> descriptions;            // open file descriptions made so far
  std::atomic<uint32_t> copy[kMaxDescriptions];  // each description's acknowledged copy
  std::atomic<uint32_t> reads_value, reads_eagain, reads_error;
  std::atomic<uint32_t> writes_accepted, writes_rejected;
  std::atomic<uint32_t> ioctls;
  std::atomic<uint32_t> wait_calls, wait_eintr;  // SYSGENID_WAIT_WATCHERS
  std::atomic<bool> tracked[kMaxDescriptions];   // SYSGENID_SET_WATCHER_TRACKING
};

// Test hooks, per process. Each is called on a fake descriptor only.
struct Hooks {
  std::atomic<void (*)(int fd)> before_read{nullptr};
  std::atomic<void (*)(int fd, uint32_t value)> before_write{nullptr};  // before the check
  std::atomic<void (*)(int fd, uint32_t value)> after_accept{nullptr};  // copy updated
  std::atomic<int> fail_next_mmap{0};  // an errno for the next mmap of a fake descriptor
  std::atomic<int> fail_next_read{0};  // an errno for the next read of a fake descriptor
  // Answers a read of a fake descriptor in place of the model when it returns true: the
  // return value in *result (-1 with errno set, or the number of bytes put in buf). The
  // fuzzer tests/fuzz/sysgenid_read_fuzz.cc scripts what read() returns with it.
  std::atomic<bool (*)(int fd, int description, void* buf, size_t size, ssize_t* result)>
      answer_read{nullptr};
};

struct State {
  bool installed = false;
  char node[512] = {};  // the fake device node (a symlink to /dev/null)
  dev_t null_rdev = 0;  // what a fake descriptor is underneath
  Kernel* kernel = nullptr;
  int page_fd = -1;                                  // the memfd holding the generation page
  std::atomic<uint32_t>* generation = nullptr;       // its first u32, writable here
  std::atomic<int32_t> table[kMaxDescriptors] = {};  // fd -> description + 1, 0: not fake
  ssize_t (*real_read)(int, void*, size_t) = nullptr;
  ssize_t (*real_write)(int, const void*, size_t) = nullptr;
  Hooks hooks;
};

inline State& state() {
  static State* s = new State;  // never destroyed: interposed calls may come during exit
  return *s;
}

inline void die(const char* what) {
  const char prefix[] = "fake_sysgenid: ";
  syscall(SYS_write, 2, prefix, sizeof prefix - 1);
  syscall(SYS_write, 2, what, strlen(what));
  syscall(SYS_write, 2, "\n", 1);
  abort();
}

// One-time set-up: the shared "kernel", the generation page, glibc's real read/write.
inline void install() {
  State& s = state();
  if (s.installed) return;
  void* shared =
      mmap(nullptr, sizeof(Kernel), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) die("mmap kernel state");
  s.kernel = new (shared) Kernel();
  const int memfd = static_cast<int>(syscall(SYS_memfd_create, "fake-sysgenid", 0));
  if (memfd < 0 || ftruncate(memfd, 4096) != 0) die("memfd");
  // Far from the low numbers that the tests watch being reused.
  s.page_fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3000);
  syscall(SYS_close, memfd);
  if (s.page_fd < 0) die("dup memfd");
  void* page = reinterpret_cast<void*>(
      syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s.page_fd, 0));
  if (page == MAP_FAILED) die("mmap page");
  s.generation = static_cast<std::atomic<uint32_t>*>(page);
  struct stat st;
  if (stat("/dev/null", &st) != 0 || !S_ISCHR(st.st_mode)) die("/dev/null is not a device");
  s.null_rdev = st.st_rdev;
  s.real_read = reinterpret_cast<ssize_t (*)(int, void*, size_t)>(dlsym(RTLD_NEXT, "read"));
  s.real_write = reinterpret_cast<ssize_t (*)(int, const void*, size_t)>(dlsym(RTLD_NEXT, "write"));
  if (s.real_read == nullptr || s.real_write == nullptr) die("dlsym read/write");
  s.installed = true;
}

// A new fake device node at `path` (a symlink to /dev/null), with generation `generation`.
// Descriptors opened on earlier nodes stay fake.
inline void create_node(const std::string& path, uint32_t generation) {
  install();
  State& s = state();
  if (path.size() >= sizeof s.node) die("node path too long");
  unlink(path.c_str());
  if (symlink("/dev/null", path.c_str()) != 0) die("symlink");
  std::memcpy(s.node, path.c_str(), path.size() + 1);
  s.generation->store(generation);
}

inline uint32_t generation() { return state().generation->load(); }
inline void set_generation(uint32_t g) { state().generation->store(g); }
inline uint32_t bump() { return state().generation->fetch_add(1) + 1; }
inline Kernel& kernel() { return *state().kernel; }
inline Hooks& hooks() { return state().hooks; }

// The fake description behind `fd`, or -1 if `fd` is not a fake descriptor (any more).
inline int description(int fd) {
  State& s = state();
  if (!s.installed || fd < 0 || fd >= kMaxDescriptors) return -1;
  const int32_t entry = s.table[fd].load();
  if (entry == 0) return -1;
  struct stat st;  // closed behind our back and reused? Then it is no fake any more.
  if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != s.null_rdev) {
    s.table[fd].store(0);
    return -1;
  }
  return entry - 1;
}

inline uint32_t copy_of(int description) { return kernel().copy[description].load(); }

// ---- the device's file operations ----

inline int fake_open_description(int fd) {
  State& s = state();
  const uint32_t d = s.kernel->descriptions.fetch_add(1);
  if (d >= kMaxDescriptions) die("too many descriptions");
  s.kernel->copy[d].store(s.generation->load());
  s.table[fd].store(static_cast<int32_t>(d) + 1);
  return fd;
}

inline ssize_t fake_read(int fd, int d, void* buf, size_t size) {
  State& s = state();
  if (auto hook = s.hooks.before_read.load()) hook(fd);
  char none;
  s.real_read(fd, &none, 0);  // a real cancellation point, as the device's read() is
  if (const int error = s.hooks.fail_next_read.exchange(0)) {
    s.kernel->reads_error.fetch_add(1);
    errno = error;
    return -1;
  }
  if (auto hook = s.hooks.answer_read.load()) {
    ssize_t result = -1;
    if (hook(fd, d, buf, size, &result)) return result;
  }
  if (size < 4) {
    s.kernel->reads_error.fetch_add(1);
    errno = EINVAL;
    return -1;
  }
  for (;;) {
    const uint32_t current = s.generation->load();
    if (s.kernel->copy[d].load() != current) {
      std::memcpy(buf, &current, 4);
      s.kernel->reads_value.fetch_add(1);
      return 4;
    }
    if (fcntl(fd, F_GETFL) & O_NONBLOCK) {
      s.kernel->reads_eagain.fetch_add(1);
      errno = EAGAIN;
      return -1;
    }
    usleep(200);  // a blocking read waits for the next bump (and is a cancellation point)
  }
}

inline ssize_t fake_write(int fd, int d, const void* buf, size_t size) {
  State& s = state();
  if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
    errno = EBADF;
    return -1;
  }
  if (size != 4) {
    s.kernel->writes_rejected.fetch_add(1);
    errno = EINVAL;
    return -1;
  }
  uint32_t value;
  std::memcpy(&value, buf, 4);
  if (auto hook = s.hooks.before_write.load()) hook(fd, value);
  s.real_write(fd, buf, 0);  // a real cancellation point, as the device's write() is
  // The driver checks and updates under its lock; a compare-and-swap on the current value
  // is the same: the copy only ever becomes a value that was current at that moment.
  uint32_t current = s.generation->load();
  if (value != current) {
    s.kernel->writes_rejected.fetch_add(1);
    errno = EINVAL;
    return -1;
  }
  s.kernel->copy[d].store(value);
  s.kernel->writes_accepted.fetch_add(1);
  if (auto hook = s.hooks.after_accept.load()) hook(fd, value);
  return 4;
}

inline void* fake_mmap(int d, size_t length, int prot, int flags, off_t offset) {
  (void)d;
  State& s = state();
  if (const int error = s.hooks.fail_next_mmap.exchange(0)) {
    errno = error;
    return MAP_FAILED;
  }
  if (prot & PROT_WRITE) {
    errno = EPERM;
    return MAP_FAILED;
  }
  if ((flags & MAP_TYPE) != MAP_SHARED || offset != 0 || length > 4096) {
    errno = EINVAL;
    return MAP_FAILED;
  }
  return reinterpret_cast<void*>(
      syscall(SYS_mmap, nullptr, 4096, PROT_READ, MAP_SHARED, state().page_fd, 0));
}

// ---- the device's ioctls (numbers from kernel_shim/include/uapi/linux/sysgenid.h) ----

inline constexpr unsigned long kSetWatcherTracking = 0xE401;  // _IO(0xE4, 1)
inline constexpr unsigned long kWaitWatchers = 0xE402;        // _IO(0xE4, 2)
inline constexpr unsigned long kTriggerGenUpdate = 0xE403;    // _IO(0xE4, 3)

inline bool outdated(int d) { return state().kernel->copy[d].load() != state().generation->load(); }

inline bool some_tracked_watcher_outdated() {
  Kernel& k = *state().kernel;
  const uint32_t made = std::min<uint32_t>(k.descriptions.load(), kMaxDescriptions);
  for (uint32_t d = 0; d < made; ++d) {
    if (k.tracked[d].load() && outdated(static_cast<int>(d))) return true;
  }
  return false;
}

inline int fake_wait_watchers(int d, unsigned long timeout_ms) {
  Kernel& k = *state().kernel;
  k.wait_calls.fetch_add(1);
  const auto fail = [&k](int error) {
    if (error == EINTR) k.wait_eintr.fetch_add(1);
    errno = error;
    return -1;
  };
  if (outdated(d)) return fail(EINTR);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (outdated(d)) return fail(EINTR);
    if (!some_tracked_watcher_outdated()) return 0;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long elapsed_ms =
        (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (timeout_ms != 0 && elapsed_ms >= static_cast<long>(timeout_ms)) return fail(ETIMEDOUT);
    usleep(200);
  }
}

inline int fake_trigger(unsigned long min) {
  State& s = state();
  if (min > 0xffffffffu) {
    errno = EINVAL;
    return -1;
  }
  uint32_t current = s.generation->load();
  for (;;) {
    if (current == 0xffffffffu) {
      errno = EOVERFLOW;
      return -1;
    }
    const uint32_t next = std::max<uint32_t>(current + 1, static_cast<uint32_t>(min));
    if (s.generation->compare_exchange_weak(current, next)) return 0;
  }
}

inline int fake_ioctl(int d, unsigned long request, unsigned long arg) {
  kernel().ioctls.fetch_add(1);
  switch (request) {
    case kSetWatcherTracking: kernel().tracked[d].store(arg != 0); return 0;
    case kWaitWatchers: return fake_wait_watchers(d, arg);
    case kTriggerGenUpdate: return fake_trigger(arg);
    default: errno = ENOTTY; return -1;
  }
}

// Is (dirfd, name) the target of the node's link, /dev/null? (open_trusted's last openat.)
inline bool is_node_target(int dirfd, const char* name) {
  if (std::strcmp(name, "null") != 0 || dirfd < 0) return false;
  struct stat dir, dev;
  return syscall(SYS_fstat, dirfd, &dir) == 0 && stat("/dev", &dev) == 0 &&
         dir.st_dev == dev.st_dev && dir.st_ino == dev.st_ino;
}

inline int forward_openat(int dirfd, const char* path, int flags, mode_t mode) {
  State& s = state();
  const int fd = static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode));
  if (fd < 0) return fd;
  if (fd < kMaxDescriptors) s.table[fd].store(0);
  const bool by_path =
      (dirfd == AT_FDCWD || path[0] == '/') && s.node[0] != '\0' && std::strcmp(path, s.node) == 0;
  if (s.installed && s.node[0] != '\0' && fd < kMaxDescriptors && !(flags & O_PATH) &&
      (by_path || is_node_target(dirfd, path))) {
    return fake_open_description(fd);
  }
  return fd;
}

inline int forward_open(const char* path, int flags, mode_t mode) {
  const int fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
  if (fd < 0) return fd;
  State& s = state();
  if (fd < kMaxDescriptors) s.table[fd].store(0);
  if (s.installed && s.node[0] != '\0' && std::strcmp(path, s.node) == 0 && fd < kMaxDescriptors) {
    return fake_open_description(fd);
  }
  return fd;
}

inline mode_t open_mode(int flags, va_list args) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(args, mode_t) : 0;
}

}  // namespace snapsafe::testing::fake_sysgenid

// ---- the interposed libc entry points ----
extern "C" {

int open(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = snapsafe::testing::fake_sysgenid::open_mode(flags, args);
  va_end(args);
  return snapsafe::testing::fake_sysgenid::forward_open(path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = snapsafe::testing::fake_sysgenid::open_mode(flags, args);
  va_end(args);
  return snapsafe::testing::fake_sysgenid::forward_open(path, flags, mode);
}
int __open_2(const char* path, int flags) {
  return snapsafe::testing::fake_sysgenid::forward_open(path, flags, 0);
}
int __open64_2(const char* path, int flags) {
  return snapsafe::testing::fake_sysgenid::forward_open(path, flags, 0);
}
int openat(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = snapsafe::testing::fake_sysgenid::open_mode(flags, args);
  va_end(args);
  return snapsafe::testing::fake_sysgenid::forward_openat(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = snapsafe::testing::fake_sysgenid::open_mode(flags, args);
  va_end(args);
  return snapsafe::testing::fake_sysgenid::forward_openat(dirfd, path, flags, mode);
}
int __openat_2(int dirfd, const char* path, int flags) {
  return snapsafe::testing::fake_sysgenid::forward_openat(dirfd, path, flags, 0);
}
int __openat64_2(int dirfd, const char* path, int flags) {
  return snapsafe::testing::fake_sysgenid::forward_openat(dirfd, path, flags, 0);
}

ssize_t read(int fd, void* buf, size_t size) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  const int d = fake::description(fd);
  if (d >= 0) return fake::fake_read(fd, d, buf, size);
  return syscall(SYS_read, fd, buf, size);
}
ssize_t __read_chk(int fd, void* buf, size_t size, size_t buflen) {
  if (size > buflen) snapsafe::testing::fake_sysgenid::die("__read_chk: buffer overflow");
  return read(fd, buf, size);
}

ssize_t write(int fd, const void* buf, size_t size) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  const int d = fake::description(fd);
  if (d >= 0) return fake::fake_write(fd, d, buf, size);
  return syscall(SYS_write, fd, buf, size);
}

void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  const int d = (flags & MAP_ANONYMOUS) ? -1 : fake::description(fd);
  if (d >= 0) return fake::fake_mmap(d, length, prot, flags, offset);
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, length, prot, flags, fd, offset));
}
void* mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  return mmap(addr, length, prot, flags, fd, offset);
}

int ioctl(int fd, unsigned long request, ...) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  va_list args;
  va_start(args, request);
  void* arg = va_arg(args, void*);
  va_end(args);
  if (const int d = fake::description(fd); d >= 0) {
    return fake::fake_ioctl(d, request, reinterpret_cast<unsigned long>(arg));
  }
  return static_cast<int>(syscall(SYS_ioctl, fd, request, arg));
}

int close(int fd) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  if (fd >= 0 && fd < fake::kMaxDescriptors) fake::state().table[fd].store(0);
  return static_cast<int>(syscall(SYS_close, fd));
}

int dup3(int oldfd, int newfd, int flags) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  const int d = fake::description(oldfd);
  const int result = static_cast<int>(syscall(SYS_dup3, oldfd, newfd, flags));
  if (result >= 0 && result < fake::kMaxDescriptors) fake::state().table[result].store(d + 1);
  return result;
}

int dup2(int oldfd, int newfd) {
  namespace fake = snapsafe::testing::fake_sysgenid;
  if (oldfd == newfd) return fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
  const int d = fake::description(oldfd);
  const int result = static_cast<int>(syscall(SYS_dup2, oldfd, newfd));
  if (result >= 0 && result < fake::kMaxDescriptors) fake::state().table[result].store(d + 1);
  return result;
}

}  // extern "C"
