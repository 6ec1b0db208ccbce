// File: tests/vm/guest.cc
//
// The guest side of tests/vm/run: a static program, booted inside a QEMU guest whose
// kernel has kernel_shim/sysgenid.ko loaded. It uses snapsafe only through its public API
// (rng/fill.h, rng/status.h) plus the SysGenID UAPI header.
//
//   vm_guest lib              the library's SysGenID source against the real device
//                             (SNAPSAFE_SOURCE=sysgenid, SNAPSAFE_SYSGENID_MODE=mmap|syscall)
//   vm_guest source NAME      status() reports source NAME, and draws work
//   vm_guest ticks LABEL MS   the clone workload: every MS milliseconds one line per
//                             generator: LABEL snapsafe (whatever source the environment
//                             selects) or controls (OpenSSL RAND_bytes, absl::BitGen, a
//                             once-seeded std::mt19937_64)
//   vm_guest watch            a blocked reader: one line per generation change
//   vm_guest reseed-latency   the first draw after a TRIGGER bump against a buffered one
//   vm_guest tracked-watcher MS  a tracked watcher that acknowledges MS ms after each
//                             change (MS < 0: never)
//
// Test lines: "vm-lib: ok NAME" / "vm-lib: FAIL NAME: why". Workload lines (parsed by
// tests/vm/harness.py):
//   @S LABEL SOURCE                        the snapsafe source this process uses
//   @T LABEL TICK GEN VALUE NS             GEN: the device's generation read *before* the
//                                          draw; VALUE: 16 hex digits; NS: the draw's time
//   @W GEN MONOTONIC_NS                    the watcher woke for generation GEN
//   @L SOURCE reseed_ns=N buffered_ns=N    reseed-latency's medians
#include <errno.h>
#include <fcntl.h>
#include <linux/sysgenid.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "genid/sysgenid.h"
#include "rng/fill.h"
#include "rng/internal/draw.h"
#include "rng/status.h"
#include "tests/vm/emit.h"

