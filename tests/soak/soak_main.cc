// The bounded soak (tests/soak/run; docs/TESTING.md "Soak"). For SNAPSAFE_SOAK_SECONDS
// (default 60) it runs, all at once, against the production library in buffered mode on
// a counter file (SNAPSAFE_SOURCE=counter-file, SNAPSAFE_COUNTER_FILE; made here in
// $TMPDIR if unset):
//   - steady drawers: 2 threads drawing words, 16-byte blocks and 4 KiB bulk requests;
//   - thread churn: threads created 4 at a time, each draws and exits;
//   - forks: a child draws (on its thread and on a new one), writes its values to the
//     parent through a pipe and exits; the parent waits for it (bounded);
//   - generation bumps of the counter file (as the restore hook would), every ~5 ms;
//   - signal handlers drawing: SIGUSR1 sent to the steady drawers every ~100 us.
// Every participant's 64-bit outputs are sampled (fixed, pre-touched arrays, so sampling
// does not grow memory: every fork child's value, 9 of each churn thread's 65, every
// handler's, 1 in 32 of the steady drawers'); at the end no value may repeat. Leaks are
// measured between two quiescent points (every participant joined): after a warm-up (1/6
// of the time, at most 5 s) and at the end: resident memory (VmRSS) growth at most 16 MiB,
// open descriptors (/proc/self/fd) and live thread states
// (rng_internal::live_thread_states()) back to the baseline. Draws must never fail, every
// fork child must exit 0, the source must still be the counter file (not retired) and
// every participant must have made progress.
// Prints details, then one line
//   soak: seconds=S threads=T forks=F bumps=B values=V duplicates=0 rss_growth_kib=K fds_leaked=0 states_leaked=0
// and exits 0 only when everything held, else 1 (2: a setup error).
// --negative-control=fd|duplicate|states|rss breaks one property on purpose (a pipe end
// leaked per fork; a value reported twice per fork child; a thread that drew parked for
// good every ~0.3 s; 64 MiB touched and kept): the soak must then fail on exactly that
// field (tests/soak/soak_negative_control_test.sh).
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capi/c_api.h"
#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "rng/internal/thread_state.h"
#include "rng/status.h"
#include "tests/proc_self.h"

