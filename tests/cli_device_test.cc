// `snapsafe genid read|bump|wait` on the SysGenID device (tools/sysgenid_device.h), against
// the fake character device (tests/fake_sysgenid.h, which models the ioctls the way
// kernel_shim/sysgenid.c does). The end-to-end checks of the tool itself (a FIFO, a regular
// file, /dev/zero at the path) are in tests/snapsafe_cli_test.sh.
//
// Each test that pins a fix says what it saw without the fix; each negative control puts
// the old behaviour back with tools::g_device_test_flags.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <linux/sysgenid.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fake_sysgenid.h"
#include "tests/test_util.h"
#include "tools/sysgenid_device.h"

namespace snapsafe {
namespace {

namespace fake = testing::fake_sysgenid;
using ::testing::HasSubstr;
using tools::DeviceUse;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

class CliDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    fake::install();
    path_ = testing::temp_path("sysgenid");
    fake::create_node(path_, 5);
  }
  void TearDown() override {
    tools::g_device_test_flags = {};
    for (int d = 0; d < fake::kMaxDescriptions; ++d) fake::kernel().tracked[d] = false;
  }
  std::string path_;
};

// The outcome of one wait.
struct Waited {
  std::string error;
  uint32_t generation = 0;
  uint32_t wait_calls = 0;  // SYSGENID_WAIT_WATCHERS ioctls it made
  double ms = 0, cpu = 0;   // wall-clock and process CPU time it took
};

Waited wait_on(const std::string& path, uint64_t timeout_ms) {
  Waited w;
  const int fd = tools::open_sysgenid_device(path, DeviceUse::kWait, &w.error);
  if (fd < 0) return w;
  const uint32_t calls = fake::kernel().wait_calls;
  const auto start = Clock::now();
  const double cpu_start = cpu_ms();
  w.error = tools::sysgenid_device_wait(fd, path, timeout_ms, &w.generation);
  w.ms = ms_since(start);
  w.cpu = cpu_ms() - cpu_start;
  w.wait_calls = fake::kernel().wait_calls - calls;
  close(fd);
  return w;
}

// ---- 4.2: genid wait acknowledges, and never spins ----

TEST_F(CliDevice, WaitOpensTheDeviceReadWrite) {
  std::string error;
  const int fd = tools::open_sysgenid_device(path_, DeviceUse::kWait, &error);
  ASSERT_GE(fd, 0) << error;
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
  EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  close(fd);
}

// A tracked watcher (the test) is outdated, so the tool's wait blocks; the generation
// moves again while it waits (EINTR: its own descriptor is outdated now); the watcher
// acknowledges 100 ms later. The wait acknowledges the change on its own descriptor,
// waits again, and returns once the watcher is done: two ioctls.
TEST_F(CliDevice, WaitAcknowledgesEachChangeAndReturnsWhenWatchersAreDone) {
  const int watcher = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fake::description(watcher), 0);
  ASSERT_EQ(ioctl(watcher, SYSGENID_SET_WATCHER_TRACKING, 1), 0);
  fake::bump();  // 6: the watcher is outdated
  const uint32_t accepted = fake::kernel().writes_accepted;
  std::thread overseer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const uint32_t now = fake::bump();  // 7: the waiter is outdated too
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(write(watcher, &now, 4), 4);  // the watcher adapts
  });
  const Waited w = wait_on(path_, 10000);
  overseer.join();
  EXPECT_EQ(w.error, "");
  EXPECT_EQ(w.generation, 7u);
  EXPECT_EQ(w.wait_calls, 2u);
  EXPECT_EQ(fake::kernel().writes_accepted, accepted + 2) << "the waiter's and the watcher's";
  EXPECT_GE(w.ms, 100.0);
  EXPECT_LT(w.ms, 5000.0);
  std::printf("wait through one change: %u ioctls, %.0f ms, %.1f ms CPU\n", w.wait_calls, w.ms,
              w.cpu);
  close(watcher);
}

// The old read-only descriptor: its acknowledgement fails (EBADF). Now that is an error
// at once, after one ioctl.
TEST_F(CliDevice, AFailedAcknowledgementIsAnErrorNotASpin) {
  tools::g_device_test_flags.plain_open = true;  // the old read-only open
  fake::bump();  // the generation moved: the waiter must acknowledge
  std::string error;
  const int fd = tools::open_sysgenid_device(path_, DeviceUse::kWait, &error);
  ASSERT_GE(fd, 0) << error;
  fake::bump();  // 7: its description is outdated
  const uint32_t calls = fake::kernel().wait_calls;
  const auto start = Clock::now();
  uint32_t generation = 0;
  error = tools::sysgenid_device_wait(fd, path_, 1000, &generation);
  const double ms = ms_since(start);
  EXPECT_EQ(error, path_ +
                       ": cannot acknowledge generation 7 (write: Bad file descriptor); "
                       "without it every wait returns at once (EINTR)");
  EXPECT_EQ(fake::kernel().wait_calls - calls, 1u);
  EXPECT_LT(ms, 500.0);
  close(fd);
}

