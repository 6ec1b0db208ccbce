// File: tests/vm/uapi_test.cc
//
// The SysGenID UAPI (kernel_shim/include/uapi/linux/sysgenid.h, /work/shared/SYSGENID.md)
// tested against the real module, inside the QEMU guest of tests/vm/run. Every file
// operation and ioctl, each with its bad input and the documented error; watcher tracking
// and the outdated-watcher count (also under concurrent churn); wake-ups of a blocked
// reader, poller and waiter.
//
// Needs root (it drops capabilities itself in children) and a freshly loaded module
// nobody else uses: it counts on being the only one who bumps the generation. The last
// test drives the counter to its maximum, so the module must be reloaded afterwards.
//
// Output: one line per test, "vm-uapi: ok NAME" or "vm-uapi: FAIL NAME: why", then
// "vm-uapi: passed=N failed=M". Exit status 0 only when nothing failed.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sysgenid.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* kDevice = "/dev/sysgenid";
constexpr long kPage = 4096;

int g_passed = 0;
int g_failed = 0;
bool g_test_ok = true;
const char* g_test_name = "";

void fail(int line, const std::string& what) {
  if (g_test_ok) printf("vm-uapi: FAIL %s: ", g_test_name);
  else printf("vm-uapi:   also: ");
  printf("line %d: %s\n", line, what.c_str());
  fflush(stdout);
  g_test_ok = false;
}

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) fail(__LINE__, std::string(#cond) + " (errno " + strerror(errno) + ")"); \
  } while (0)

// `call` (a syscall returning -1 on error) failed with exactly `expected`.
#define CHECK_ERRNO(call, expected)                                                        \
  do {                                                                                     \
    errno = 0;                                                                             \
    const long rc_ = static_cast<long>(call);                                              \
    const int err_ = errno;                                                                \
    if (rc_ != -1 || err_ != (expected)) {                                                 \
      fail(__LINE__, std::string(#call) + " returned " + std::to_string(rc_) + " errno " + \
                         strerrorname(err_) + ", want " + strerrorname(expected));         \
    }                                                                                      \
  } while (0)

const char* strerrorname(int e) {
  switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINTR: return "EINTR";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOTTY: return "ENOTTY";
    case EFAULT: return "EFAULT";
    case EOVERFLOW: return "EOVERFLOW";
    case ERANGE: return "ERANGE";
    case EBADF: return "EBADF";
    case ENODEV: return "ENODEV";
    default: return strerror(e);
  }
}

void run(const char* name, const std::function<void()>& test) {
  g_test_name = name;
  g_test_ok = true;
  test();
  if (g_test_ok) {
    ++g_passed;
    printf("vm-uapi: ok %s\n", name);
  } else {
    ++g_failed;
  }
  fflush(stdout);
}

// An owned descriptor on the device.
struct Dev {
  int fd;
  explicit Dev(int flags = O_RDWR) : fd(open(kDevice, flags | O_CLOEXEC)) {
    if (fd < 0) fail(__LINE__, std::string("open: ") + strerror(errno));
  }
  ~Dev() {
    if (fd >= 0) close(fd);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
};

int g_ctl = -1;                             // a descriptor for TRIGGER, never acknowledged
const volatile uint32_t* g_page = nullptr;  // the generation page, mapped once

uint32_t generation() { return g_page[0]; }

long trigger(unsigned long min_gen) { return ioctl(g_ctl, SYSGENID_TRIGGER_GEN_UPDATE, min_gen); }

// Bumps by one and returns the new generation.
uint32_t bump() {
  const uint32_t before = generation();
  if (trigger(0) != 0) fail(__LINE__, std::string("trigger: ") + strerror(errno));
  if (generation() != before + 1) fail(__LINE__, "trigger did not add one");
  return generation();
}

long ack(int fd, uint32_t gen) { return write(fd, &gen, sizeof gen); }
long ack_current(int fd) { return ack(fd, generation()); }
long track(int fd, bool on) { return ioctl(fd, SYSGENID_SET_WATCHER_TRACKING, on ? 1UL : 0UL); }
long wait_watchers(int fd, unsigned long ms) { return ioctl(fd, SYSGENID_WAIT_WATCHERS, ms); }

// Reads without blocking (whatever the descriptor's flags): the value, or -errno.
int64_t read_now(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 0) == 0) return -EAGAIN;
  uint32_t value;
  const ssize_t n = read(fd, &value, sizeof value);
  if (n == sizeof value) return value;
  return n < 0 ? -errno : -EIO;
}

