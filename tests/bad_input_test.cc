// Bad input gets a clear error, never undefined behaviour, and never an unsafe mode:
// unknown random_device tokens, corrupt, truncated or missing counter files and devices,
// unknown settings, null pointers through the C API.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <functional>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capi/c_api.h"
#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/sysgenid.h"
#include "genid/vmclock.h"
#include "rng/fill.h"
#include "rng/random_device.h"
#include "rng/status.h"
#include "tests/simulated_source.h"

namespace snapsafe {
namespace {

using ::testing::HasSubstr;

std::string write_file(const std::string& bytes) {
  const std::string path = testing::temp_path("bad");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

// Selects with `settings`; expects the safe kernel-backed fallback, a note containing
// `why`, and working draws.
void expect_safe_fallback(const std::vector<std::pair<std::string, std::string>>& settings,
                          const std::string& why) {
  testing::use_source(settings);
  const Status s = status();
  EXPECT_EQ(s.source, SourceKind::kKernel);
  EXPECT_FALSE(s.buffered);
  EXPECT_TRUE(s.snapshot_safe);
  std::string notes;
  for (const std::string& note : s.notes) notes += note + "\n";
  EXPECT_THAT(notes, HasSubstr(why));
  testing::on_new_thread([] { EXPECT_NE(random_u64() | random_u64(), 0u); });
}

TEST(BadInput, UnknownRandomDeviceTokenNamesTheAcceptedOnes) {
  try {
    random_device device("rdrand-please");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown token \"rdrand-please\""));
    EXPECT_THAT(e.what(), HasSubstr("default"));
  }
  EXPECT_THROW(random_device(""), std::invalid_argument);
}

TEST(BadInput, CorruptCounterFile) {
  const std::string path = write_file(std::string("NOTMAGIC\x01\0\0\0\0\0\0\0", 16));
  EXPECT_THAT(genid::open_counter_file(path).error, HasSubstr("corrupt counter file"));
  expect_safe_fallback({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path}},
                       "corrupt counter file");
  // The tool side refuses it too instead of "repairing" a file others may rely on.
  genid::Generation generation;
  EXPECT_THAT(genid::counter_file_bump(path, &generation), HasSubstr("corrupt"));
}

TEST(BadInput, TruncatedCounterFile) {
  const std::string path = write_file("SSGENv1\n\x01");
  EXPECT_THAT(genid::open_counter_file(path).error, HasSubstr("truncated counter file (9 bytes"));
  expect_safe_fallback({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path}},
                       "truncated");
  EXPECT_THAT(genid::open_counter_file(write_file("")).error, HasSubstr("truncated"));
}

TEST(BadInput, CounterFileThatIsADirectory) {
  const std::string path = testing::temp_path("dir");
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
  EXPECT_THAT(genid::open_counter_file(path).error, HasSubstr("not a regular file"));
}