// The negative control: the old tool (read-only descriptor, failed acknowledgement
// ignored) spins through EINTR for the whole timeout. Measured here: over 1 s, tens of
// thousands of ioctls (73294 on a loaded 2-core machine) and a core's share of CPU
// (printed); the fixed wait makes one.
TEST_F(CliDevice, NegativeControlTheOldReadOnlyWaitSpins) {
  tools::g_device_test_flags.plain_open = true;
  tools::g_device_test_flags.ignore_failed_acknowledgement = true;
  std::string error;
  const int fd = tools::open_sysgenid_device(path_, DeviceUse::kWait, &error);
  ASSERT_GE(fd, 0) << error;
  fake::bump();
  const uint32_t calls = fake::kernel().wait_calls;
  const double cpu_start = cpu_ms();
  const auto start = Clock::now();
  uint32_t generation = 0;
  error = tools::sysgenid_device_wait(fd, path_, 1000, &generation);
  const double ms = ms_since(start), cpu = cpu_ms() - cpu_start;
  const uint32_t made = fake::kernel().wait_calls - calls;
  std::printf("old read-only wait, 1 s timeout: %u ioctls (all EINTR), %.0f ms, %.0f ms CPU\n",
              made, ms, cpu);
  EXPECT_THAT(error, HasSubstr("timed out after 1000 ms"));
  EXPECT_GT(made, 1000u) << "it spun";
  EXPECT_GT(cpu, 50.0) << "busy, not blocked";
  close(fd);
}

TEST_F(CliDevice, WaitTimesOutWhileAWatcherLags) {
  const int watcher = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_EQ(ioctl(watcher, SYSGENID_SET_WATCHER_TRACKING, 1), 0);
  fake::bump();  // the watcher never acknowledges
  const Waited w = wait_on(path_, 200);
  EXPECT_EQ(w.error, path_ +
                         ": timed out after 200 ms: some watchers have not acknowledged "
                         "the generation");
  EXPECT_LE(w.wait_calls, 2u);
  EXPECT_LT(w.cpu, 150.0) << "blocked in the ioctl, not spinning";
  close(watcher);
}

// ---- 4.8: never blocks in open() ----

// Runs `body` in a child; returns whether it finished within `ms` (else it is killed).
bool finishes_within(const std::function<void()>& body, int ms, int* status) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    body();
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  const auto start = Clock::now();
  while (ms_since(start) < ms) {
    if (waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return false;
}

// Without the fix: open() of a FIFO with no writer blocked every genid command forever.
TEST_F(CliDevice, AFifoAtThePathIsRefusedWithoutBlocking) {
  const std::string fifo = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const DeviceUse use : {DeviceUse::kRead, DeviceUse::kBump, DeviceUse::kWait}) {
    int status = 0;
    EXPECT_TRUE(finishes_within(
        [&] {
          std::string error;
          EXPECT_EQ(tools::open_sysgenid_device(fifo, use, &error), -1);
          EXPECT_EQ(error, fifo + ": not a character device or regular file");
        },
        2000, &status));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  unlink(fifo.c_str());
}

TEST_F(CliDevice, NegativeControlTheOldOpenBlocksOnAFifo) {
  const std::string fifo = testing::temp_path("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  tools::g_device_test_flags.plain_open = true;
  int status = 0;
  EXPECT_FALSE(finishes_within(
      [&] {
        std::string error;
        (void)tools::open_sysgenid_device(fifo, DeviceUse::kRead, &error);
      },
      1000, &status))
      << "the old open() returned";
  unlink(fifo.c_str());
}

TEST_F(CliDevice, ARegularFileIsNoDevice) {
  const std::string file = testing::temp_path("file");
  const int made = open(file.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_EQ(ftruncate(made, 4096), 0);
  close(made);
  std::string error;
  EXPECT_EQ(tools::open_sysgenid_device(file, DeviceUse::kRead, &error), -1);
  EXPECT_EQ(error, file + ": not a character device (a regular file is no SysGenID device)");
  chmod(file.c_str(), 0666);
  EXPECT_EQ(tools::open_sysgenid_device(file, DeviceUse::kRead, &error), -1);
  EXPECT_THAT(error, HasSubstr("refused: the file is writable by group or others"));
  unlink(file.c_str());
}

// ---- 4.9: the trigger, and a saturated device ----

TEST_F(CliDevice, TriggerAndSaturation) {
  std::string error;
  const int fd = tools::open_sysgenid_device(path_, DeviceUse::kBump, &error);
  ASSERT_GE(fd, 0) << error;
  uint32_t generation = 0;
  EXPECT_EQ(tools::sysgenid_device_generation(fd, path_, &generation), "");
  EXPECT_EQ(generation, 5u);
  EXPECT_EQ(tools::sysgenid_device_trigger(fd, path_, 0, &generation), "");
  EXPECT_EQ(generation, 6u);
  EXPECT_EQ(tools::sysgenid_device_trigger(fd, path_, 100, &generation), "");
  EXPECT_EQ(generation, 100u);
  fake::set_generation(0xffffffffu);
  EXPECT_THAT(tools::sysgenid_device_trigger(fd, path_, 0, &generation),
              HasSubstr("SYSGENID_TRIGGER_GEN_UPDATE: the generation is saturated at "
                        "4294967295"));
  close(fd);
}

}  // namespace
}  // namespace snapsafe