double now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void sleep_ms(int ms) { usleep(ms * 1000); }

// Runs the blocking `call` while another thread interrupts this one with SIGUSR1 (no
// SA_RESTART): after ~200 ms, then every 50 ms until `call` returned. A single signal could
// arrive before the call blocks (the vCPU's host thread descheduled) and leave it blocked
// for good. The interrupter is joined before this returns, so no signal outlives it.
// Returns `call`'s result with its errno.
long interrupted(const std::function<long()>& call) {
  const pthread_t target = pthread_self();
  std::atomic<bool> returned{false};
  std::thread interrupter([&] {
    sleep_ms(200);
    while (!returned.load()) {
      pthread_kill(target, SIGUSR1);
      sleep_ms(50);
    }
  });
  const long rc = call();
  const int error = errno;
  returned = true;
  interrupter.join();
  errno = error;
  return rc;
}

// Runs `child` in a forked process; returns its exit status (or -1 if it died).
int in_child(const std::function<int()>& child) {
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Keeps only capability `cap` (-1: none) while staying uid 0.
bool keep_only_capability(int cap) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (cap >= 0) {
    data[cap / 32].effective = 1u << (cap % 32);
    data[cap / 32].permitted = 1u << (cap % 32);
  }
  return syscall(SYS_capset, &header, data) == 0;
}

void on_sigusr1(int) {}

// An address no mapping covers (hidden from the compiler's buffer-size checks).
volatile uintptr_t g_bad_address = 8;
void* bad_address() { return reinterpret_cast<void*>(g_bad_address); }

// ---------------------------------------------------------------------------------------

