// The counter file (and the file-backed sources' opening) under abuse. Each hazard is
// provoked for real; each test fails without its fix (noted at each test), and where the
// hazard itself needs showing, a negative control shows it.
//
//  (a) unlinked, renamed away or replaced while mapped: still_valid() says so;
//  (b) a file created again at restore never repeats the checkpoint's generation;
//  (c) magic overwritten: still_valid() says so at once;
//  (d) truncated while mapped: no SIGBUS death; the draw goes to the kernel;
//  (e) a FIFO at the path never blocks the open (counter file, VMClock, auto mode);
//  (f) a file or directory someone else can write is refused, with a note saying why.
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/file_trust.h"
#include "genid/vmclock.h"
#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/status.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using ::testing::HasSubstr;

constexpr uid_t kNobody = 65534;

// Runs `body` in a forked child that is killed by SIGALRM after `seconds`; returns the
// child's wait status. `body` returns the exit code.
int in_child(const std::function<int()>& body, unsigned seconds = 10) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(seconds);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// In a child: gives up root for uid/gid 65534, then runs `body`.
int as_nobody(const std::function<int()>& body) {
  return in_child([&] {
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) return 90;
    return body();
  });
}

// Whether this process can act as (and give files to) uid 65534. Not inside Bazel's
// linux-sandbox, whose user namespace maps uid 0 only: there the tests that need another
// user skip, saying so; run un-sandboxed they run (tags = ["no-sandbox"], or
// `bazel test --strategy=TestRunner=local`, or bazel-bin/tests/counter_file_test).
bool other_user_available() {
  static const bool available = [] {
    const int outcome = as_nobody([] { return 0; });
    return WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0;
  }();
  return available;
}
#define REQUIRE_OTHER_USER()                                                               \
  if (!other_user_available())                                                             \
  GTEST_SKIP() << "uid 65534 is not mapped in this user namespace (Bazel's linux-sandbox " \
                  "maps uid 0 only); run this test un-sandboxed"

std::string make_dir(const std::string& path, mode_t mode) {
  EXPECT_EQ(mkdir(path.c_str(), 0700), 0) << path;
  EXPECT_EQ(chmod(path.c_str(), mode), 0);  // no umask
  return path;
}

// A valid counter file in `dir`.
std::string counter_in(const std::string& dir) {
  const std::string path = dir + "/generation";
  EXPECT_EQ(genid::counter_file_create(path), "");
  return path;
}

// A new directory `dir` with a valid counter file, then given `mode` (the tool refuses to
// create one in a directory others can write).
std::string counter_in_new_dir(const std::string& dir, mode_t mode) {
  const std::string path = counter_in(make_dir(dir, 0755));
  EXPECT_EQ(chmod(dir.c_str(), mode), 0);
  return path;
}

std::string notes_of(const Status& s) {
  std::string notes;
  for (const std::string& note : s.notes) notes += note + "\n";
  return notes;
}

// Selects with `settings`; expects the kernel-backed mode with a note containing `why`,
// and working draws.
void expect_kernel_with_note(const std::vector<std::pair<std::string, std::string>>& settings,
                             const std::string& why) {
  testing::use_source(settings);
  const Status s = status();
  EXPECT_EQ(s.source, SourceKind::kKernel);
  EXPECT_FALSE(s.buffered);
  EXPECT_THAT(notes_of(s), HasSubstr(why));
  testing::on_new_thread([] { EXPECT_NE(random_u64() | random_u64(), 0u); });
}

// A scratch directory outside the test's private tree (which is under /root, mode 0700),
// for tests whose unprivileged child must reach it. Removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    char name[] = "/tmp/snapsafe-counter-test-XXXXXX";
    path_ = mkdtemp(name) != nullptr ? name : "";
    EXPECT_FALSE(path_.empty());
    EXPECT_EQ(chmod(path_.c_str(), 0755), 0);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- (a) Replaced or unlinked while mapped: the process keeps the old inode, the hook
// bumps the new file, the mapping never changes. (c) Magic overwritten. Without the fix
// open_counter_file() returned no still_valid at all (null): every test below fails at
// its first ASSERT_NE(still_valid, nullptr).

using Clock = std::chrono::steady_clock;

struct Opened {
  genid::OpenedSource source;
  bool (*still_valid)() = nullptr;
};

Opened open_checked(const std::string& path) {
  genid::OpenResult result = genid::open_counter_file(path);
  EXPECT_TRUE(result.ok) << result.error;
  return {result.source, result.source.still_valid};
}

// Calls still_valid() until it says false or 2 s passed; returns how long that took.
std::chrono::microseconds time_until_invalid(bool (*still_valid)()) {
  const auto start = Clock::now();
  while (still_valid() && Clock::now() - start < std::chrono::seconds(2)) {
  }
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// still_valid()'s lstat interval for the scope (restored even when an ASSERT returns).
struct CheckInterval {
  explicit CheckInterval(int64_t nanoseconds) {
    genid::counter_file_check_interval_for_testing(nanoseconds);
  }
  ~CheckInterval() {
    genid::counter_file_check_interval_for_testing(genid::kCounterFileCheckIntervalNs);
  }
};

void create_file_at(const std::string& path) { ASSERT_EQ(genid::counter_file_create(path), ""); }

TEST(StillValid, UnlinkRecreateAndBumpIsNoticedWithinTheRateLimit) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  EXPECT_TRUE(opened.still_valid());
  EXPECT_EQ(genid::counter_file_invalid_reason(opened.still_valid), "");
  const genid::Generation before = *opened.source.reader.word;
  ASSERT_EQ(unlink(path.c_str()), 0);
  create_file_at(path);
  testing::bump(path);
  // The hazard: the restore hook's bump never reaches this mapping.
  EXPECT_EQ(__atomic_load_n(opened.source.reader.word, __ATOMIC_ACQUIRE), before);
  const auto took = time_until_invalid(opened.still_valid);
  EXPECT_FALSE(opened.still_valid());
  EXPECT_LT(took, std::chrono::milliseconds(500));
  std::cout << "still_valid() false " << took.count() << " us after the replacement\n";
  EXPECT_THAT(genid::counter_file_invalid_reason(opened.still_valid),
              HasSubstr(path + ": no longer trusted: it was replaced (the path names another "
                               "file now"));
}