namespace {

enum class Control { kNone, kFd, kDuplicate, kStates, kRss };
Control g_control = Control::kNone;

constexpr long kAllowedRssGrowthKib = 16 * 1024;
constexpr int kChildValues = 64;

// ---- The sample: fixed arrays, touched before the warm-up. ----
struct Sample {
  explicit Sample(size_t capacity) : values(capacity, 0) {}
  void add(uint64_t value) {
    const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
    values[i % values.size()] = value;  // a full sample keeps the latest values
  }
  std::vector<uint64_t> taken() const {
    const uint64_t n = std::min<uint64_t>(next.load(), values.size());
    return std::vector<uint64_t>(values.begin(), values.begin() + static_cast<long>(n));
  }
  std::vector<uint64_t> values;
  std::atomic<uint64_t> next{0};
};

// Written from signal handlers too: only the atomic index and a store.
Sample* g_shared = nullptr;    // churn threads and fork children
Sample* g_handlers = nullptr;  // signal handlers
std::atomic<uint64_t> g_signals_handled{0};
std::atomic<uint64_t> g_draw_errors{0};

std::atomic<bool> g_stop{false};
// The signaller stops (and is joined) first: pthread_kill on a thread that has been joined
// is undefined (glibc may have unmapped its descriptor with its stack: a SIGSEGV seen once
// in CI), so the steady drawers it targets must outlive it.
std::atomic<bool> g_stop_signals{false};
std::atomic<uint64_t> g_threads{0}, g_forks{0}, g_bumps{0}, g_child_failures{0};
std::vector<int> g_leaked_fds;  // negative control "fd" (fork thread only)

void on_sigusr1(int) {
  const int saved = errno;
  uint64_t value = 0;
  if (snapsafe_u64(&value) == 0) {
    g_handlers->add(value);
    g_signals_handled.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_draw_errors.fetch_add(1, std::memory_order_relaxed);
  }
  errno = saved;
}

bool draw(uint64_t* value) {
  if (snapsafe_u64(value) == 0) return true;
  g_draw_errors.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Draws words, blocks and bulk requests into its own sample; no allocation in the loop, so
// a signal handler's draw (which may reseed, and a reseed allocates) never interrupts
// malloc.
void steady_drawer(Sample* sample) {
  uint8_t bulk[4096];
  for (uint64_t round = 0; !g_stop.load(std::memory_order_relaxed); ++round) {
    const bool sampled = round % 32 == 0;  // a thread's own stream: thinned
    uint64_t value;
    if (draw(&value) && sampled) sample->add(value);
    uint8_t block[16];
    if (snapsafe_fill(block, sizeof block) == 0) {
      std::memcpy(&value, block + 8, 8);
      if (sampled) sample->add(value);
    } else {
      g_draw_errors.fetch_add(1);
    }
    if (round % 64 == 0) {
      if (snapsafe_fill(bulk, sizeof bulk) == 0) {
        for (size_t off = 0; off < sizeof bulk; off += 512) {
          std::memcpy(&value, bulk + off, 8);
          sample->add(value);
        }
      } else {
        g_draw_errors.fetch_add(1);
      }
    }
  }
}

void churn() {
  while (!g_stop.load()) {
    std::thread threads[4];
    for (std::thread& t : threads) {
      t = std::thread([] {
        for (int i = 0; i < 64; ++i) {
          uint64_t value;
          if (draw(&value) && i % 8 == 0) g_shared->add(value);  // 8 of each thread's 64
        }
        uint8_t block[1024];
        if (snapsafe_fill(block, sizeof block) == 0) {
          uint64_t value;
          std::memcpy(&value, block + 512, 8);
          g_shared->add(value);
        } else {
          g_draw_errors.fetch_add(1);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    g_threads.fetch_add(4);
  }
}

// One fork: the child's values, or a failure counted.
void fork_once() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    g_child_failures.fetch_add(1);
    return;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    g_child_failures.fetch_add(1);
    return;
  }
  if (pid == 0) {
    uint64_t values[kChildValues];
    int bad = 0;
    for (int i = 0; i < kChildValues / 2; ++i) bad |= snapsafe_u64(&values[i]) != 0;
    std::thread([&] {  // a thread of the child's own: a state from the child's pool
      for (int i = kChildValues / 2; i < kChildValues; ++i) bad |= snapsafe_u64(&values[i]) != 0;
    })
        .join();
    if (g_control == Control::kDuplicate) values[kChildValues - 1] = values[0];
    const ssize_t n = write(fds[1], values, sizeof values);  // < PIPE_BUF: all or nothing
    _exit(bad != 0 || n != static_cast<ssize_t>(sizeof values) ? 1 : 0);
  }
  close(fds[1]);
  uint64_t values[kChildValues];
  size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got < sizeof values && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    const ssize_t n = read(fds[0], reinterpret_cast<char*>(values) + got, sizeof values - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof values) {  // hung or died: counted below; where it hangs, if gdb is here
    if (kill(pid, 0) == 0 && access("/usr/bin/gdb", X_OK) == 0) {
      const std::string command = "/usr/bin/gdb -p " + std::to_string(pid) +
                                  " -batch -ex 'thread apply all bt' 2>/dev/null | "
                                  "grep '^#' 1>&2";
      (void)!std::system(command.c_str());
    }
    kill(pid, SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (got == sizeof values && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    for (uint64_t v : values) g_shared->add(v);
  } else {
    g_child_failures.fetch_add(1);
    std::fprintf(stderr, "soak: fork child failed (got %zu bytes, status %d)\n", got, status);
  }
  if (g_control == Control::kFd) {
    g_leaked_fds.push_back(fds[0]);
  } else {
    close(fds[0]);
  }
  g_forks.fetch_add(1);
}

void forker() {
  while (!g_stop.load()) {
    fork_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void bumper(const std::string& path) {
  while (!g_stop.load()) {
    snapsafe::genid::Generation generation;
    const std::string error = snapsafe::genid::counter_file_bump(path, &generation);
    if (!error.empty()) {
      std::fprintf(stderr, "soak: bump failed: %s\n", error.c_str());
      g_child_failures.fetch_add(1);
      return;
    }
    g_bumps.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void signaller(const std::vector<pthread_t>& targets) {
  for (uint64_t i = 0; !g_stop_signals.load(); ++i) {
    pthread_kill(targets[i % targets.size()], SIGUSR1);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

// Negative control "states": a thread that drew, parked until the process exits (no
// synchronization object a static destructor could pull from under it).
void leak_a_state() {
  std::thread([] {
    uint64_t value;
    draw(&value);
    for (;;) pause();
  }).detach();
}

// Runs every participant until `seconds` passed, then stops and joins them all.
void run_phase(double seconds, const std::string& path, Sample* steady[2]) {
  g_stop = false;
  g_stop_signals = false;
  std::vector<std::thread> threads;
  threads.emplace_back(steady_drawer, steady[0]);
  threads.emplace_back(steady_drawer, steady[1]);
  const std::vector<pthread_t> targets = {threads[0].native_handle(), threads[1].native_handle()};
  threads.emplace_back(churn);
  threads.emplace_back(forker);
  threads.emplace_back(bumper, path);
  std::thread signals(signaller, targets);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  auto next_leak = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < end) {
    if (g_control == Control::kStates && std::chrono::steady_clock::now() >= next_leak) {
      leak_a_state();
      next_leak += std::chrono::milliseconds(300);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  g_stop_signals = true;
  signals.join();  // before its targets can exit
  g_stop = true;
  for (std::thread& t : threads) t.join();
  g_threads.fetch_add(2);  // the steady drawers
}

std::string g_made_counter_file;  // removed at the end

std::string counter_file_path() {
  const char* set = std::getenv("SNAPSAFE_COUNTER_FILE");
  if (set != nullptr && *set != '\0') return set;
  const char* dir = std::getenv("TEST_TMPDIR");
  if (dir == nullptr) dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr ? dir : "/tmp") + "/snapsafe-soak." + std::to_string(getpid());
  const std::string error = snapsafe::genid::counter_file_create(path);
  if (!error.empty()) {
    std::fprintf(stderr, "soak: %s\n", error.c_str());
    std::exit(2);
  }
  setenv("SNAPSAFE_SOURCE", "counter-file", 1);
  setenv("SNAPSAFE_COUNTER_FILE", path.c_str(), 1);
  g_made_counter_file = path;
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string prefix = "--negative-control=";
    if (arg.rfind(prefix, 0) == 0) {
      const std::string what = arg.substr(prefix.size());
      g_control = what == "fd"          ? Control::kFd
                  : what == "duplicate" ? Control::kDuplicate
                  : what == "states"    ? Control::kStates
                  : what == "rss"       ? Control::kRss
                                        : Control::kNone;
      if (g_control == Control::kNone) {
        std::fprintf(stderr, "soak: unknown negative control %s\n", what.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--negative-control=fd|duplicate|states|rss]\n", argv[0]);
      return 2;
    }
  }
  const char* env_seconds = std::getenv("SNAPSAFE_SOAK_SECONDS");
  const double seconds = env_seconds != nullptr ? std::atof(env_seconds) : 60.0;
  if (!(seconds >= 2)) {
    std::fprintf(stderr, "soak: SNAPSAFE_SOAK_SECONDS must be at least 2\n");
    return 2;
  }
  const std::string path = counter_file_path();
  const snapsafe::Status before = snapsafe::status();
  if (before.source != snapsafe::SourceKind::kCounterFile || !before.buffered) {
    std::fprintf(stderr, "soak: not buffered on a counter file:\n%s", before.to_string().c_str());
    return 2;
  }

  // Fixed samples, touched now: sampling never grows memory.
  // Sized so that a 60 s run keeps every churn, fork and handler value it sampled; the
  // steady drawers' (thinned) samples keep their latest values.
  Sample shared(size_t{1} << 22), handlers(size_t{1} << 18);
  Sample steady_a(size_t{1} << 20), steady_b(size_t{1} << 20);
  Sample* steady[2] = {&steady_a, &steady_b};
  g_shared = &shared;
  g_handlers = &handlers;
  struct sigaction action = {};
  action.sa_handler = &on_sigusr1;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, nullptr);

  const auto start = std::chrono::steady_clock::now();
  const double warm_up = std::max(1.0, std::min(5.0, seconds / 6));
  run_phase(warm_up, path, steady);
  const long rss_before = snapsafe::testing::resident_kib();
  const long fds_before = snapsafe::testing::open_descriptors();
  const uint64_t states_before = snapsafe::rng_internal::live_thread_states();

  std::unique_ptr<char[]> ballast;
  if (g_control == Control::kRss) {
    ballast.reset(new char[64 << 20]);
    std::memset(ballast.get(), 1, 64 << 20);
  }
  run_phase(seconds - warm_up, path, steady);
  const long rss_after = snapsafe::testing::resident_kib();
  const long fds_after = snapsafe::testing::open_descriptors();
  const uint64_t states_after = snapsafe::rng_internal::live_thread_states();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<uint64_t> all = shared.taken();
  for (const Sample* s : {&handlers, &steady_a, &steady_b}) {
    const std::vector<uint64_t> taken = s->taken();
    all.insert(all.end(), taken.begin(), taken.end());
  }
  std::sort(all.begin(), all.end());
  size_t duplicates = 0;
  for (size_t i = 1; i < all.size(); ++i) duplicates += all[i] == all[i - 1];
  const size_t zeros = static_cast<size_t>(std::count(all.begin(), all.end(), 0u));

  const snapsafe::Status after = snapsafe::status();
  const long rss_growth = rss_after - rss_before;
  const long fds_leaked = fds_after - fds_before;
  const long states_leaked = static_cast<long>(states_after) - static_cast<long>(states_before);
  uint64_t sampled = 0;  // every output sampled; the arrays keep the latest `values`
  for (const Sample* sample : {&shared, &handlers, &steady_a, &steady_b}) sampled += sample->next;
  std::printf(
      "soak: sampled=%llu signals handled=%llu draw_errors=%llu child_failures=%llu "
      "zeros=%zu reseeds=%llu rss_kib=%ld->%ld fds=%ld->%ld states=%llu->%llu "
      "source=%s%s\n",
      static_cast<unsigned long long>(sampled),
      static_cast<unsigned long long>(g_signals_handled.load()),
      static_cast<unsigned long long>(g_draw_errors.load()),
      static_cast<unsigned long long>(g_child_failures.load()), zeros,
      static_cast<unsigned long long>(after.reseeds), rss_before, rss_after, fds_before, fds_after,
      static_cast<unsigned long long>(states_before), static_cast<unsigned long long>(states_after),
      after.source_name.c_str(),
      after.retired.empty() ? "" : (" RETIRED: " + after.retired).c_str());
  std::printf(
      "soak: seconds=%.0f threads=%llu forks=%llu bumps=%llu values=%zu duplicates=%zu "
      "rss_growth_kib=%ld fds_leaked=%ld states_leaked=%ld\n",
      elapsed, static_cast<unsigned long long>(g_threads.load()),
      static_cast<unsigned long long>(g_forks.load()),
      static_cast<unsigned long long>(g_bumps.load()), all.size(), duplicates, rss_growth,
      fds_leaked, states_leaked);
  std::fflush(stdout);
  bool ok = duplicates == 0 && zeros == 0 && fds_leaked == 0 && states_leaked == 0 &&
            rss_before > 0 && rss_growth <= kAllowedRssGrowthKib && fds_before > 0 &&
            g_draw_errors.load() == 0 && g_child_failures.load() == 0 && after.retired.empty() &&
            after.buffered && g_threads.load() > 2 && g_forks.load() > 0 && g_bumps.load() > 0 &&
            g_signals_handled.load() > 0;
  std::printf("soak: %s\n", ok ? "passed" : "FAILED");
  for (int fd : g_leaked_fds) close(fd);
  if (!g_made_counter_file.empty()) unlink(g_made_counter_file.c_str());
  return ok ? 0 : 1;
}