void test_device_node() {
  struct stat st;
  CHECK(stat(kDevice, &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK((st.st_mode & 0777) == 0666);
}

void test_open_remembers_generation() {
  const uint32_t gen = bump();
  Dev d;
  CHECK(read_now(d.fd) == -EAGAIN);  // its copy is the current generation
  CHECK(ack(d.fd, gen) == 4);        // so acknowledging it needs no read first
}

void test_read() {
  Dev d(O_RDWR | O_NONBLOCK);
  uint32_t value = 0;
  CHECK_ERRNO(read(d.fd, &value, sizeof value), EAGAIN);
  const uint32_t gen = bump();
  uint64_t big = ~0ull;
  CHECK(read(d.fd, &big, sizeof big) == 4);  // a longer buffer: 4 bytes
  CHECK(static_cast<uint32_t>(big) == gen);
  CHECK((big >> 32) == 0xFFFFFFFFu);                             // the rest untouched
  CHECK(read(d.fd, &value, sizeof value) == 4 && value == gen);  // until acknowledged
  CHECK(read(d.fd, &value, sizeof value) == 4 && value == gen);
  CHECK(ack(d.fd, gen) == 4);
  CHECK_ERRNO(read(d.fd, &value, sizeof value), EAGAIN);
}

void test_read_bad_input() {
  Dev d(O_RDWR | O_NONBLOCK);
  bump();
  char buf[4];
  CHECK_ERRNO(read(d.fd, buf, 3), EINVAL);
  CHECK_ERRNO(read(d.fd, buf, 1), EINVAL);
  CHECK_ERRNO(read(d.fd, buf, 0), EINVAL);
  CHECK_ERRNO(read(d.fd, bad_address(), 4), EFAULT);
  CHECK_ERRNO(pread(d.fd, buf, 4, 0), ESPIPE);  // a stream: no positions
}

void test_read_nonblock_toggle() {
  Dev d;  // blocking
  CHECK(fcntl(d.fd, F_SETFL, O_NONBLOCK) == 0);
  uint32_t value;
  CHECK_ERRNO(read(d.fd, &value, sizeof value), EAGAIN);
}

void test_read_signal() {
  Dev d;
  uint32_t value;
  const double start = now_ms();
  CHECK_ERRNO(interrupted([&] { return read(d.fd, &value, sizeof value); }),
              EINTR);  // handler without SA_RESTART
  CHECK(now_ms() - start >= 150);
}

void test_write() {
  Dev d;
  const uint32_t old = generation();
  const uint32_t gen = bump();
  uint64_t eight = gen;
  CHECK_ERRNO(write(d.fd, &gen, 3), EINVAL);
  CHECK_ERRNO(write(d.fd, &gen, 0), EINVAL);
  CHECK_ERRNO(write(d.fd, &eight, 8), EINVAL);
  CHECK_ERRNO(ack(d.fd, old), EINVAL);  // not the current generation
  CHECK_ERRNO(ack(d.fd, gen + 1), EINVAL);
  CHECK_ERRNO(write(d.fd, bad_address(), 4), EFAULT);
  CHECK(read_now(d.fd) == gen);  // none of those acknowledged
  CHECK(ack(d.fd, gen) == 4);
  CHECK(read_now(d.fd) == -EAGAIN);
  CHECK(ack(d.fd, gen) == 4);  // acknowledging twice is fine
  Dev ro(O_RDONLY);
  CHECK_ERRNO(ack(ro.fd, gen), EBADF);  // no acknowledgement through a read-only fd
}

void test_acknowledgement_is_per_descriptor() {
  Dev a, b;
  const uint32_t gen = bump();
  CHECK(ack(a.fd, gen) == 4);
  CHECK(read_now(a.fd) == -EAGAIN);
  CHECK(read_now(b.fd) == gen);
}

void test_poll() {
  Dev d;
  struct pollfd p = {d.fd, POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);
  const uint32_t gen = bump();
  p.revents = 0;
  CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
  CHECK(!(p.revents & (POLLERR | POLLHUP)));
  CHECK(ack(d.fd, gen) == 4);
  p.revents = 0;
  CHECK(poll(&p, 1, 0) == 0);
}

void test_epoll() {
  Dev d;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, d.fd, &ev) == 0);
  struct epoll_event got[2];
  CHECK(epoll_wait(ep, got, 2, 0) == 0);
  const uint32_t gen = bump();
  CHECK(epoll_wait(ep, got, 2, 0) == 1 && (got[0].events & EPOLLIN));
  CHECK(ack(d.fd, gen) == 4);
  CHECK(epoll_wait(ep, got, 2, 0) == 0);
  close(ep);
}

void test_mmap_page() {
  Dev d(O_RDONLY);
  void* map = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, d.fd, 0);
  CHECK(map != MAP_FAILED);
  if (map == MAP_FAILED) return;
  const auto* word = static_cast<const volatile uint32_t*>(map);
  const auto* bytes = static_cast<const volatile uint8_t*>(map);
  CHECK(word[0] == generation());
  bool rest_zero = true;
  for (long i = 4; i < kPage; ++i) rest_zero = rest_zero && bytes[i] == 0;
  CHECK(rest_zero);
  const uint32_t gen = bump();
  CHECK(word[0] == gen);                                      // visible at once, no syscall
  CHECK(*static_cast<const volatile uint64_t*>(map) == gen);  // a 64-bit load sees the u32
  CHECK(madvise(map, kPage, MADV_DONTNEED) == 0);             // drop the page table entry...
  CHECK(word[0] == gen);                                      // ...and it faults back in
  munmap(map, kPage);
}

