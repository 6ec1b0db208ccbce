// snapsafe demo: the README's main command until the VM demo exists.
//
// 1. Prints the generation sources detected on this machine (snapsafe::status()).
// 2. Draws values: a u64, a UUID, a request ID, a nonce, a die roll through <random>.
// 3. Simulates a snapshot restore: re-runs itself with a fresh shared counter file as its
//    source (the source is chosen once per process), draws, bumps the counter as a
//    restore hook would, and draws again: the reseed count shows the generation change
//    was noticed and the state reseeded before the next value was returned.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "genid/counter_file_writer.h"
#include "ids/ids.h"
#include "rng/bit_gen.h"
#include "rng/status.h"

namespace {

void print_draws(const char* who) {
  snapsafe::BitGen gen;
  std::uniform_int_distribution<int> die(1, 6);
  const uint64_t value = snapsafe::random_u64();
  const std::string uuid = snapsafe::uuid_v4_string();
  const int roll = die(gen);
  const snapsafe::Status status = snapsafe::status();
  std::printf("  [%s] u64 %016llx  uuid %s  die %d  generation %llu  reseeds so far %llu\n", who,
              static_cast<unsigned long long>(value), uuid.c_str(), roll,
              static_cast<unsigned long long>(status.generation),
              static_cast<unsigned long long>(status.reseeds));
}

int simulate_restore(const std::string& counter) {
  std::printf("\n== simulated restore (source: %s)\n", snapsafe::status().source_name.c_str());
  print_draws("before");
  snapsafe::genid::Generation generation = 0;
  const std::string error = snapsafe::genid::counter_file_bump(counter, &generation);
  if (!error.empty()) {
    std::fprintf(stderr, "bump failed: %s\n", error.c_str());
    return 1;
  }
  std::printf("  restore hook: snapsafe_counter bump -> generation %llu\n",
              static_cast<unsigned long long>(generation));
  print_draws("after ");
  std::printf("  the draw after the bump reseeded from the kernel before returning.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--simulate-restore") {
    return simulate_restore(argv[2]);
  }
  std::printf("== snapsafe on this machine\n%s", snapsafe::status().to_string().c_str());
  std::printf("\n== draws\n");
  print_draws("main  ");
  std::printf("  request id %s\n", snapsafe::request_id().c_str());

  char dir[] = "/tmp/snapsafe-demo-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string counter = std::string(dir) + "/generation";
  if (const std::string error = snapsafe::genid::counter_file_create(counter); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    setenv("SNAPSAFE_SOURCE", "counter-file", 1);
    setenv("SNAPSAFE_COUNTER_FILE", counter.c_str(), 1);
    execl("/proc/self/exe", argv[0], "--simulate-restore", counter.c_str(), nullptr);
    _exit(127);
  }
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  unlink(counter.c_str());
  rmdir(dir);
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
}
