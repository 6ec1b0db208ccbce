// File: tests/setup_fork_scenario.h
//
// A fork() that lands while another thread is inside the library's one-time setup
// (rng/internal/setup.h), shared by fault_injection_test (a first snapsafe_u64) and
// kernel_setup_fork_test (a first random_device("kernel") value). Each runs it in a
// process started for it: the setup cannot be undone in a process.
//
// A new thread's first draw parks inside the setup (test hook inside_setup: inside the
// RDRAND probe's static guard) until the main thread's fork() has returned, or for 1 s
// (with the setup's fork lock, fork() waits for the setup, so the park's time runs out
// first; no fixed sleep: the fork lands inside the setup however slowly the main thread
// runs). The child draws under alarm(2); a child that inherited a half-done guard hangs
// until SIGALRM.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "rng/internal/test_hooks.h"

namespace snapsafe::testing {

inline std::atomic<bool> g_parked_in_setup{false};
inline std::atomic<bool> g_fork_returned{false};

inline void park_inside_setup() {
  rng_internal::g_test_hooks.inside_setup = nullptr;
  g_parked_in_setup = true;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!g_fork_returned.load() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Runs the scenario: `first_draw` on a new thread, parked inside the setup; fork(); the
// child runs `child_draw` under alarm(2) and exits 0 if it returned true, else 3. Writes
// the child's exit status (or 128 + its signal) as one byte to `report_fd`, then exits
// this process with 0 (4 if the report could not be written).
[[noreturn]] inline void fork_during_setup(void (*first_draw)(), bool (*child_draw)(),
                                           int report_fd) {
  rng_internal::g_test_hooks.inside_setup = &park_inside_setup;
  std::thread first(first_draw);
  while (!g_parked_in_setup.load()) sched_yield();
  const pid_t pid = fork();
  g_fork_returned = true;
  if (pid == 0) {
    alarm(2);
    _exit(child_draw() ? 0 : 3);
  }
  int raw = 0;
  waitpid(pid, &raw, 0);
  first.join();
  const uint8_t status =
      static_cast<uint8_t>(WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw));
  _exit(write(report_fd, &status, 1) == 1 ? 0 : 4);
}

}  // namespace snapsafe::testing
