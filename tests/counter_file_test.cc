// The counter file (and the file-backed sources' opening) under abuse. Each hazard is
// provoked for real; each test fails without its fix (noted at each test), and where the
// hazard itself needs showing, a negative control shows it.
//
//  (e) a FIFO at the path never blocks the open (counter file, VMClock, auto mode);
//  (f) a file or directory someone else can write is refused, with a note saying why.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/vmclock.h"
#include "rng/fill.h"
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
#define REQUIRE_OTHER_USER()                                                          \
  if (!other_user_available())                                                        \
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
    return !result.ok && result.error == fifo + ": not a character device or regular file" ? 0
                                                                                             : 1;
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
  ASSERT_EQ(symlink(("./" + dir.substr(dir.rfind('/') + 1) + "/../" +
                     dir.substr(dir.rfind('/') + 1)).c_str(),
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
    EXPECT_THAT(genid::open_counter_file(path).error,
                HasSubstr("refused: directory " + dir +
                          " is writable by group or others and not sticky"))
        << std::oct << mode;
  }
  expect_kernel_with_note({{"SNAPSAFE_SOURCE", "counter-file"},
                           {"SNAPSAFE_COUNTER_FILE",
                            counter_in_new_dir(testing::temp_path("dir"), 0777)}},
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

}  // namespace
}  // namespace snapsafe