TEST(BadInput, MissingDevices) {
  expect_safe_fallback(
      {{"SNAPSAFE_SOURCE", "sysgenid"}, {"SNAPSAFE_SYSGENID_PATH", "/nonexistent/sysgenid"}},
      "/nonexistent/sysgenid: open: No such file or directory");
  expect_safe_fallback(
      {{"SNAPSAFE_SOURCE", "vmclock"}, {"SNAPSAFE_VMCLOCK_PATH", "/nonexistent/vmclock0"}},
      "/nonexistent/vmclock0: open: No such file or directory");
  expect_safe_fallback(
      {{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", "/nonexistent/generation"}},
      "No such file or directory");
}

TEST(BadInput, AutoWithNothingAvailableIsKernelBacked) {
  expect_safe_fallback({{"SNAPSAFE_SYSGENID_PATH", "/nonexistent/a"},
                        {"SNAPSAFE_VMCLOCK_PATH", "/nonexistent/b"},
                        {"SNAPSAFE_COUNTER_FILE", "/nonexistent/c"}},
                       "/nonexistent/c");
}

TEST(BadInput, TruncatedSysgenidStandIn) {
  genid::sysgenid_accept_regular_file_for_testing(true);
  expect_safe_fallback(
      {{"SNAPSAFE_SOURCE", "sysgenid"}, {"SNAPSAFE_SYSGENID_PATH", write_file("\x01")}},
      "truncated");
}

// ---- SysGenID paths nobody else may control ----
// SNAPSAFE_SYSGENID_PATH used to be opened with a plain open(): a 0666 file, or one of
// another user, was watched and buffered; its owner could hold the generation still, or
// truncate the file under the mapping and kill the process with SIGBUS.

// A SysGenID stand-in page at generation 7 (4096 bytes), mode `mode`, in a directory of
// /tmp that everyone may enter (so that uid 65534 reaches it too).
struct StandIn {
  std::string dir, path;
  explicit StandIn(mode_t mode) {
    char name[] = "/tmp/snapsafe-sysgenid.XXXXXX";
    EXPECT_NE(mkdtemp(name), nullptr);
    dir = name;
    EXPECT_EQ(chmod(dir.c_str(), 0755), 0);
    path = dir + "/sysgenid";
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd, 0);
    const uint32_t generation = 7;
    EXPECT_EQ(pwrite(fd, &generation, 4, 0), 4);
    EXPECT_EQ(ftruncate(fd, 4096), 0);
    close(fd);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);  // no umask
  }
  ~StandIn() {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  std::vector<std::pair<std::string, std::string>> settings() const {
    return {{"SNAPSAFE_SOURCE", "sysgenid"}, {"SNAPSAFE_SYSGENID_PATH", path}};
  }
};

// The switches back to production defaults after each test.
class SysgenidTrust : public ::testing::Test {
 protected:
  void TearDown() override {
    genid::sysgenid_trust_check_for_testing(true);
    genid::sysgenid_accept_regular_file_for_testing(false);
  }
};

// Runs `body` in a forked child (killed by SIGALRM after 10 s); its wait status.
int in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

int as_uid(uid_t uid, const std::function<int()>& body) {
  return in_child([&] {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) return 90;
    return body();
  });
}

TEST_F(SysgenidTrust, ARegularFileIsNoDeviceOutsideTests) {
  genid::sysgenid_accept_regular_file_for_testing(false);
  const StandIn file(0644);
  expect_safe_fallback(file.settings(),
                       "not a character device (a regular file stands in for "
                       "the SysGenID device only in tests)");
}

TEST_F(SysgenidTrust, AWorldWritableStandInIsRefused) {
  genid::sysgenid_accept_regular_file_for_testing(true);  // so that trust alone decides
  const StandIn file(0666);
  expect_safe_fallback(file.settings(), "refused: the file is writable by group or others");
}

TEST_F(SysgenidTrust, NegativeControlWithoutTheTrustCheckAWorldWritableFileIsWatched) {
  genid::sysgenid_accept_regular_file_for_testing(true);
  genid::sysgenid_trust_check_for_testing(false);
  const StandIn file(0666);
  testing::use_source(file.settings());
  EXPECT_EQ(status().source, SourceKind::kSysgenidMmap) << status().to_string();
  EXPECT_TRUE(status().buffered);
}

// In a child: watches `file` (mmap mode), lets uid `owner` truncate it, then draws.
// Exit 0: the draw worked; killed by SIGBUS: the truncation killed the process.
int truncated_by_its_owner(const StandIn& file, uid_t owner, bool trust_check) {
  return in_child([&] {
    genid::sysgenid_accept_regular_file_for_testing(true);
    genid::sysgenid_trust_check_for_testing(trust_check);
    testing::use_source(file.settings());
    const bool watched = status().source == SourceKind::kSysgenidMmap;
    const int truncated =
        as_uid(owner, [&] { return truncate(file.path.c_str(), 0) == 0 ? 0 : 1; });
    if (!WIFEXITED(truncated) || WEXITSTATUS(truncated) != 0) return 91;
    volatile uint64_t sink = random_u64();
    (void)sink;
    return watched ? 10 : 0;  // 10: watched, and not killed (the file was not shrunk?)
  });
}