namespace {

constexpr const char* kDevice = "/dev/sysgenid";

using snapsafe::testing::emit;  // one write() per line: several processes share the port

uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

// The device's page, mapped read-only; null if there is no device.
const volatile uint32_t* map_generation() {
  const int fd = open(kDevice, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  return page == MAP_FAILED ? nullptr : static_cast<const volatile uint32_t*>(page);
}

// ---------------------------------------------------------------------------------------
// vm_guest lib

int g_passed = 0, g_failed = 0;
std::string g_prefix;

void check(bool ok, const std::string& name, const std::string& detail = "") {
  if (ok) {
    ++g_passed;
    emit("vm-lib: ok %s%s", g_prefix.c_str(), name.c_str());
  } else {
    ++g_failed;
    emit("vm-lib: FAIL %s%s: %s", g_prefix.c_str(), name.c_str(), detail.c_str());
  }
}

bool trigger(int fd) { return ioctl(fd, SYSGENID_TRIGGER_GEN_UPDATE, 0UL) == 0; }

// The library's own descriptor has acknowledged the current generation.
bool library_acknowledged() {
  const int fd = snapsafe::genid::sysgenid_descriptor_for_testing();
  uint32_t value;
  return fd >= 0 && read(fd, &value, sizeof value) == -1 && errno == EAGAIN;
}

int lib_test() {
  const char* mode_env = getenv("SNAPSAFE_SYSGENID_MODE");
  const std::string mode = mode_env != nullptr ? mode_env : "mmap";
  g_prefix = mode + "/";
  const std::string want = "sysgenid-" + mode;
  const volatile uint32_t* page = map_generation();
  const int ctl = open(kDevice, O_RDONLY | O_CLOEXEC);
  if (page == nullptr || ctl < 0) {
    check(false, "device", strerror(errno));
    emit("vm-lib: passed=%d failed=%d", g_passed, g_failed);
    return 1;
  }

  snapsafe::Status s = snapsafe::status();
  check(s.source_name == want && s.path == kDevice && s.buffered && s.snapshot_safe,
        "status_reports_source", s.to_string());
  emit("vm-lib:   | %s", s.to_string().substr(0, s.to_string().find('\n')).c_str());

  const uint64_t first = snapsafe::random_u64();
  s = snapsafe::status();
  const uint64_t r0 = s.reseeds;
  // In syscall mode a non-blocking read() before the first change says only "nothing new
  // since open()": genid/sysgenid.cc then reports its documented marker for "the value at
  // open()", 2^32 (no u32 counter value), until the first change tells the real number.
  const uint64_t expected_generation = mode == "syscall" ? uint64_t{1} << 32 : page[0];
  check(r0 == 1 && s.generation == expected_generation, "first_draw_seeds_once",
        "reseeds=" + std::to_string(r0) + " generation=" + std::to_string(s.generation) +
            " device=" + std::to_string(page[0]) +
            " expected=" + std::to_string(expected_generation));
  check(library_acknowledged(), "descriptor_current_after_first_draw");

  for (int i = 0; i < 2000; ++i) (void)snapsafe::random_u64();
  check(snapsafe::status().reseeds == r0, "no_reseed_without_bump",
        "reseeds=" + std::to_string(snapsafe::status().reseeds));

  for (int round = 1; round <= 3; ++round) {
    const uint32_t before = page[0];
    const bool bumped = trigger(ctl);
    const std::string name = "trigger_reseeds_" + std::to_string(round);
    const uint64_t value = snapsafe::random_u64();
    s = snapsafe::status();
    check(bumped && page[0] == before + 1 && s.generation == page[0] && s.reseeds == r0 + round &&
              snapsafe::rng_internal::reseed_count() == s.reseeds && value != first,
          name,
          "generation " + std::to_string(before) + "->" + std::to_string(page[0]) +
              " status.generation=" + std::to_string(s.generation) +
              " reseeds=" + std::to_string(s.reseeds));
    check(library_acknowledged(), name + "_acknowledged");
  }

  // fork: the child gets fresh output (MADV_WIPEONFORK) and its own descriptor, so its
  // acknowledgement of a change cannot hide that change from the parent.
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  const uint64_t reseeds_before_fork = snapsafe::status().reseeds;
  const pid_t pid = fork();
  if (pid == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    int code = 0;
    if (snapsafe::status().source_name != want) code |= 1;
    const uint64_t c1 = snapsafe::random_u64();
    if (snapsafe::status().reseeds != reseeds_before_fork + 1) code |= 2;  // wiped: reseeded
    (void)!write(to_parent[1], &c1, sizeof c1);
    char go;
    if (read(to_child[0], &go, 1) != 1) code |= 4;
    if (!trigger(ctl)) code |= 8;
    const uint64_t c2 = snapsafe::random_u64();
    if (snapsafe::status().reseeds != reseeds_before_fork + 2) code |= 16;
    if (!library_acknowledged()) code |= 32;
    (void)!write(to_parent[1], &c2, sizeof c2);
    _exit(code);
  }
  close(to_parent[1]);
  close(to_child[0]);
  uint64_t c1 = 0, c2 = 0;
  const bool got1 = read(to_parent[0], &c1, sizeof c1) == sizeof c1;
  const uint64_t p0 = snapsafe::random_u64();
  check(got1 && p0 != c1 && snapsafe::status().reseeds == reseeds_before_fork,
        "fork_child_output_differs");
  (void)!write(to_child[1], "g", 1);
  const bool got2 = read(to_parent[0], &c2, sizeof c2) == sizeof c2;
  int status = 0;
  waitpid(pid, &status, 0);
  check(got2 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork_child_works",
        "child exit code " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  const uint64_t p1 = snapsafe::random_u64();  // the child's bump: the parent reseeds too
  check(p1 != c2 && snapsafe::status().reseeds == reseeds_before_fork + 1 &&
            snapsafe::status().generation == page[0],
        "child_bump_reaches_parent",
        "parent reseeds=" + std::to_string(snapsafe::status().reseeds) + " before fork " +
            std::to_string(reseeds_before_fork));
  check(library_acknowledged(), "parent_acknowledged_after_child");

  emit("vm-lib: passed=%d failed=%d", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

// vm_guest source NAME
int source_test(const std::string& want) {
  g_prefix = "source/";
  const char* env = getenv("SNAPSAFE_SOURCE");
  const std::string name = want + (env != nullptr ? std::string(" (SNAPSAFE_SOURCE=") + env + ")"
                                                  : std::string(" (auto)"));
  uint64_t a = 0, b = 0;
  int error = 0;
  try {
    a = snapsafe::random_u64();
    b = snapsafe::random_u64();
  } catch (const std::exception& e) {
    error = 1;
  }
  const snapsafe::Status s = snapsafe::status();
  std::string detail = s.to_string();
  for (char& c : detail) c = c == '\n' ? ';' : c;
  check(s.source_name == want && error == 0 && a != b, name, detail);
  for (const std::string& note : s.notes) {
    emit("vm-lib:   | %s: skipped %s", name.c_str(), note.c_str());
  }
  return g_failed == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------
// vm_guest ticks LABEL MS

int ticks(const std::string& label, int interval_ms) {
  const volatile uint32_t* page = map_generation();
  const bool controls = label == "controls";
  std::mt19937_64 mt(std::random_device{}());  // seeded once, at start
  absl::BitGen bitgen;
  if (!controls) emit("@S %s %s", label.c_str(), snapsafe::status().source_name.c_str());
  const struct timespec interval = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  for (uint64_t tick = 1;; ++tick) {
    nanosleep(&interval, nullptr);
    const uint32_t gen = page != nullptr ? page[0] : 0;
    if (controls) {
      uint64_t openssl = 0;
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&openssl), sizeof openssl) != 1) {
        openssl = 0;
      }
      const uint64_t absl_value = absl::Uniform<uint64_t>(bitgen);
      const uint64_t mt_value = mt();
      emit("@T openssl %llu %u %016llx 0", static_cast<unsigned long long>(tick), gen,
           static_cast<unsigned long long>(openssl));
      emit("@T absl %llu %u %016llx 0", static_cast<unsigned long long>(tick), gen,
           static_cast<unsigned long long>(absl_value));
      emit("@T mt19937 %llu %u %016llx 0", static_cast<unsigned long long>(tick), gen,
           static_cast<unsigned long long>(mt_value));
    } else {
      const uint64_t start = monotonic_ns();
      const uint64_t value = snapsafe::random_u64();
      const uint64_t took = monotonic_ns() - start;
      emit("@T %s %llu %u %016llx %llu", label.c_str(), static_cast<unsigned long long>(tick), gen,
           static_cast<unsigned long long>(value), static_cast<unsigned long long>(took));
    }
  }
}

// vm_guest reseed-latency: the cost of the first draw after a bump (the reseed: kernel
// bytes, SHA-256, AES key schedule, 1 KiB of keystream) against a buffered draw, median
// of 31 TRIGGER bumps, warm. Guest clock, so under TCG it is emulation time.
int reseed_latency() {
  const int ctl = open(kDevice, O_RDONLY | O_CLOEXEC);
  if (ctl < 0) return 1;
  for (int i = 0; i < 100; ++i) (void)snapsafe::random_u64();
  std::vector<uint64_t> reseed, buffered;
  for (int i = 0; i < 31; ++i) {
    if (!trigger(ctl)) return 1;
    uint64_t start = monotonic_ns();
    (void)snapsafe::random_u64();
    reseed.push_back(monotonic_ns() - start);
    start = monotonic_ns();
    (void)snapsafe::random_u64();
    buffered.push_back(monotonic_ns() - start);
  }
  std::sort(reseed.begin(), reseed.end());
  std::sort(buffered.begin(), buffered.end());
  emit("@L %s reseed_ns=%llu buffered_ns=%llu", snapsafe::status().source_name.c_str(),
       static_cast<unsigned long long>(reseed[reseed.size() / 2]),
       static_cast<unsigned long long>(buffered[buffered.size() / 2]));
  return 0;
}

// vm_guest tracked-watcher MS: a component that must adjust before the system resumes:
// tracked, it wakes on a change, "adjusts" for MS milliseconds and acknowledges (MS < 0:
// never), so the overseer's SYSGENID_WAIT_WATCHERS waits for it.
int tracked_watcher(int adjust_ms) {
  const int fd = open(kDevice, O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, SYSGENID_SET_WATCHER_TRACKING, 1UL) != 0) return 1;
  emit("@tracked ready");
  for (;;) {
    uint32_t gen;
    if (read(fd, &gen, sizeof gen) != sizeof gen) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (adjust_ms < 0) {
      pause();  // never acknowledges
      continue;
    }
    usleep(adjust_ms * 1000);
    (void)!write(fd, &gen, sizeof gen);
  }
}

// vm_guest watch: the system workflow's watcher, minus the work: wake, report, acknowledge.
int watch() {
  const int fd = open(kDevice, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    emit("@W error %s", strerror(errno));
    return 1;
  }
  for (;;) {
    uint32_t gen;
    if (read(fd, &gen, sizeof gen) != sizeof gen) {
      if (errno == EINTR) continue;
      emit("@W error %s", strerror(errno));
      return 1;
    }
    emit("@W %u %llu", gen, static_cast<unsigned long long>(monotonic_ns()));
    (void)!write(fd, &gen, sizeof gen);  // EINVAL if it moved again: the next read says so
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "lib") return lib_test();
  if (command == "source" && argc > 2) return source_test(argv[2]);
  if (command == "ticks" && argc > 3) return ticks(argv[2], atoi(argv[3]));
  if (command == "watch") return watch();
  if (command == "reseed-latency") return reseed_latency();
  if (command == "tracked-watcher" && argc > 2) return tracked_watcher(atoi(argv[2]));
  fprintf(stderr,
          "usage: %s lib | source NAME | ticks LABEL MS | watch | reseed-latency | "
          "tracked-watcher MS\n",
          argv[0]);
  return 2;
}