TEST(StillValid, OnceFalseEveryThreadsDrawsGoToTheKernel) {
  // Whoever calls still_valid() first (the draw, on some thread's refill), every other
  // thread's next check reads "unknown" too: no thread serves its old buffer any more.
  const std::string path = testing::use_fresh_counter_file();
  const genid::OpenedSource& source = genid::init().active;
  ASSERT_NE(source.still_valid, nullptr);
  std::atomic<int> phase{0};
  std::atomic<bool> ok{false};
  std::thread other([&] {
    (void)random_u64();  // seeded, with a buffer
    const uint64_t reseeds = status().reseeds;
    const uint32_t remaining = rng_internal::t_state->remaining;
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    std::set<uint64_t> values;
    for (int i = 0; i < 100; ++i) values.insert(random_u64());
    ok = values.size() == 100 && status().reseeds == reseeds &&
         rng_internal::t_state->remaining == remaining;  // nothing from the buffer
  });
  while (phase.load() != 1) std::this_thread::yield();
  ASSERT_EQ(unlink(path.c_str()), 0);
  create_file_at(path);
  testing::bump(path);
  EXPECT_LT(time_until_invalid(source.still_valid), std::chrono::milliseconds(500));
  EXPECT_EQ(genid::read_generation(), genid::kGenerationUnknown);
  phase = 2;
  other.join();
  EXPECT_TRUE(ok.load()) << "the other thread's draws came from its buffer or reseeded";
}

TEST(StillValid, UnlinkAloneRenameAwayAndRenameOverAreNoticed) {
  struct Case {
    const char* what;
    std::function<void(const std::string&)> act;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"unlink", [](const std::string& p) { ASSERT_EQ(unlink(p.c_str()), 0); },
       "it was unlinked or renamed away"},
      {"rename away",
       [](const std::string& p) { ASSERT_EQ(rename(p.c_str(), (p + ".moved").c_str()), 0); },
       "it was unlinked or renamed away"},
      {"rename over",
       [](const std::string& p) {
         const std::string other = testing::temp_path("other");
         create_file_at(other);
         ASSERT_EQ(rename(other.c_str(), p.c_str()), 0);
       },
       "it was replaced"},
      {"symlink swapped in",
       [](const std::string& p) {
         const std::string other = p + ".real";
         ASSERT_EQ(rename(p.c_str(), other.c_str()), 0);
         ASSERT_EQ(symlink(other.c_str(), p.c_str()), 0);  // the same inode, behind a link
       },
       "it was replaced"},
      {"chmod 0666", [](const std::string& p) { ASSERT_EQ(chmod(p.c_str(), 0666), 0); },
       "it was made writable by group or others"},
  };
  for (const Case& c : cases) {
    const std::string path = testing::temp_path("generation");
    create_file_at(path);
    const Opened opened = open_checked(path);
    ASSERT_NE(opened.still_valid, nullptr);
    EXPECT_TRUE(opened.still_valid()) << c.what;
    c.act(path);
    EXPECT_LT(time_until_invalid(opened.still_valid), std::chrono::milliseconds(500)) << c.what;
    EXPECT_THAT(genid::counter_file_invalid_reason(opened.still_valid), HasSubstr(c.reason))
        << c.what;
  }
}

TEST(StillValid, AMappingRestoredByPathOntoTheNewFileStaysValid) {
  // CRIU restores a file mapping by opening the path again: the mapping is then the file
  // the hook bumps, and nothing is wrong. The control is the test above (not re-mapped).
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  ASSERT_TRUE(opened.still_valid());
  ASSERT_EQ(unlink(path.c_str()), 0);
  create_file_at(path);
  const int fd = open(path.c_str(), O_RDONLY);
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(opened.source.reader.word) &
                                       ~uintptr_t{4095});
  ASSERT_EQ(mmap(page, genid::kCounterFileSize, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0), page);
  close(fd);
  {
    const CheckInterval every_call(0);  // the lstat on every call, once this interval ends
    const auto start = Clock::now();
    while (Clock::now() - start < std::chrono::milliseconds(30)) {
      ASSERT_TRUE(opened.still_valid());
    }
  }
  genid::Generation now = 0;
  ASSERT_EQ(genid::counter_file_bump(path, &now), "");
  EXPECT_EQ(*opened.source.reader.word, now) << "the mapping sees the hook's bumps";
  ASSERT_EQ(unlink(path.c_str()), 0);  // and a later replacement is still noticed
  EXPECT_LT(time_until_invalid(opened.still_valid), std::chrono::milliseconds(500));
}

TEST(StillValid, OwnerChangeIsNoticed) {
  REQUIRE_OTHER_USER();
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  ASSERT_EQ(chown(path.c_str(), kNobody, kNobody), 0);
  EXPECT_LT(time_until_invalid(opened.still_valid), std::chrono::milliseconds(500));
  EXPECT_THAT(genid::counter_file_invalid_reason(opened.still_valid),
              HasSubstr("its owner changed"));
}

TEST(StillValid, MagicOverwrittenIsNoticedAtOnceAndForGood) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  EXPECT_TRUE(opened.still_valid());
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "XXXXXXXX", 8, 0), 8);
  EXPECT_FALSE(opened.still_valid()) << "the magic is compared on every call";
  EXPECT_THAT(genid::counter_file_invalid_reason(opened.still_valid),
              HasSubstr("its magic was overwritten"));
  ASSERT_EQ(pwrite(fd, genid::kCounterFileMagic, 8, 0), 8);
  close(fd);
  EXPECT_FALSE(opened.still_valid()) << "once false, stays false";
  // The tool side refuses the file while the magic is wrong (and a new open maps it again
  // once it is right: a fresh source, a fresh still_valid).
}

TEST(StillValid, ManyThreadsSeeTheReplacement) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  std::atomic<bool> go{false};
  std::atomic<int> saw_false{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) opened.still_valid();
      if (time_until_invalid(opened.still_valid) < std::chrono::seconds(2)) saw_false++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(unlink(path.c_str()), 0);
  go = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(saw_false.load(), 4);
}

TEST(StillValid, ReopeningTheSameFileReusesItsMapping) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened a = open_checked(path), b = open_checked(path);
  EXPECT_EQ(a.source.reader.word, b.source.reader.word);
  EXPECT_EQ(a.still_valid, b.still_valid);
}

