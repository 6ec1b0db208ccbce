// random_device("kernel") and the fork-safe one-time setup.
//
// random_device("kernel") goes straight to kernel_output(), not through a draw's slow path.
// It used to skip the one-time setup (rng/internal/setup.h) that fork()'s handlers wait
// for, so its RDRAND probe ran as a bare C++ static initializer: a fork() while another
// thread was inside it left the child waiting on the half-done guard forever (4 of 4
// runs). kernel_output() now runs library_setup() itself.
//
// The scenario runs in a process started for it (SNAPSAFE_KERNEL_SETUP_FORK: nothing was
// set up before; the one-time setup cannot be undone in a process). A thread's first
// random_device("kernel") value parks inside the setup (test hook inside_setup: inside the
// RDRAND probe's static guard) until the main thread's fork() has returned, or for 1 s
// (with the fix, fork() waits for the setup, so the park's time runs out first). The child
// asks random_device("kernel") for a value under alarm(2); its exit status (or 128 + its
// signal) goes to SNAPSAFE_KERNEL_SETUP_FORK_FD. Mode 'n': kernel_output() skips the setup
// (hook kernel_output_skips_setup, the negative control): the child hangs until SIGALRM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "rng/internal/test_hooks.h"
#include "rng/random_device.h"
#include "tests/setup_fork_scenario.h"

namespace snapsafe {
namespace {

bool run_scenario_if_asked() {
  const char* mode = std::getenv("SNAPSAFE_KERNEL_SETUP_FORK");
  const char* fd = std::getenv("SNAPSAFE_KERNEL_SETUP_FORK_FD");
  if (mode == nullptr || fd == nullptr) return false;
  alarm(20);  // never hang the test, whatever happens below
  if (std::strchr(mode, 'n') != nullptr) {
    rng_internal::g_test_hooks.kernel_output_skips_setup = true;
  }
  testing::fork_during_setup(
      [] {
        random_device device("kernel");
        (void)device();
      },
      [] {
        random_device device("kernel");
        unsigned int value = 0;
        for (int i = 0; i < 4 && value == 0; ++i) value = device();
        return value != 0;
      },
      std::atoi(fd));
}
const bool g_scenario = run_scenario_if_asked();

// Runs this binary again in `mode`; returns {its exit status, the child's status byte}.
std::pair<int, int> run_scenario(const char* mode) {
  EXPECT_FALSE(g_scenario);
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::string env[] = {std::string("SNAPSAFE_KERNEL_SETUP_FORK=") + mode,
                               "SNAPSAFE_KERNEL_SETUP_FORK_FD=" + std::to_string(fds[1]),
                               "SNAPSAFE_SOURCE=kernel"};
    char* envp[] = {const_cast<char*>(env[0].c_str()), const_cast<char*>(env[1].c_str()),
                    const_cast<char*>(env[2].c_str()), nullptr};
    char arg0[] = "kernel_setup_fork_test";
    char* argv[] = {arg0, nullptr};
    execve("/proc/self/exe", argv, envp);
    _exit(6);
  }
  close(fds[1]);
  uint8_t report = 255;
  const bool got = read(fds[0], &report, 1) == 1;
  close(fds[0]);
  int raw = 0;
  waitpid(pid, &raw, 0);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), got ? report : -1};
}

TEST(KernelRandomDevice, ForkDuringItsFirstCallTheChildDoesNotHang) {
  const auto [status, child] = run_scenario("");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(child, 0) << "the child's random_device(\"kernel\") returned a value";
}

TEST(KernelRandomDevice, NegativeControlOutsideTheSetupTheChildHangs) {
  const auto [status, child] = run_scenario("n");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(child, 128 + SIGALRM) << "the child waits on the half-done static guard";
}

}  // namespace
}  // namespace snapsafe