void test_mmap_refusals() {
  Dev rw(O_RDWR), ro(O_RDONLY);
  CHECK_ERRNO(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, rw.fd, 0) == MAP_FAILED ? -1 : 0,
      EPERM);  // a writable mapping: the driver says EPERM
  CHECK_ERRNO(mmap(nullptr, kPage, PROT_WRITE, MAP_SHARED, rw.fd, 0) == MAP_FAILED ? -1 : 0, EPERM);
  CHECK_ERRNO(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro.fd, 0) == MAP_FAILED ? -1 : 0,
      EACCES);  // read-only fd: the VFS refuses first
  CHECK_ERRNO(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, rw.fd, 0) == MAP_FAILED ? -1 : 0,
              EINVAL);  // MAP_SHARED only
  CHECK_ERRNO(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, rw.fd, kPage) == MAP_FAILED ? -1 : 0,
              EINVAL);  // offset 0 only
  CHECK_ERRNO(mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, rw.fd, 0) == MAP_FAILED ? -1 : 0,
              EINVAL);  // one page only
}

void test_mprotect_refused() {
  for (int flags : {O_RDWR, O_RDONLY}) {
    Dev d(flags);
    void* map = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, d.fd, 0);
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED) continue;
    CHECK_ERRNO(mprotect(map, kPage, PROT_READ | PROT_WRITE), EACCES);
    CHECK(static_cast<const volatile uint32_t*>(map)[0] == generation());  // still mapped
    CHECK(mremap(map, kPage, 2 * kPage, 0) == MAP_FAILED);                 // cannot grow either
    munmap(map, kPage);
  }
}

void test_mmap_across_fork() {
  Dev d;
  void* map = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, d.fd, 0);
  CHECK(map != MAP_FAILED);
  if (map == MAP_FAILED) return;
  int go[2];
  CHECK(pipe(go) == 0);
  const uint32_t expected = generation() + 1;
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(go[1]);
    if (read(go[0], &c, 1) != 1) _exit(2);
    _exit(static_cast<const volatile uint32_t*>(map)[0] == expected ? 0 : 1);
  }
  close(go[0]);
  bump();
  CHECK(write(go[1], "x", 1) == 1);
  close(go[1]);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  munmap(map, kPage);
}

void test_unknown_ioctl() {
  Dev d;
  CHECK_ERRNO(ioctl(d.fd, _IO(SYSGENID_IOCTL, 0), 0), ENOTTY);
  CHECK_ERRNO(ioctl(d.fd, _IO(SYSGENID_IOCTL, 4), 0), ENOTTY);
  CHECK_ERRNO(ioctl(d.fd, _IOW(SYSGENID_IOCTL, 1, int), 0), ENOTTY);  // same nr, other encoding
  CHECK_ERRNO(ioctl(d.fd, _IO(0xE5, 1), 0), ENOTTY);
  struct termios t;
  CHECK_ERRNO(ioctl(d.fd, TCGETS, &t), ENOTTY);
}

void test_trigger_minimum() {
  const uint32_t g = generation();
  CHECK(trigger(g + 3) == 0 && generation() == g + 3);  // 5, arg 8 -> 8
  CHECK(trigger(g + 3) == 0 && generation() == g + 4);  // 8, arg 8 -> 9
  CHECK(trigger(g) == 0 && generation() == g + 5);      // below current: +1
  CHECK(trigger(0) == 0 && generation() == g + 6);
  CHECK_ERRNO(trigger(1UL << 32), EINVAL);  // not a u32
  CHECK(generation() == g + 6);
}

