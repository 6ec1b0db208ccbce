// File: tests/test_util.h
//
// Small helpers shared by the tests: temporary paths, switching the generation source
// from a test, running code in a forked child and collecting its output, finding
// repeated 16-byte blocks, and making the kernel refuse entropy.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/select.h"
#include "rng/internal/thread_state.h"

namespace snapsafe::testing {

using Bytes = std::vector<uint8_t>;

// Installs a seccomp filter on the calling thread (and its later children) under which
// getrandom fails with `error`; everything else is allowed. Irreversible: call it in a
// forked child. fail_closed_test's control shows the filter really bites. x86-64 only.
inline bool block_getrandom(int error) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getrandom, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]),
                               filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// A fresh path inside the test's private temporary directory.
inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  static int counter = 0;
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name + "." + std::to_string(getpid()) +
         "." + std::to_string(counter++);
}

// Clears every SNAPSAFE_* setting, applies `settings` ("NAME", "value" pairs) and selects
// the generation source again. Call only while no other thread draws.
inline void use_source(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const char* name : {"SNAPSAFE_SOURCE", "SNAPSAFE_SYSGENID_PATH", "SNAPSAFE_SYSGENID_MODE",
                           "SNAPSAFE_VMCLOCK_PATH", "SNAPSAFE_COUNTER_FILE"}) {
    unsetenv(name);
  }
  for (const auto& [name, value] : settings) setenv(name.c_str(), value.c_str(), 1);
  genid::reinit_for_testing();
  // States pooled at thread exit are stamped with the old source's generation, which the
  // new source may reach too (every fake starts at the same number).
  rng_internal::thread_state_pool_clear();
}

// Creates a fresh counter file and makes it the active source; returns its path.
inline std::string use_fresh_counter_file() {
  const std::string path = temp_path("generation");
  EXPECT_EQ(genid::counter_file_create(path), "");
  use_source({{"SNAPSAFE_SOURCE", "counter-file"}, {"SNAPSAFE_COUNTER_FILE", path}});
  return path;
}

inline void bump(const std::string& counter_file) {
  genid::Generation generation;
  ASSERT_EQ(genid::counter_file_bump(counter_file, &generation), "");
}

// Runs `body` on a new thread and waits: a fresh thread means a fresh generator state.
inline void on_new_thread(const std::function<void()>& body) { std::thread(body).join(); }

// A child process and the pipe it writes its bytes into.
struct Child {
  pid_t pid;
  int read_fd;
};

// Forks; the child runs `body` and writes the bytes it returns to a pipe, then _exits.
inline Child fork_child(const std::function<Bytes()>& body) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Bytes bytes;
    try {
      bytes = body();
    } catch (...) {
      _exit(3);
    }
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = write(fds[1], bytes.data() + done, bytes.size() - done);
      if (n <= 0) _exit(4);
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads everything the child wrote and reaps it; EXPECTs a clean exit.
inline Bytes collect(const Child& child) {
  Bytes bytes;
  uint8_t chunk[65536];
  ssize_t n;
  while ((n = read(child.read_fd, chunk, sizeof chunk)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + n);
  close(child.read_fd);
  int status = 0;
  waitpid(child.pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  return bytes;
}

inline Bytes run_in_child(const std::function<Bytes()>& body) { return collect(fork_child(body)); }

// Number of 16-byte blocks (at 16-byte offsets) of `b` that also occur in `a`.
inline size_t shared_blocks(const Bytes& a, const Bytes& b) {
  std::set<std::string> blocks;
  for (size_t i = 0; i + 16 <= a.size(); i += 16) {
    blocks.emplace(reinterpret_cast<const char*>(a.data() + i), 16);
  }
  size_t shared = 0;
  for (size_t i = 0; i + 16 <= b.size(); i += 16) {
    shared += blocks.count(std::string(reinterpret_cast<const char*>(b.data() + i), 16));
  }
  return shared;
}

inline std::string hex(const uint8_t* bytes, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

}  // namespace snapsafe::testing