// A stand-in of another user: refused, whoever runs (root, and uid 65534 in a child, for
// whom root's own files are trusted but uid 1's are not). Needs root to give files away.
TEST_F(SysgenidTrust, AStandInOfAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown a file to another user";
  genid::sysgenid_accept_regular_file_for_testing(true);
  StandIn file(0644);
  ASSERT_EQ(chown(file.path.c_str(), 65534, 65534), 0);
  expect_safe_fallback(file.settings(), "refused: the file is owned by another user");
  // Its owner could truncate it: the watching process survives (nothing is mapped).
  const int outcome = truncated_by_its_owner(file, 65534, /*trust_check=*/true);
  ASSERT_FALSE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 91)
      << "cannot become uid 65534 here (Bazel's linux-sandbox maps uid 0 only: the test is "
         "tagged no-sandbox for this)";
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << "child status " << outcome;
  // Unprivileged: uid 65534 is refused uid 1's file.
  ASSERT_EQ(truncate(file.path.c_str(), 4096), 0);
  ASSERT_EQ(chown(file.path.c_str(), 1, 1), 0);
  const int unprivileged = as_uid(65534, [&] {
    genid::sysgenid_accept_regular_file_for_testing(true);
    expect_safe_fallback(file.settings(), "refused: the file is owned by another user");
    return ::testing::Test::HasFailure() ? 1 : 0;
  });
  EXPECT_TRUE(WIFEXITED(unprivileged) && WEXITSTATUS(unprivileged) == 0)
      << "child status " << unprivileged;
}

// The hazard, without the trust check: another user's file is watched, and its owner
// truncates it under the mapping: the next draw dies of SIGBUS.
TEST_F(SysgenidTrust, NegativeControlWithoutTheTrustCheckTheOwnerKillsTheProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown a file to another user";
  StandIn file(0644);
  ASSERT_EQ(chown(file.path.c_str(), 65534, 65534), 0);
  const int outcome = truncated_by_its_owner(file, 65534, /*trust_check=*/false);
  ASSERT_FALSE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 91) << "cannot become uid 65534";
  EXPECT_TRUE(WIFSIGNALED(outcome) && WTERMSIG(outcome) == SIGBUS) << "child status " << outcome;
}

// Truncating a stand-in the process may watch: outside tests (the default) no regular file
// is mapped, so it never kills; the test-only stand-in (the guard off) does.
TEST_F(SysgenidTrust, TruncatingAStandInNeverKillsAProductionProcess) {
  const StandIn file(0644);
  const int outcome = in_child([&] {
    genid::sysgenid_accept_regular_file_for_testing(false);
    testing::use_source(file.settings());
    if (truncate(file.path.c_str(), 0) != 0) return 91;
    volatile uint64_t sink = random_u64();
    (void)sink;
    return status().source == SourceKind::kKernel ? 0 : 10;
  });
  EXPECT_TRUE(WIFEXITED(outcome) && WEXITSTATUS(outcome) == 0) << "child status " << outcome;
}

