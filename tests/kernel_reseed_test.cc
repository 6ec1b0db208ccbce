// `snapsafe genid bump --reseed-kernel` (tools/kernel_reseed.h): the ioctls it makes on
// /dev/urandom and their arguments, seen through the tool's ioctl seam; the real calls as
// root (they succeed); and the calls without privilege (EPERM, said plainly).
// Whether the kernel's CRNG output really changed cannot be seen from here: the VM suite
// (tests/vm) is where a same-GUID clone shows it.
#include "tools/kernel_reseed.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rng/internal/hardware_rng.h"

namespace snapsafe {
namespace {

using ::testing::HasSubstr;

struct Call {
  unsigned long request;
  bool urandom;  // the descriptor is /dev/urandom (character device 1:9)
  int entropy_count = -1;
  int buf_size = -1;
  std::vector<uint64_t> words;
  bool null_argument;
};
std::vector<Call> g_calls;
int g_fail_with = 0;  // errno for every call, 0: succeed

int observe(int fd, unsigned long request, void* argument) {
  Call call{request, false, -1, -1, {}, argument == nullptr};
  struct stat st;
  call.urandom = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
                 minor(st.st_rdev) == 9;
  if (request == RNDADDENTROPY && argument != nullptr) {
    const auto* info = static_cast<const rand_pool_info*>(argument);
    call.entropy_count = info->entropy_count;
    call.buf_size = info->buf_size;
    call.words.resize(static_cast<size_t>(info->buf_size) / 8);
    std::memcpy(call.words.data(), info->buf, call.words.size() * 8);
  }
  g_calls.push_back(call);
  if (g_fail_with != 0) {
    errno = g_fail_with;
    return -1;
  }
  return 0;
}

class KernelReseed : public ::testing::Test {
 protected:
  void SetUp() override {
    g_calls.clear();
    g_fail_with = 0;
  }
  void TearDown() override { tools::g_kernel_ioctl = saved_; }
  tools::KernelIoctl saved_ = tools::g_kernel_ioctl;
};

TEST_F(KernelReseed, MixesTheGenerationThenReseedsTheCrng) {
  tools::g_kernel_ioctl = &observe;
  const tools::KernelReseedReport report = tools::reseed_kernel(0x1122334455667788u);
  ASSERT_EQ(g_calls.size(), 2u);
  const Call& mix = g_calls[0];
  EXPECT_EQ(mix.request, static_cast<unsigned long>(RNDADDENTROPY));
  EXPECT_TRUE(mix.urandom);
  EXPECT_EQ(mix.entropy_count, 0) << "mixing only: no entropy credited";
  const int hardware = rng_internal::hardware_rng_present() ? report.hardware_words : 0;
  EXPECT_EQ(mix.buf_size, 8 * (1 + hardware + 1)) << "generation, RDRAND words, cycle counter";
  ASSERT_GE(mix.words.size(), 2u);
  EXPECT_EQ(mix.words[0], 0x1122334455667788u) << "the new generation comes first";
  EXPECT_NE(mix.words.back(), 0u) << "the cycle counter";
  if (rng_internal::hardware_rng_present() && report.hardware_words > 0) {
    EXPECT_EQ(report.hardware_words, 4);
    EXPECT_NE(mix.words[1], mix.words[2]);
  }
  const Call& reseed = g_calls[1];
  EXPECT_EQ(reseed.request, static_cast<unsigned long>(RNDRESEEDCRNG));
  EXPECT_TRUE(reseed.urandom);
  EXPECT_TRUE(reseed.null_argument);
  EXPECT_TRUE(report.done());
  EXPECT_THAT(report.describe(), HasSubstr("mixed into the pool: yes"));
  EXPECT_THAT(report.describe(), HasSubstr("CRNG reseeded: yes"));
}

TEST_F(KernelReseed, EachFailureIsSaidAndTheReseedIsStillTried) {
  tools::g_kernel_ioctl = &observe;
  g_fail_with = EPERM;
  const tools::KernelReseedReport report = tools::reseed_kernel(7);
  EXPECT_EQ(g_calls.size(), 2u) << "RNDRESEEDCRNG is tried even if RNDADDENTROPY failed";
  EXPECT_FALSE(report.done());
  EXPECT_EQ(report.describe(),
            "mixed into the pool: no (EPERM: needs CAP_SYS_ADMIN); CRNG reseeded: no (EPERM: "
            "needs CAP_SYS_ADMIN)");
  g_calls.clear();
  g_fail_with = ENOTTY;  // RNDRESEEDCRNG before Linux 4.17
  EXPECT_THAT(tools::reseed_kernel(7).describe(), HasSubstr("not supported by this kernel"));
}

// Real root: uid 0 outside any user namespace (Bazel's sandbox maps uid 0 into one, where
// CAP_SYS_ADMIN does not reach the kernel's RNG; this target runs unsandboxed).
bool real_root() {
  std::ifstream map("/proc/self/uid_map");
  unsigned long inside = 1, outside = 1, count = 0;
  map >> inside >> outside >> count;
  return geteuid() == 0 && inside == 0 && outside == 0 && count == 4294967295ul;
}

TEST_F(KernelReseed, AsRootBothIoctlsSucceed) {
  if (!real_root()) GTEST_SKIP() << "needs real root (not in a user namespace)";
  const tools::KernelReseedReport report = tools::reseed_kernel(12345);
  EXPECT_TRUE(report.mixed) << report.describe();
  EXPECT_TRUE(report.reseeded) << report.describe();
}

TEST_F(KernelReseed, WithoutPrivilegeItSaysEperm) {
  if (!real_root()) GTEST_SKIP() << "needs real root to drop privileges to uid 65534";
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(9);
    }
    const std::string line = tools::reseed_kernel(1).describe();
    if (write(pipe_fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      _exit(8);
    }
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string line;
  char buffer[512];
  for (ssize_t got; (got = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) line.append(buffer, got);
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(line,
            "mixed into the pool: no (EPERM: needs CAP_SYS_ADMIN); CRNG reseeded: no (EPERM: "
            "needs CAP_SYS_ADMIN)");
}

}  // namespace
}  // namespace snapsafe