void test_trigger_capabilities() {
  const uint32_t g = generation();
  // nobody: setuid away from root clears every capability.
  int rc = in_child([] {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) return 100;
    return trigger(0) == 0 ? 0 : errno;
  });
  CHECK(rc == EACCES);
  CHECK(generation() == g);
  rc = in_child([] {
    if (!keep_only_capability(-1)) return 100;  // uid 0 with no capability at all
    return trigger(0) == 0 ? 0 : errno;
  });
  CHECK(rc == EACCES);
  rc = in_child([] {
    if (!keep_only_capability(CAP_SYS_PTRACE)) return 100;  // an unrelated one
    return trigger(0) == 0 ? 0 : errno;
  });
  CHECK(rc == EACCES);
  CHECK(generation() == g);
  rc = in_child([] {
    if (!keep_only_capability(CAP_CHECKPOINT_RESTORE)) return 100;
    return trigger(0) == 0 ? 0 : errno;
  });
  CHECK(rc == 0);
  CHECK(generation() == g + 1);
  rc = in_child([] {
    if (!keep_only_capability(CAP_SYS_ADMIN)) return 100;
    return trigger(0) == 0 ? 0 : errno;
  });
  CHECK(rc == 0);
  CHECK(generation() == g + 2);
  // Tracking, waiting, reading and acknowledging need no capability.
  rc = in_child([] {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) return 100;
    Dev d;
    if (track(d.fd, true) != 0 || wait_watchers(d.fd, 50) != 0) return 101;
    if (ack_current(d.fd) != 4 || read_now(d.fd) != -EAGAIN) return 102;
    return 0;
  });
  CHECK(rc == 0);
}

void test_wait_nothing_outdated() {
  Dev w, t;
  CHECK(track(t.fd, true) == 0);
  const double start = now_ms();
  CHECK(wait_watchers(w.fd, 1000) == 0);
  CHECK(wait_watchers(w.fd, 0) == 0);     // no timeout, nothing to wait for
  CHECK(wait_watchers(t.fd, 1000) == 0);  // a tracked, current caller
  CHECK(now_ms() - start < 900);          // none waited its 1000 ms (TCG: slack)
}

void test_wait_times_out() {
  Dev t;
  CHECK(track(t.fd, true) == 0);
  bump();  // t is outdated and never acknowledges
  Dev w;
  const double start = now_ms();
  CHECK_ERRNO(wait_watchers(w.fd, 300), ETIMEDOUT);
  const double took = now_ms() - start;
  CHECK(took >= 290 && took < 3000);
}

void test_wait_caller_outdated() {
  Dev w;
  bump();
  const double start = now_ms();
  CHECK_ERRNO(wait_watchers(w.fd, 5000), EINTR);
  CHECK(now_ms() - start < 2500);  // not its 5000 ms timeout
  CHECK(ack_current(w.fd) == 4);
  CHECK(wait_watchers(w.fd, 1000) == 0);  // handled: the retry succeeds
}

void test_untracked_outdated_not_waited_for() {
  Dev u;  // outdated but not tracked
  bump();
  Dev w;
  CHECK(wait_watchers(w.fd, 200) == 0);
}

// A waiter blocked on tracked outdated watcher(s) is released by `release`.
void expect_release(const char* how, const std::function<void(Dev*)>& release) {
  auto t = std::make_unique<Dev>();
  CHECK(track(t->fd, true) == 0);
  bump();
  Dev w;
  std::atomic<long> result{1};
  std::atomic<int> error{0};
  std::thread waiter([&] {
    const long rc = wait_watchers(w.fd, 5000);
    error = errno;
    result = rc;
  });
  sleep_ms(200);
  CHECK(result.load() == 1);  // still waiting
  const double start = now_ms();
  release(t.get());
  waiter.join();
  if (result.load() != 0)
    fail(__LINE__, std::string(how) + ": wait returned " + strerrorname(error.load()));
  CHECK(now_ms() - start < 4000);  // released, not its 5000 ms timeout
}

void test_wait_released() {
  expect_release("ack", [](Dev* t) { CHECK(ack_current(t->fd) == 4); });
  expect_release("untrack", [](Dev* t) { CHECK(track(t->fd, false) == 0); });
  expect_release("close", [](Dev* t) {
    close(t->fd);
    t->fd = -1;
  });
}