// The cost, measured and printed. What is asserted is the rate limit, as a ratio within
// this run (no absolute time: the host's speed moves 4x between days): with the lstat at
// most once per interval a call costs a small fraction of one that lstats every time
// (measured ~40x apart).
TEST(StillValid, Cost) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  const Opened opened = open_checked(path);
  ASSERT_NE(opened.still_valid, nullptr);
  auto per_call_ns = [&](int calls) {
    const auto start = Clock::now();
    for (int i = 0; i < calls; ++i) {
      if (!opened.still_valid()) ADD_FAILURE();
    }
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / calls;
  };
  per_call_ns(1000);  // warm
  const double limited = per_call_ns(2'000'000);
  double every_call = 0;
  {
    const CheckInterval every(0);
    every_call = per_call_ns(200'000);
  }
  struct timespec resolution;
  clock_getres(CLOCK_MONOTONIC_COARSE, &resolution);
  std::cout << "still_valid(): " << limited << " ns per call (lstat at most once per ms; "
            << "CLOCK_MONOTONIC_COARSE resolution " << resolution.tv_nsec / 1000 << " us), "
            << every_call << " ns per call with the lstat on every call\n";
  RecordProperty("still_valid_ns", std::to_string(limited));
  RecordProperty("still_valid_lstat_every_call_ns", std::to_string(every_call));
  EXPECT_LT(limited * 5, every_call);
}

// ---- (d) Truncated while mapped (`: > FILE`). Without the guard every process that
// maps the file dies of SIGBUS at its next draw: the negative control below, and what
// the guarded test sees with the fix reverted ("killed by Bus error").

void no_core_dumps() {
  const struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

// Parent and child: the child draws from the counter file, the parent then truncates it
// with `how`, and the child draws again. Returns the child's wait status. `guarded`
// false switches the guard off in the child (the negative control).
int child_draws_across_truncation(const std::function<void(const std::string&)>& how, bool guarded,
                                  const std::string& expect_reason) {
  const std::string path = testing::use_fresh_counter_file();
  int ready[2], truncated[2];
  EXPECT_EQ(pipe(ready), 0);
  EXPECT_EQ(pipe(truncated), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    no_core_dumps();
    alarm(20);
    genid::counter_file_sigbus_guard_for_testing(guarded);
    const genid::OpenedSource& source = genid::init().active;
    if (source.kind != SourceKind::kCounterFile || source.still_valid == nullptr) _exit(10);
    (void)random_u64();  // seeded from the file's generation
    if (!source.still_valid()) _exit(11);
    const uint64_t reseeds = status().reseeds;
    const uint32_t remaining = rng_internal::t_state->remaining;
    char byte = 0;
    if (write(ready[1], "r", 1) != 1 || read(truncated[0], &byte, 1) != 1) _exit(12);
    std::set<uint64_t> values;
    for (int i = 0; i < 100; ++i) values.insert(random_u64());  // the first load faults
    if (values.size() != 100) _exit(13);
    if (source.still_valid()) _exit(14);
    if (genid::counter_file_invalid_reason(source.still_valid).find(expect_reason) ==
        std::string::npos) {
      _exit(15);
    }
    if (expect_reason.find("SIGBUS") != std::string::npos) {
      // Served by the kernel: no reseed, the buffer untouched, the generation unknown.
      if (genid::read_generation() != genid::kGenerationUnknown) _exit(16);
      if (status().reseeds != reseeds) _exit(17);
      if (rng_internal::t_state->remaining != remaining) _exit(18);
    }
    _exit(0);
  }
  char byte = 0;
  EXPECT_EQ(read(ready[0], &byte, 1), 1);
  how(path);
  EXPECT_EQ(write(truncated[1], "t", 1), 1);
  int outcome = 0;
  waitpid(pid, &outcome, 0);
  for (int fd : {ready[0], ready[1], truncated[0], truncated[1]}) close(fd);
  return outcome;
}

void truncate_like_colon(const std::string& path) {  // `: > FILE`
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  close(fd);
}

void truncate_like_echo(const std::string& path) {  // `echo 1 > FILE`
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "1\n", 2), 2);
  close(fd);
}

TEST(Truncation, DrawsGoOnFromTheKernelAndStillValidIsFalse) {
  const int outcome = child_draws_across_truncation(truncate_like_colon, true, "SIGBUS caught");
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
  // This process maps the truncated file too: its own next check is caught the same way.
  EXPECT_EQ(genid::read_generation(), genid::kGenerationUnknown);
  EXPECT_NE(random_u64() | random_u64(), 0u);
  EXPECT_FALSE(genid::init().active.still_valid());
}

TEST(Truncation, NegativeControlWithoutTheGuardTheProcessDiesOfSigbus) {
  const int outcome = child_draws_across_truncation(truncate_like_colon, false, "");
  EXPECT_TRUE(WIFSIGNALED(outcome) && WTERMSIG(outcome) == SIGBUS) << describe(outcome);
}

TEST(Truncation, EchoIntoTheFileLeavesAWrongMagic) {
  // 2 bytes left: the page is inside the file again, no fault; the magic reads "1\n".
  const int outcome = child_draws_across_truncation(truncate_like_echo, true, "magic");
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

TEST(Truncation, ToolFunctionsOnATruncatedFileFailCleanly) {
  const std::string path = testing::temp_path("generation");
  create_file_at(path);
  truncate_like_colon(path);
  genid::Generation generation;
  EXPECT_THAT(genid::counter_file_bump(path, &generation), HasSubstr("truncated counter file"));
  EXPECT_THAT(genid::counter_file_read(path, &generation), HasSubstr("truncated counter file"));
}

// A SIGBUS that is not on a counter page behaves exactly as before the guard.
void fault_on_a_truncated_scratch_mapping() {
  const std::string path = testing::temp_path("scratch");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, 4096) != 0) _exit(30);
  auto* page = static_cast<volatile char*>(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0));
  if (page == MAP_FAILED || ftruncate(fd, 0) != 0) _exit(31);
  (void)page[0];
}