TEST_F(SysgenidTrust, NegativeControlAMappedStandInThatShrinksKills) {
  const StandIn file(0644);
  const int outcome = in_child([&] {
    genid::sysgenid_accept_regular_file_for_testing(true);
    testing::use_source(file.settings());
    if (status().source != SourceKind::kSysgenidMmap) return 92;
    if (truncate(file.path.c_str(), 0) != 0) return 91;
    volatile uint64_t sink = random_u64();
    (void)sink;
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(outcome) && WTERMSIG(outcome) == SIGBUS) << "child status " << outcome;
}

TEST(BadInput, UnknownSettings) {
  expect_safe_fallback({{"SNAPSAFE_SOURCE", "magic"}}, "SNAPSAFE_SOURCE=magic is not one of");
  expect_safe_fallback({{"SNAPSAFE_SOURCE", "sysgenid"}, {"SNAPSAFE_SYSGENID_MODE", "poll"}},
                       "SNAPSAFE_SYSGENID_MODE=poll is not one of: mmap, syscall");
}

TEST(BadInput, VmclockPagesThatAreNotUsable) {
  testing::SimulatedSource source(testing::Simulated::kVmclock);
  unsigned char* page = source.page();
  EXPECT_TRUE(genid::open_vmclock(source.path()).ok);  // the valid page, for contrast

  page[genid::kVmclockOffsetMagic] ^= 1;
  EXPECT_THAT(genid::open_vmclock(source.path()).error, HasSubstr("bad magic"));
  page[genid::kVmclockOffsetMagic] ^= 1;

  page[genid::kVmclockOffsetFlags + 1] = 0;  // clear bit 8: no generation counter
  EXPECT_THAT(genid::open_vmclock(source.path()).error, HasSubstr("flag bit 8 clear"));
  expect_safe_fallback({{"SNAPSAFE_SOURCE", "vmclock"}, {"SNAPSAFE_VMCLOCK_PATH", source.path()}},
                       "flag bit 8 clear");
  page[genid::kVmclockOffsetFlags + 1] = 1;

  page[genid::kVmclockOffsetVersion] = 2;
  EXPECT_THAT(genid::open_vmclock(source.path()).error, HasSubstr("unsupported VMClock version"));
  page[genid::kVmclockOffsetVersion] = 1;

  page[genid::kVmclockOffsetSize] = 100;  // size 100 < 112 (little-endian low byte)
  page[genid::kVmclockOffsetSize + 1] = 0;
  EXPECT_THAT(genid::open_vmclock(source.path()).error, HasSubstr("too small"));

  EXPECT_THAT(genid::open_vmclock(write_file("VCLK")).error, HasSubstr("truncated"));
}

// A device the process may not open. Root ignores file permissions, and CI runs as root:
// there the check runs in a child that gave root up (uid/gid 65534), on a file in a
// directory everyone may enter, so only the file's own mode refuses it.
TEST(BadInput, PermissionDeniedDevice) {
  char dir[] = "/tmp/snapsafe-perm.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chmod(dir, 0755), 0);
  const std::string path = std::string(dir) + "/sysgenid";
  {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, std::string(16, '\0').data(), 16), 16);
    close(fd);
  }
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  const auto check = [&] {
    expect_safe_fallback({{"SNAPSAFE_SOURCE", "sysgenid"}, {"SNAPSAFE_SYSGENID_PATH", path}},
                         "Permission denied");
  };
  if (geteuid() != 0) {
    check();
  } else {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(90);
      check();
      _exit(::testing::Test::HasFailure() ? 1 : 0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 90)
        << "cannot become uid 65534 here (Bazel's linux-sandbox maps uid 0 only: the test is "
           "tagged no-sandbox for this)";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  unlink(path.c_str());
  rmdir(dir);
}

TEST(BadInput, CApiRejectsNullAndShortBuffers) {
  uint8_t byte;
  EXPECT_EQ(snapsafe_fill(nullptr, 1), EINVAL);
  EXPECT_EQ(snapsafe_fill(nullptr, 0), 0);
  EXPECT_EQ(snapsafe_fill(&byte, 0), 0);
  EXPECT_EQ(snapsafe_u64(nullptr), EINVAL);
  char uuid[36];
  EXPECT_EQ(snapsafe_uuid_v4(uuid, sizeof uuid), EINVAL);
  EXPECT_EQ(snapsafe_uuid_v4(nullptr, 37), EINVAL);
  EXPECT_EQ(snapsafe_source_name(nullptr, 8), EINVAL);
  EXPECT_EQ(snapsafe_source_name(uuid, 0), EINVAL);
}

TEST(BadInput, ZeroLengthFillsAreFine) {
  fill(nullptr, 0);
  fill(std::span<std::byte>());
}

}  // namespace
}  // namespace snapsafe