void test_tracking_counts() {
  Dev a, b, u;
  CHECK(track(a.fd, true) == 0);
  CHECK(track(a.fd, true) == 0);  // idempotent: counted once
  CHECK(track(b.fd, true) == 0);
  const uint32_t gen = bump();
  Dev w;
  CHECK(ack(a.fd, gen) == 4);
  CHECK_ERRNO(wait_watchers(w.fd, 100), ETIMEDOUT);  // b still outdated
  CHECK(ack(b.fd, gen) == 4);
  CHECK(wait_watchers(w.fd, 100) == 0);
  bump();  // u outdated, untracked...
  CHECK(ack_current(a.fd) == 4 && ack_current(b.fd) == 4 && ack_current(w.fd) == 4);
  CHECK(wait_watchers(w.fd, 100) == 0);
  CHECK(track(u.fd, true) == 0);  // ...joins tracking while outdated: counted
  CHECK_ERRNO(wait_watchers(w.fd, 100), ETIMEDOUT);
  CHECK(ack_current(u.fd) == 4);
  CHECK(wait_watchers(w.fd, 100) == 0);
}

void test_wakeups_on_bump() {
  Dev t;
  CHECK(track(t.fd, true) == 0);
  bump();  // the waiter below has someone to wait for
  Dev r, p, w;
  struct Outcome {
    std::atomic<bool> done{false};
    long rc = 0;
    int error = 0;
    uint32_t value = 0;
    pthread_t thread{};
  } reader, poller, waiter;
  std::thread tr([&] {
    reader.thread = pthread_self();
    reader.rc = read(r.fd, &reader.value, sizeof reader.value);
    reader.error = errno;
    reader.done = true;
  });
  std::thread tp([&] {
    poller.thread = pthread_self();
    struct pollfd pfd = {p.fd, POLLIN, 0};
    poller.rc = poll(&pfd, 1, -1);
    poller.error = errno;
    poller.value = pfd.revents;
    poller.done = true;
  });
  std::thread tw([&] {
    waiter.thread = pthread_self();
    waiter.rc = wait_watchers(w.fd, 0);  // no timeout
    waiter.error = errno;
    waiter.done = true;
  });
  sleep_ms(300);
  CHECK(!reader.done && !poller.done && !waiter.done);  // all three blocked
  const uint32_t gen = bump();
  const double deadline = now_ms() + 5000;
  while (!(reader.done && poller.done && waiter.done) && now_ms() < deadline) sleep_ms(5);
  CHECK(reader.done && poller.done && waiter.done);
  for (Outcome* o : {&reader, &poller, &waiter}) {
    if (!o->done) pthread_kill(o->thread, SIGUSR1);  // unblock, so the test ends
  }
  tr.join();
  tp.join();
  tw.join();
  CHECK(reader.rc == 4 && reader.value == gen);
  CHECK(poller.rc == 1 && (poller.value & POLLIN));
  CHECK(waiter.rc == -1 && waiter.error == EINTR);  // a change while waiting
}

void test_wait_signal() {
  Dev t;
  CHECK(track(t.fd, true) == 0);
  bump();
  Dev w;
  CHECK_ERRNO(interrupted([&] { return static_cast<long>(wait_watchers(w.fd, 0)); }), EINTR);
}

