// pthread_cancel and the draw: a draw is noexcept, so a cancellation unwinding through it
// terminates the process. The kernel is reached through the raw getrandom system call,
// which is no cancellation point: a pending cancel is acted on at the application's next
// cancellation point, after the draw. Negative control: glibc's getrandom() wrapper (a
// cancellation point) aborts the process from inside the draw.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

std::atomic<bool> g_go{false};

void* drawing_thread(void*) {
  while (!g_go.load()) {
  }
  uint8_t bytes[16];
  fill(bytes, sizeof bytes);  // the cancel is already pending here
  pthread_testcancel();       // ... and acted on here
  return nullptr;
}

// Exit status of a child that cancels a thread just before it draws from the kernel
// (a getrandom system call): 0 when the thread ended at pthread_testcancel.
int cancel_a_kernel_draw() {
  const pid_t pid = fork();
  if (pid == 0) {
    pthread_t thread;
    pthread_create(&thread, nullptr, &drawing_thread, nullptr);
    pthread_cancel(thread);
    g_go = true;
    void* result = nullptr;
    pthread_join(thread, &result);
    _exit(result == PTHREAD_CANCELED ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Cancel : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
    rng_internal::g_test_hooks.disable_hardware_rng = true;  // every draw a system call
  }
  void TearDown() override { rng_internal::g_test_hooks = {}; }
};

TEST_F(Cancel, APendingCancelIsNotActedOnInsideADraw) { EXPECT_EQ(cancel_a_kernel_draw(), 0); }

TEST_F(Cancel, NegativeControlTheGlibcWrapperAbortsTheProcess) {
  rng_internal::g_test_hooks.cancellable_getrandom = true;
  EXPECT_EQ(cancel_a_kernel_draw(), 128 + SIGABRT);
}

}  // namespace
}  // namespace snapsafe
