// The non-root process of tests/follow/run (`snapsafe genid follow`'s suite): a program
// using the library with the counter file named (SNAPSAFE_COUNTER_FILE), run as nobody, so
// it can open no generation device (argv[1], the simulated VMClock page, is root-only; it
// says what open() gave). Its only way to learn of a VM restore is the follower's bump.
//
// A snapshot is simulated as in tests/snapshot_test.cc: fork() with fork detection off
// (the state is mapped without MADV_WIPEONFORK, no atfork handler), so the child holds a
// byte-identical generator state, as two clones restored from one snapshot do. Protocol on
// stdin/stdout, one line each:
//   -> "ready device_open=ok|EACCES|... generation=G reseeds=R"   (state seeded, cloned)
//   <- any line: "the restore is done" (the driver fired the event, the follower ran or not)
//   -> "result shared_blocks=S of=N reseeds_before=R0 reseeds_after=R1 generation=G1"
// S counts the 16-byte blocks the clone and this process both drew after the go: 0 when
// the bump reached the library (both reseeded from the kernel), N when it did not.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/status.h"

namespace {

constexpr size_t kBlocks = 256;

std::vector<unsigned char> draw_blocks() {
  std::vector<unsigned char> bytes(kBlocks * 16);
  for (size_t i = 0; i < kBlocks; ++i) snapsafe::fill(bytes.data() + 16 * i, 16);
  return bytes;
}

bool read_all(int fd, void* data, size_t size) {
  auto* p = static_cast<unsigned char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: nonroot_probe DEVICE_PATH\n");
    return 2;
  }
  snapsafe::rng_internal::g_test_hooks.disable_wipe_on_fork = true;
  snapsafe::rng_internal::g_test_hooks.disable_fork_handler = true;
  const int device = open(argv[1], O_RDONLY | O_CLOEXEC);
  const std::string device_open = device >= 0 ? "ok" : strerrorname_np(errno);
  if (device >= 0) close(device);

  unsigned char seed[16];
  snapsafe::fill(seed, sizeof seed);  // seeds this thread's state
  const snapsafe::Status before = snapsafe::status();
  int gate[2], back[2];
  if (pipe(gate) != 0 || pipe(back) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {  // the clone
    char go;
    if (!read_all(gate[0], &go, 1)) _exit(3);
    const std::vector<unsigned char> bytes = draw_blocks();
    _exit(write(back[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) ? 0 : 4);
  }
  std::printf("ready device_open=%s generation=%llu reseeds=%llu\n", device_open.c_str(),
              static_cast<unsigned long long>(before.generation),
              static_cast<unsigned long long>(before.reseeds));
  std::fflush(stdout);
  char line[64];
  if (std::fgets(line, sizeof line, stdin) == nullptr) return 1;
  if (write(gate[1], "g", 1) != 1) return 1;
  const std::vector<unsigned char> mine = draw_blocks();
  std::vector<unsigned char> clone(mine.size());
  if (!read_all(back[0], clone.data(), clone.size())) return 1;
  int status = 0;
  waitpid(child, &status, 0);
  std::set<std::string> blocks;
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.insert(std::string(reinterpret_cast<const char*>(mine.data()) + 16 * i, 16));
  }
  size_t shared = 0;
  for (size_t i = 0; i < kBlocks; ++i) {
    shared += blocks.count(std::string(reinterpret_cast<const char*>(clone.data()) + 16 * i, 16));
  }
  const snapsafe::Status after = snapsafe::status();
  std::printf(
      "result shared_blocks=%zu of=%zu reseeds_before=%llu reseeds_after=%llu "
      "generation=%llu\n",
      shared, kBlocks, static_cast<unsigned long long>(before.reseeds),
      static_cast<unsigned long long>(after.reseeds),
      static_cast<unsigned long long>(after.generation));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