TEST(Truncation, ForeignFaultsStillKillWithTheDefaultAction) {
  testing::use_fresh_counter_file();  // the guard is installed in this process
  const int outcome = in_child([] {
    no_core_dumps();
    fault_on_a_truncated_scratch_mapping();
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(outcome) && WTERMSIG(outcome) == SIGBUS) << describe(outcome);
  const int sent = in_child([] {
    no_core_dumps();
    kill(getpid(), SIGBUS);
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(sent) && WTERMSIG(sent) == SIGBUS) << describe(sent);
}

TEST(Truncation, ForeignFaultsGoToTheHandlerInstalledBefore) {
  testing::use_fresh_counter_file();
  const int outcome = in_child([] {
    struct sigaction theirs = {};
    theirs.sa_sigaction = [](int, siginfo_t* info, void*) { _exit(info->si_code > 0 ? 42 : 43); };
    theirs.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &theirs, nullptr);
    genid::counter_file_reinstall_sigbus_handler_for_testing();  // ours on top of theirs
    // A counter page truncated: ours handles it, theirs is not called.
    const std::string path = genid::init().active.path;
    const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
    close(fd);
    if (genid::read_generation() != genid::kGenerationUnknown) return 1;
    fault_on_a_truncated_scratch_mapping();  // theirs: _exit(42)
    return 2;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 42) << describe(outcome);
}

TEST(Truncation, AnIgnoredSentSigbusStaysIgnored) {
  testing::use_fresh_counter_file();
  const int outcome = in_child([] {
    signal(SIGBUS, SIG_IGN);
    genid::counter_file_reinstall_sigbus_handler_for_testing();
    kill(getpid(), SIGBUS);
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

// ---- create over an invalid file: replaced by rename; processes still mapping the old
// one read "unknown" from then on. Without the fix create renamed over it and left the
// old inode as it was: its mappers kept a live-looking generation nobody would bump.

TEST(CreateReplaces, AnInvalidFileAndRetiresItForItsMappers) {
  const std::string path = testing::use_fresh_counter_file();
  const genid::OpenedSource& source = genid::init().active;
  ASSERT_EQ(source.kind, SourceKind::kCounterFile);
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "XXXXXXXX", 8, 0), 8);  // (c): the magic overwritten
  close(fd);
  EXPECT_NE(genid::read_generation(), genid::kGenerationUnknown) << "before: a live number";
  std::string replaced;
  ASSERT_EQ(genid::counter_file_create(path, &replaced), "");
  EXPECT_THAT(replaced, HasSubstr("corrupt counter file"));
  EXPECT_EQ(genid::read_generation(), genid::kGenerationUnknown);
  EXPECT_FALSE(source.still_valid());
  EXPECT_THAT(genid::counter_file_invalid_reason(source.still_valid), HasSubstr("magic"));
  testing::on_new_thread([] { EXPECT_NE(random_u64() | random_u64(), 0u); });
  EXPECT_TRUE(genid::open_counter_file(path).ok) << "the replacement is valid";
}

TEST(CreateReplaces, AFileOthersCouldWrite) {
  const std::string path = testing::use_fresh_counter_file();
  const genid::OpenedSource& source = genid::init().active;
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  std::string replaced;
  ASSERT_EQ(genid::counter_file_create(path, &replaced), "");
  EXPECT_THAT(replaced, HasSubstr("writable by group or others"));
  EXPECT_EQ(genid::read_generation(), genid::kGenerationUnknown);
  EXPECT_FALSE(source.still_valid());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST(CreateReplaces, NeverRetiresAFileWithAnotherLink) {
  // A hard link planted at the path (nlink 2) may be any file of the same owner: create
  // replaces the name but writes nothing into the file.
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  const std::string elsewhere = testing::temp_path("precious");
  const int fd = open(elsewhere.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_EQ(write(fd, "0123456789abcdef", 16), 16);
  close(fd);
  ASSERT_EQ(link(elsewhere.c_str(), (dir + "/generation").c_str()), 0);
  std::string replaced;
  ASSERT_EQ(genid::counter_file_create(dir + "/generation", &replaced), "");
  EXPECT_THAT(replaced, HasSubstr("corrupt"));
  char bytes[17] = {};
  const int again = open(elsewhere.c_str(), O_RDONLY);
  ASSERT_EQ(read(again, bytes, 16), 16);
  close(again);
  EXPECT_STREQ(bytes, "0123456789abcdef");
}

TEST(CreateReplaces, NotAFileItCannotJudge) {
  REQUIRE_OTHER_USER();
  // As uid 65534, a valid root file it cannot read (0600) is an error, not a replacement.
  ScratchDir scratch;
  const std::string dir = make_dir(scratch.path() + "/d", 0755);
  const std::string path = counter_in(dir);
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  genid::Generation before = 0;
  ASSERT_EQ(genid::counter_file_read(path, &before), "");
  ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);  // its directory: it could rename
  const int outcome = as_nobody([&] {
    return genid::counter_file_create(path).find("Permission denied") != std::string::npos ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
  ASSERT_EQ(chown(dir.c_str(), 0, 0), 0);
  genid::Generation after = 0;
  ASSERT_EQ(genid::counter_file_read(path, &after), "");
  EXPECT_EQ(after, before);
}

// ---- (b) Recreated at restore. Old create started every file at 0, so a file created
// again on a fresh tmpfs and bumped by the restore hook came back to the number it had
// at the checkpoint.

TEST(RandomStart, CreateStartsEveryFileAtAFreshRandomGeneration) {
  // Without the fix: every generation is 0 ("set.size() 1", "0 == 0").
  std::set<genid::Generation> starts;
  for (int i = 0; i < 64; ++i) {
    const std::string path = testing::temp_path("generation");
    ASSERT_EQ(genid::counter_file_create(path), "");
    genid::Generation generation = 0;
    ASSERT_EQ(genid::counter_file_read(path, &generation), "");
    EXPECT_NE(generation, 0u);
    EXPECT_LT(generation, genid::kGenerationUnknown - (genid::Generation{1} << 32));
    starts.insert(generation);
    genid::Generation bumped = 0;
    ASSERT_EQ(genid::counter_file_bump(path, &bumped), "");
    EXPECT_NE(bumped, generation) << "a bump changes it";
    EXPECT_NE(bumped, 0u);
    EXPECT_LT(bumped, genid::kGenerationUnknown - (genid::Generation{1} << 32))
        << "a bump draws from create's range";
    starts.insert(bumped);
  }
  EXPECT_EQ(starts.size(), 128u);
}

// ---- The bump carries the clone's identity (a fresh random generation, not +1). Clones of
// one snapshot hold copies of one file at one generation; each is bumped where its bump
// runs (the host). With +1 every clone got the same new generation, so under a cloned guest
// kernel RNG and no RDRAND their reseeds hashed the same material
// (tests/cloned_kernel_test.cc shows the draws repeating).

genid::Generation read_generation_of(const std::string& path) {
  genid::Generation generation = 0;
  EXPECT_EQ(genid::counter_file_read(path, &generation), "");
  return generation;
}

// Two copies of one file, as two clones have them.
std::pair<std::string, std::string> two_clones_of_one_file() {
  const std::string original = testing::temp_path("generation");
  EXPECT_EQ(genid::counter_file_create(original), "");
  const std::string a = testing::temp_path("clone-a"), b = testing::temp_path("clone-b");
  std::filesystem::copy_file(original, a);
  std::filesystem::copy_file(original, b);
  return {a, b};
}

TEST(RandomBump, TwoClonesOfOneFileBumpedEachGetADifferentGeneration) {
  // Without the fix (+1): "Expected: (bumped_a) != (bumped_b), actual: N vs N".
  for (int i = 0; i < 16; ++i) {
    const auto [a, b] = two_clones_of_one_file();
    const genid::Generation before = read_generation_of(a);
    ASSERT_EQ(read_generation_of(b), before);
    genid::Generation bumped_a = 0, bumped_b = 0;
    ASSERT_EQ(genid::counter_file_bump(a, &bumped_a), "");
    ASSERT_EQ(genid::counter_file_bump(b, &bumped_b), "");
    EXPECT_NE(bumped_a, bumped_b);
    EXPECT_NE(bumped_a, before);
    EXPECT_NE(bumped_b, before);
    EXPECT_EQ(read_generation_of(a), bumped_a);
    EXPECT_EQ(read_generation_of(b), bumped_b);
  }
}

TEST(RandomBump, NegativeControlPlusOneGivesBothClonesTheSameGeneration) {
  // What the old bump stored: the current value + 1, in each clone's copy.
  const auto [a, b] = two_clones_of_one_file();
  const genid::Generation old_a = read_generation_of(a) + 1, old_b = read_generation_of(b) + 1;
  EXPECT_EQ(old_a, old_b) << "with +1 the clones would differ: the hazard is not shown";
}

// The fresh generations the bump draws, scripted: the current value first, then another.
genid::Generation g_scripted[4];
int g_scripted_next = 0;
bool scripted(genid::Generation* value) {
  *value = g_scripted[g_scripted_next++ % 4];
  return true;
}
bool failing(genid::Generation*) { return false; }

TEST(RandomBump, TheNewValueAlwaysDiffersFromTheOneItReplaces) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  const genid::Generation before = read_generation_of(path);
  g_scripted[0] = before;  // a draw that happens to equal the current value
  g_scripted[1] = before;
  g_scripted[2] = before ^ 1;
  g_scripted[3] = before ^ 2;
  g_scripted_next = 0;
  genid::counter_file_fresh_generation_for_testing(&scripted);
  genid::Generation bumped = 0;
  const std::string error = genid::counter_file_bump(path, &bumped);
  genid::counter_file_fresh_generation_for_testing(nullptr);
  ASSERT_EQ(error, "");
  // Without the compare: "Expected: (bumped) != (before)" (the bump stored the same value).
  EXPECT_NE(bumped, before);
  EXPECT_EQ(bumped, before ^ 1);
  EXPECT_EQ(read_generation_of(path), before ^ 1);
}

TEST(RandomBump, ABumpOfferedOnlyTheCurrentValueFailsAndWritesNothing) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  const genid::Generation before = read_generation_of(path);
  for (genid::Generation& value : g_scripted) value = before;
  genid::counter_file_fresh_generation_for_testing(&scripted);
  genid::Generation bumped = 0;
  const std::string error = genid::counter_file_bump(path, &bumped);
  genid::counter_file_fresh_generation_for_testing(nullptr);
  EXPECT_THAT(error, HasSubstr("no fresh generation differing from the current one"));
  EXPECT_EQ(read_generation_of(path), before);
}

TEST(RandomBump, FailsClosedWithoutGetrandom) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  const genid::Generation before = read_generation_of(path);
  genid::counter_file_fresh_generation_for_testing(&failing);
  genid::Generation bumped = 0;
  const std::string scripted_error = genid::counter_file_bump(path, &bumped);
  genid::counter_file_fresh_generation_for_testing(nullptr);
  EXPECT_THAT(scripted_error, HasSubstr("getrandom"));
  EXPECT_THAT(scripted_error, HasSubstr("never falls back to +1"));
  EXPECT_EQ(read_generation_of(path), before) << "nothing written";
  // The real getrandom, refused by seccomp in a child.
  const int outcome = in_child([&] {
    if (!testing::block_getrandom(EPERM)) return 9;
    genid::Generation g = 0;
    const std::string error = genid::counter_file_bump(path, &g);
    if (error.find("getrandom: Operation not permitted") == std::string::npos) return 1;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
  EXPECT_EQ(read_generation_of(path), before) << "nothing written";
}

TEST(RandomBump, BeforeStoreSeesTheValueBeforeReadersDo) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  const genid::Generation before = read_generation_of(path);
  genid::Generation offered = 0, stored_then = 0;
  genid::Generation bumped = 0;
  ASSERT_EQ(genid::counter_file_bump(path, &bumped, genid::kThisProcessRoot, nullptr,
                                     [&](genid::Generation next) {
                                       offered = next;
                                       stored_then = read_generation_of(path);
                                     }),
            "");
  EXPECT_EQ(offered, bumped);
  EXPECT_EQ(stored_then, before) << "called before the store";
}

TEST(SetGeneration, StoresTheValueAndTellsAnUnchangedOne) {
  const std::string path = testing::temp_path("generation");
  ASSERT_EQ(genid::counter_file_create(path), "");
  bool unchanged = true;
  ASSERT_EQ(genid::counter_file_set(path, 42, &unchanged), "");
  EXPECT_FALSE(unchanged);
  EXPECT_EQ(read_generation_of(path), 42u);
  ASSERT_EQ(genid::counter_file_set(path, 42, &unchanged), "");
  EXPECT_TRUE(unchanged) << "CRIU runs the hook twice: the second set is no change";
  ASSERT_EQ(genid::counter_file_set(path, 0, &unchanged), "");
  EXPECT_EQ(read_generation_of(path), 0u);
  EXPECT_THAT(genid::counter_file_set(path, genid::kGenerationUnknown, &unchanged),
              HasSubstr("reserved \"unknown\" generation"));
  EXPECT_EQ(read_generation_of(path), 0u);
  bool missing = false;
  EXPECT_NE(genid::counter_file_set(testing::temp_path("none"), 1, &unchanged,
                                    genid::kThisProcessRoot, &missing),
            "");
  EXPECT_TRUE(missing);
}

TEST(RandomStart, CreateFailsClosedWithoutGetrandom) {
  const std::string path = testing::temp_path("generation");
  const int outcome = in_child([&] {
    if (!testing::block_getrandom(EPERM)) return 9;
    const std::string error = genid::counter_file_create(path);
    if (error.find("getrandom: Operation not permitted") == std::string::npos) return 1;
    return access(path.c_str(), F_OK) != 0 && errno == ENOENT ? 0 : 2;  // nothing created
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

constexpr size_t kDraws = 512;  // 16-byte draws: 8 KiB, more than one refill

testing::Bytes draw_blocks() {
  testing::Bytes bytes(kDraws * 16);
  for (size_t i = 0; i < kDraws; ++i) fill(bytes.data() + 16 * i, 16);
  return bytes;
}

// A checkpoint/restore with the counter file on a tmpfs that does not survive it. The
// process maps the file at generation G and seeds under G; fork() with wipe-on-fork off
// stands in for the clone (as tests/snapshot_test.cc). Restore: the file is gone, the
// restore tooling creates it again and the hook bumps it once; the restored process
// maps the file now at the path at the same address (as CRIU restores a file mapping:
// by path). Its twin (the parent) keeps drawing from the same state under G. Returns the
// 16-byte blocks they share. `repeat` forces the new file to G: the control that
// shows the test sees a repeat when one happens.
size_t shared_blocks_after_restore_onto_a_recreated_file(bool repeat) {
  const std::string path = testing::temp_path("generation");
  EXPECT_EQ(genid::counter_file_create(path), "");
  genid::Generation checkpoint = 0;
  EXPECT_EQ(genid::counter_file_bump(path, &checkpoint), "");
  testing::use_source({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path}});
  EXPECT_EQ(status().source, SourceKind::kCounterFile);
  const uintptr_t page = reinterpret_cast<uintptr_t>(genid::g_reader.word) & ~uintptr_t{4095};
  rng_internal::g_test_hooks.disable_wipe_on_fork = true;  // a restore keeps every byte
  rng_internal::g_test_hooks.disable_fork_handler = true;  // and runs no fork handler
  size_t shared = 0;
  testing::on_new_thread([&] {
    fill(testing::Bytes(16).data(), 16);  // seeded under the checkpoint's generation
    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    testing::Child child = testing::fork_child([&] {
      char go;
      if (read(gate[0], &go, 1) != 1) _exit(5);
      const int fd = open(path.c_str(), O_RDONLY);  // the file at the path now
      if (fd < 0 || mmap(reinterpret_cast<void*>(page), genid::kCounterFileSize, PROT_READ,
                         MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        _exit(6);
      }
      close(fd);
      return draw_blocks();
    });
    ASSERT_EQ(unlink(path.c_str()), 0);  // the fresh tmpfs
    ASSERT_EQ(genid::counter_file_create(path), "");
    genid::Generation restored = 0;
    ASSERT_EQ(genid::counter_file_bump(path, &restored), "");
    if (repeat) {
      const int fd = open(path.c_str(), O_RDWR);
      ASSERT_EQ(pwrite(fd, &checkpoint, 8, 8), 8);
      close(fd);
    } else {
      EXPECT_NE(restored, checkpoint);
    }
    ASSERT_EQ(write(gate[1], "g", 1), 1);
    const testing::Bytes parent = draw_blocks();
    const testing::Bytes child_bytes = testing::collect(child);
    close(gate[0]);
    close(gate[1]);
    ASSERT_EQ(child_bytes.size(), parent.size());
    shared = testing::shared_blocks(parent, child_bytes);
  });
  rng_internal::g_test_hooks = {};
  return shared;
}

TEST(RandomStart, RestoreOntoARecreatedFileReseeds) {
  // Without the fix: 512 of 512 blocks shared (the new file reads 1 again, as at the
  // checkpoint: no reseed, the clones repeat each other).
  EXPECT_EQ(shared_blocks_after_restore_onto_a_recreated_file(false), 0u);
}

TEST(RandomStart, NegativeControlARepeatedGenerationRepeatsOutput) {
  EXPECT_GT(shared_blocks_after_restore_onto_a_recreated_file(true), 0u);
}

// ---- (e) FIFOs. Without O_NONBLOCK (the old open), each of these children blocks in
// open() with no writer and is killed by SIGALRM: "killed by Alarm clock".

TEST(Fifo, AtTheCounterFilePathIsRefusedWithoutBlocking) {
  const std::string fifo = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const int outcome = in_child([&] {
    const genid::OpenResult result = genid::open_counter_file(fifo);
    return !result.ok && result.error == fifo + ": not a regular file" ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

TEST(Fifo, AtTheVmclockPathIsRefusedWithoutBlocking) {
  const std::string fifo = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const int outcome = in_child([&] {
    const genid::OpenResult result = genid::open_vmclock(fifo);
    return !result.ok && result.error == fifo + ": not a character device or regular file" ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

TEST(Fifo, AutoModeProbingFifosEndsKernelBackedWithNotes) {
  const std::string vmclock = testing::temp_path("fifo"), counter = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(vmclock.c_str(), 0644), 0);
  ASSERT_EQ(mkfifo(counter.c_str(), 0644), 0);
  const int outcome = in_child([&] {
    expect_kernel_with_note({{"SNAPSAFE_VMCLOCK_PATH", vmclock},
                             {"SNAPSAFE_SYSGENID_PATH", "/nonexistent/sysgenid"},
                             {"SNAPSAFE_COUNTER_FILE", counter}},
                            counter + ": not a regular file");
    EXPECT_THAT(notes_of(status()), HasSubstr(vmclock + ": not a character device"));
    return ::testing::Test::HasFailure() ? 1 : 0;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

TEST(Fifo, ToolFunctionsNeverBlockOnOne) {
  const std::string fifo = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const int outcome = in_child([&] {
    genid::Generation generation;
    const bool refused = genid::counter_file_bump(fifo, &generation) != "" &&
                         genid::counter_file_read(fifo, &generation) != "";
    return refused ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
}

// ---- Symbolic links.

TEST(Symlink, AtTheLastComponentIsRefused) {
  // Without O_NOFOLLOW the link was followed to whatever it names (here a valid file).
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  const std::string target = counter_in(dir);
  const std::string link = dir + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(genid::open_counter_file(link).error, HasSubstr("refused: a symbolic link"));
  genid::Generation generation;
  EXPECT_THAT(genid::counter_file_bump(link, &generation), HasSubstr("symbolic link"));
  EXPECT_TRUE(genid::open_counter_file(target).ok) << "control: the target itself is fine";
}

TEST(Symlink, OnTheWayIsFollowedWhenItsOwnerIsTrusted) {
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  counter_in(dir);
  const std::string link = testing::temp_path("dirlink");
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  EXPECT_TRUE(genid::open_counter_file(link + "/generation").ok);
  // A relative link, and ".." on the way.
  const std::string relative = testing::temp_path("rel");
  ASSERT_EQ(
      symlink(
          ("./" + dir.substr(dir.rfind('/') + 1) + "/../" + dir.substr(dir.rfind('/') + 1)).c_str(),
          relative.c_str()),
      0);
  const genid::OpenResult result = genid::open_counter_file(relative + "/generation");
  EXPECT_TRUE(result.ok) << result.error;
}

TEST(Symlink, OnTheWayOwnedBySomeoneElseIsRefused) {
  REQUIRE_OTHER_USER();
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  counter_in(dir);
  const std::string link = testing::temp_path("dirlink");
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  ASSERT_EQ(lchown(link.c_str(), kNobody, kNobody), 0);
  EXPECT_THAT(genid::open_counter_file(link + "/generation").error,
              HasSubstr("refused: symbolic link " + link + " is owned by another user"));
}

// ---- (f) Who can write it. Without the checks (the old open), every open_counter_file
// below succeeded: a file anyone could rewrite or replace became the generation source.

TEST(Trust, FileWritableByOthersIsRefused) {
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  const std::string path = counter_in(dir);
  for (mode_t mode : {0666, 0646, 0664, 0620}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    EXPECT_THAT(genid::open_counter_file(path).error,
                HasSubstr(path + ": refused: the file is writable by group or others"))
        << std::oct << mode;
  }
  expect_kernel_with_note({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path}},
                          "refused: the file is writable by group or others");
  genid::Generation generation;
  EXPECT_THAT(genid::counter_file_bump(path, &generation), HasSubstr("writable by group"));
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_TRUE(genid::open_counter_file(path).ok) << "control: 0644 is fine";
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(genid::open_counter_file(path).ok) << "control: 0600 is fine";
}

TEST(Trust, FileOwnedBySomeoneElseIsRefused) {
  REQUIRE_OTHER_USER();
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  const std::string path = counter_in(dir);
  ASSERT_EQ(chown(path.c_str(), kNobody, kNobody), 0);
  EXPECT_THAT(genid::open_counter_file(path).error,
              HasSubstr("refused: the file is owned by another user (neither root nor the "
                        "effective user) (uid 65534"));
}

TEST(Trust, DirectoryWritableByOthersIsRefused) {
  for (mode_t mode : {0777, 0770, 0757}) {
    const std::string dir = testing::temp_path("dir");
    const std::string path = counter_in_new_dir(dir, mode);
    EXPECT_THAT(
        genid::open_counter_file(path).error,
        HasSubstr("refused: directory " + dir + " is writable by group or others and not sticky"))
        << std::oct << mode;
  }
  expect_kernel_with_note(
      {{"SNAPSAFE_SOURCE", "counter-file"},
       {"SNAPSAFE_COUNTER_FILE", counter_in_new_dir(testing::temp_path("dir"), 0777)}},
      "is writable by group or others and not sticky");
}

TEST(Trust, AnyDirectoryOnTheWayCounts) {
  const std::string outer = make_dir(testing::temp_path("outer"), 0755);
  const std::string path = counter_in_new_dir(outer + "/inner", 0755);
  ASSERT_EQ(chmod(outer.c_str(), 0777), 0);
  EXPECT_THAT(genid::open_counter_file(path).error,
              HasSubstr("refused: directory " + outer + " is writable"));
  // What that allows: anyone renames `inner` away and puts their own tree in its place.
}

TEST(Trust, DirectoryOwnedBySomeoneElseIsRefused) {
  REQUIRE_OTHER_USER();
  const std::string dir = make_dir(testing::temp_path("dir"), 0755);
  const std::string path = counter_in(dir);
  ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);
  EXPECT_THAT(genid::open_counter_file(path).error,
              HasSubstr("refused: directory " + dir + " is owned by another user"));
}

TEST(Trust, StickyDirectoryIsAcceptedForATrustedFile) {
  // Documented choice (file_trust.h): in a sticky directory only the entry's owner, the
  // directory's owner and root can rename or unlink the entry.
  const std::string dir = testing::temp_path("sticky");
  const std::string path = counter_in_new_dir(dir, 01777);
  const genid::OpenResult result = genid::open_counter_file(path);
  EXPECT_TRUE(result.ok) << result.error;
}

TEST(Trust, StickyDirectoryButSomeoneElsesFileOrDirectoryIsRefused) {
  REQUIRE_OTHER_USER();
  const std::string dir = testing::temp_path("sticky");
  const std::string path = counter_in_new_dir(dir, 01777);
  ASSERT_EQ(chown(path.c_str(), kNobody, kNobody), 0);
  EXPECT_THAT(genid::open_counter_file(path).error, HasSubstr("the file is owned by another"));
  ASSERT_EQ(chown(path.c_str(), 0, 0), 0);
  ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);
  EXPECT_THAT(genid::open_counter_file(path).error, HasSubstr("directory " + dir + " is owned"));
}

TEST(Trust, StickyDirectoryReallyKeepsOthersFromReplacingTheFile) {
  REQUIRE_OTHER_USER();
  // The reason the sticky rule is safe, shown: nobody can rename over root's file in a
  // sticky world-writable directory. Control: without the sticky bit they can.
  ScratchDir scratch;
  for (const bool sticky : {true, false}) {
    const std::string dir = scratch.path() + (sticky ? "/sticky" : "/open");
    const std::string path = counter_in_new_dir(dir, sticky ? 01777 : 0777);
    const int outcome = as_nobody([&] {
      const std::string mine = dir + "/mine";
      const int fd = open(mine.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0) return 2;
      close(fd);
      return rename(mine.c_str(), path.c_str()) == 0 ? 0 : 1;  // 0: replaced root's file
    });
    ASSERT_TRUE(WIFEXITED(outcome)) << describe(outcome);
    EXPECT_EQ(WEXITSTATUS(outcome), sticky ? 1 : 0) << (sticky ? "sticky" : "not sticky");
    EXPECT_EQ(genid::open_counter_file(path).ok, sticky);
  }
}

TEST(Trust, AnUnprivilegedUserTrustsItsOwnAndRootsFilesOnly) {
  REQUIRE_OTHER_USER();
  ScratchDir scratch;
  const std::string mine = make_dir(scratch.path() + "/mine", 0755);
  ASSERT_EQ(chown(mine.c_str(), kNobody, kNobody), 0);
  const std::string roots = counter_in(make_dir(scratch.path() + "/roots", 0755));
  const std::string others = counter_in(make_dir(scratch.path() + "/others", 0755));
  ASSERT_EQ(chown(others.c_str(), 1234, 1234), 0);
  const int outcome = as_nobody([&] {
    if (genid::counter_file_create(mine + "/generation") != "") return 1;
    if (!genid::open_counter_file(mine + "/generation").ok) return 2;  // its own file
    if (!genid::open_counter_file(roots).ok) return 3;                 // root's file
    const std::string error = genid::open_counter_file(others).error;  // uid 1234's file
    if (error.find("the file is owned by another user") == std::string::npos) return 4;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << describe(outcome);
  // As root, the file the unprivileged user made is not trusted.
  EXPECT_THAT(genid::open_counter_file(mine + "/generation").error,
              HasSubstr("is owned by another user"));
}

TEST(Trust, VmclockStandInFollowsTheSameRules) {
  testing::SimulatedSource source(testing::Simulated::kVmclock);
  EXPECT_TRUE(genid::open_vmclock(source.path()).ok);
  ASSERT_EQ(chmod(source.path().c_str(), 0666), 0);
  EXPECT_THAT(genid::open_vmclock(source.path()).error, HasSubstr("writable by group or others"));
}

// ---- Beneath a given root (snapsafe_counter --root /proc/PID/root): the path,
// absolute symlinks and ".." stay beneath it; errno tells a missing file from a refusal.
// tests/criu:task_root_test does the same through the tool and the hook, with a real
// second mount namespace and the negative control (the old text path bumps the host's file).

struct RootFixture {
  std::string base = make_dir(testing::temp_path("beneath"), 0755);
  std::string rootfs = make_dir(base + "/rootfs", 0755);
  std::string inner = counter_in(make_dir(rootfs + "/c", 0755));  // rootfs/c/generation
  std::string outer = counter_in(make_dir(base + "/c", 0755));    // base/c/generation
  int root = -1;
  RootFixture() {
    make_dir(rootfs + "/run", 0755);
    EXPECT_EQ(symlink("/c", (rootfs + "/run/abs").c_str()), 0);
    EXPECT_EQ(symlink("../../../../../c", (rootfs + "/run/up").c_str()), 0);
    std::string error;
    root = genid::open_root_directory(rootfs, &error);
    EXPECT_GE(root, 0) << error;
  }
  ~RootFixture() { close(root); }
  ino_t inode_of(const std::string& path) {
    struct stat st = {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  }
};

TEST(BeneathRoot, PathsAbsoluteLinksAndDotDotStayBeneathTheRoot) {
  RootFixture f;
  for (const char* path : {"/c/generation", "c/generation", "/../../c/generation",
                           "/c/../../c/generation", "/run/abs/generation", "/run/up/generation"}) {
    struct stat st;
    std::string error;
    const int fd = genid::open_trusted(path, O_RDONLY, genid::LastComponent::kRegularNoFollow, &st,
                                       &error, f.root);
    EXPECT_GE(fd, 0) << path << ": " << error;
    EXPECT_EQ(st.st_ino, f.inode_of(f.inner)) << path << " left the root";
    if (fd >= 0) close(fd);
  }
  genid::Generation before_outer, before_inner, after;
  ASSERT_EQ(genid::counter_file_read(f.outer, &before_outer), "");
  ASSERT_EQ(genid::counter_file_read(f.inner, &before_inner), "");
  EXPECT_EQ(genid::counter_file_bump("/run/abs/generation", &after, f.root), "");
  EXPECT_NE(after, before_inner);
  genid::Generation inner_now = 0;
  ASSERT_EQ(genid::counter_file_read(f.inner, &inner_now), "");
  EXPECT_EQ(inner_now, after) << "the file beneath the root was bumped";
  ASSERT_EQ(genid::counter_file_read(f.outer, &after), "");
  EXPECT_EQ(after, before_outer) << "the file outside the root was bumped";
}

TEST(BeneathRoot, MissingIsToldApartFromRefused) {
  RootFixture f;
  genid::Generation generation;
  bool missing = false;
  EXPECT_THAT(genid::counter_file_bump("/c/none", &generation, f.root, &missing),
              HasSubstr("No such file"));
  EXPECT_TRUE(missing);
  missing = false;
  EXPECT_NE(genid::counter_file_read("/none/generation", &generation, f.root, &missing), "");
  EXPECT_TRUE(missing) << "a missing directory on the way";
  ASSERT_EQ(mkfifo((f.rootfs + "/c/fifo").c_str(), 0644), 0);
  EXPECT_THAT(genid::counter_file_bump("/c/fifo", &generation, f.root, &missing),
              HasSubstr("not a regular file"));
  EXPECT_FALSE(missing);
  EXPECT_THAT(genid::counter_file_bump("/c/..", &generation, f.root, &missing),
              HasSubstr("not a regular file"));
  EXPECT_FALSE(missing);
  ASSERT_EQ(chmod((f.rootfs + "/c").c_str(), 0777), 0);
  EXPECT_THAT(genid::counter_file_bump("/c/generation", &generation, f.root, &missing),
              HasSubstr("refused: directory /c is writable by group or others"));
  EXPECT_FALSE(missing);
  EXPECT_THAT(genid::counter_file_create("/c/new", nullptr, f.root),
              HasSubstr("refused: directory /c"));
}

TEST(BeneathRoot, CreateAndReadWorkBeneathTheRoot) {
  RootFixture f;
  EXPECT_EQ(genid::counter_file_create("/run/abs/made", nullptr, f.root), "");
  struct stat st;
  EXPECT_EQ(stat((f.rootfs + "/c/made").c_str(), &st), 0) << "created beneath the root";
  EXPECT_NE(stat((f.base + "/c/made").c_str(), &st), 0);
  genid::Generation generation;
  EXPECT_EQ(genid::counter_file_read("/c/made", &generation, f.root), "");
}

TEST(BeneathRoot, TheRootMustBeAbsoluteATrustedDirectory) {
  RootFixture f;
  std::string error;
  EXPECT_EQ(genid::open_root_directory("relative", &error), -1);
  EXPECT_THAT(error, HasSubstr("absolute"));
  EXPECT_EQ(genid::open_root_directory(f.inner, &error), -1);
  EXPECT_THAT(error, HasSubstr("Not a directory"));
  EXPECT_EQ(genid::open_root_directory(f.base + "/none", &error), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(chmod(f.rootfs.c_str(), 0777), 0);
  EXPECT_EQ(genid::open_root_directory(f.rootfs, &error), -1);
  EXPECT_THAT(error, HasSubstr("refused: directory / is writable by group or others"));
  // An open root is checked again at every walk.
  genid::Generation generation;
  EXPECT_THAT(genid::counter_file_bump("/c/generation", &generation, f.root),
              HasSubstr("refused: directory /"));
}

}  // namespace
}  // namespace snapsafe