// Concurrent bumps, acknowledgements and tracking changes: the outdated-watcher count
// must come out exact (one count too many and the waits below time out; one too few and
// a wait returns while someone is still outdated).
void test_accounting_under_churn() {
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<Dev>> fds;
  for (int i = 0; i < kThreads; ++i) {
    fds.push_back(std::make_unique<Dev>());
    CHECK(track(fds.back()->fd, true) == 0);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const int fd = fds[i]->fd;
      for (int n = 0; n < 150; ++n) {
        if (n % 3 == 0) trigger(0);
        if (n % 7 == 0) track(fd, n % 2 == 0);
        ack_current(fd);  // may race with a bump: EINVAL is fine
      }
      track(fd, true);
    });
  }
  for (std::thread& t : threads) t.join();
  bump();  // every tracked descriptor outdated now
  Dev w;
  for (int i = 0; i < kThreads - 1; ++i) CHECK(ack_current(fds[i]->fd) == 4);
  CHECK_ERRNO(wait_watchers(w.fd, 100), ETIMEDOUT);
  CHECK(ack_current(fds[kThreads - 1]->fd) == 4);
  CHECK(wait_watchers(w.fd, 100) == 0);
}

// Last: drives the counter to the end a trigger may reach. A trigger never saturates it
// (U32_MAX, where it would stay and no VM fork could be signalled again): ERANGE, by its
// minimum or by a plain +1; the generation stays where it was.
void test_trigger_never_saturates() {
  CHECK_ERRNO(trigger(0xFFFFFFFFul), ERANGE);
  CHECK(trigger(0xFFFFFFFEul) == 0);
  CHECK(generation() == 0xFFFFFFFEu);
  CHECK(*reinterpret_cast<const volatile uint64_t*>(g_page) == 0xFFFFFFFEu);
  CHECK_ERRNO(trigger(0), ERANGE);
  CHECK_ERRNO(trigger(0xFFFFFFFFul), ERANGE);
  CHECK(generation() == 0xFFFFFFFEu);
  Dev d;
  CHECK(ack(d.fd, 0xFFFFFFFEu) == 4);
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa = {};
  sa.sa_handler = on_sigusr1;  // no SA_RESTART: blocked calls return EINTR
  sigaction(SIGUSR1, &sa, nullptr);

  g_ctl = open(kDevice, O_RDONLY | O_CLOEXEC);
  if (g_ctl < 0) {
    printf("vm-uapi: FAIL open %s: %s\nvm-uapi: passed=0 failed=1\n", kDevice, strerror(errno));
    return 1;
  }
  void* page = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, g_ctl, 0);
  if (page == MAP_FAILED) {
    printf("vm-uapi: FAIL mmap %s: %s\nvm-uapi: passed=0 failed=1\n", kDevice, strerror(errno));
    return 1;
  }
  g_page = static_cast<const volatile uint32_t*>(page);

  run("device_node", test_device_node);
  run("open_remembers_generation", test_open_remembers_generation);
  run("read", test_read);
  run("read_bad_input", test_read_bad_input);
  run("read_nonblock_toggle", test_read_nonblock_toggle);
  run("read_interrupted_by_signal", test_read_signal);
  run("write", test_write);
  run("acknowledgement_is_per_descriptor", test_acknowledgement_is_per_descriptor);
  run("poll", test_poll);
  run("epoll", test_epoll);
  run("mmap_page", test_mmap_page);
  run("mmap_refusals", test_mmap_refusals);
  run("mprotect_to_writable_refused", test_mprotect_refused);
  run("mmap_across_fork", test_mmap_across_fork);
  run("unknown_ioctl", test_unknown_ioctl);
  run("trigger_minimum", test_trigger_minimum);
  run("trigger_capabilities", test_trigger_capabilities);
  run("wait_nothing_outdated", test_wait_nothing_outdated);
  run("wait_times_out", test_wait_times_out);
  run("wait_caller_outdated", test_wait_caller_outdated);
  run("untracked_outdated_not_waited_for", test_untracked_outdated_not_waited_for);
  run("wait_released_by_ack_untrack_close", test_wait_released);
  run("tracking_counts", test_tracking_counts);
  run("reader_poller_waiter_wake_on_bump", test_wakeups_on_bump);
  run("wait_interrupted_by_signal", test_wait_signal);
  run("accounting_under_churn", test_accounting_under_churn);
  run("trigger_never_saturates", test_trigger_never_saturates);

  printf("vm-uapi: passed=%d failed=%d\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
