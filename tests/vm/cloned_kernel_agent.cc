// File: tests/vm/cloned_kernel_agent.cc
//
// The in-guest agent of the cloned-kernel scenario (tests/vm/cloned_kernel.py,
// tests/vm/cloned_kernel.sh): a static program in the QEMU guest's initramfs. It stands
// for what a hypervisor's guest agent does at a restore (kata's agent taking a host
// nonce): it gets a value from its host and hands it to `snapsafe genid bump --set VALUE
// --reseed-kernel`. It also samples the guest kernel's getrandom(2) directly, before and
// after that bump, with no snapsafe code involved, so that what the sample shows is the
// kernel's CRNG alone.
//
//   vm_ck_agent cpu                      "rdrand=0|1 rdseed=0|1" from CPUID (what the
//                                        guest CPU offers; `-cpu max,-rdrand,-rdseed`
//                                        hides both)
//   vm_ck_agent serve TTY FILE SNAPSAFE  reads the host's lines on the serial port TTY
//                                        (raw mode), one command each:
//     reseed      sent just before the snapshot, so that the kernel's own reseed is not
//                 due while the clones are compared (its interval: uptime/2 during the
//                 first two minutes, at least 1 s; 60 s after). RNDRESEEDCRNG on
//                 /dev/urandom first: the CRNG takes a new key now. Up to Linux 6.1 the
//                 kernel reseeds on demand, at a draw once the key is older than the
//                 interval, so that is enough. Since 6.2 it reseeds from a timer that
//                 RNDRESEEDCRNG does not move; where the vDSO publishes the CRNG's
//                 generation (6.11+ on x86-64) the agent then waits for the timer's
//                 reseed, and the host snapshots right after it. Not before an uptime of
//                 kMinUptime s: the next reseed is then at least 6 s of guest time away,
//                 several times what the comparison after the restore takes.
//     none        no bump: the getrandom samples only (the negative control)
//     bump VALUE  SNAPSAFE genid bump --file FILE --set VALUE --reseed-kernel
//
// A sample is kSamples getrandom calls back to back. Each call takes the next output of
// the (per-CPU) CRNG, so two copies of one CRNG give the same sequence only if nothing else
// drew in between; something else does at moments that differ per clone (the kernel's
// batched entropy refilling for KFENCE's sampled allocations, another process's timer),
// which shifts one copy's sequence by a step. So the host compares samples as sets: copies
// of one CRNG share most values, diverged CRNGs none (2^-128 each). This process, blocked
// in read() when the snapshot is taken, draws as soon as the host's line arrives; a shell
// would fork and exec first (AT_RANDOM, ASLR: CRNG draws of their own).
//
// Output lines (stdout, one write() each; parsed by tests/vm/cloned_kernel.py):
//   @G before|after HEX32 ...      kSamples getrandom(2) calls of 16 bytes (flags 0)
//   @U before|after uptime=S       when (guest clock), read after the calls
//   @K reseeded ok|WHY forced|timer uptime=S
//                                  after `reseed`: RNDRESEEDCRNG's outcome, and which
//                                  reseed came last (timer: the kernel's own, waited for)
//   @K bump rc=N MESSAGE           the bump's exit status and its stderr, on one line
//   @K done COMMAND                the command is finished
// Exit status (serve never returns unless the port fails): 1 on a failure, 2 on bad usage.
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "tests/vm/emit.h"

namespace {

using snapsafe::testing::emit;  // one write() per line: the processes share the port

std::string uptime() {
  char buffer[64] = {};
  const int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!read(fd, buffer, sizeof buffer - 1);
    close(fd);
  }
  std::string text = buffer;
  return text.substr(0, text.find(' '));
}

constexpr int kSamples = 8;

void emit_getrandom(const char* when) {
  unsigned char bytes[kSamples][16];
  for (auto& sample : bytes) {  // first all the calls, then the formatting
    ssize_t got;
    do {
      got = getrandom(sample, sizeof sample, 0);
    } while (got < 0 && errno == EINTR);
    if (got != static_cast<ssize_t>(sizeof sample)) {
      emit("@G %s failed: %s", when, got < 0 ? strerror(errno) : "short read");
      return;
    }
  }
  std::string hex;
  for (const auto& sample : bytes) {
    char digits[3];
    if (!hex.empty()) hex += ' ';
    for (unsigned char b : sample) {
      snprintf(digits, sizeof digits, "%02x", b);
      hex += digits;
    }
  }
  emit("@G %s %s", when, hex.c_str());
  emit("@U %s uptime=%s", when, uptime().c_str());
}

// The CRNG's generation as the vDSO publishes it (Linux 6.11+ on x86-64: struct
// vdso_rng_data { u64 generation; u8 is_ready; } at offset 640 of the [vvar] page, bumped
// by every reseed), or null before 6.11 or without a [vvar] mapping. A kernel-internal
// layout: the caller believes it only if a forced reseed moves it by exactly one.
const volatile uint64_t* vdso_rng_generation() {
  struct utsname name;
  unsigned major = 0, minor = 0;
  if (uname(&name) != 0 || sscanf(name.release, "%u.%u", &major, &minor) != 2 ||
      major * 1000 + minor < 6011) {
    return nullptr;
  }
  FILE* maps = fopen("/proc/self/maps", "re");
  if (maps == nullptr) return nullptr;
  char line[512];
  unsigned long start = 0;
  while (fgets(line, sizeof line, maps) != nullptr) {
    if (strstr(line, "[vvar]") != nullptr) {
      start = strtoul(line, nullptr, 16);
      break;
    }
  }
  fclose(maps);
  return start == 0 ? nullptr : reinterpret_cast<const volatile uint64_t*>(start + 640);
}

constexpr double kMinUptime = 12;

void reseed() {
  const struct timespec tenth = {0, 100000000};
  while (std::stod("0" + uptime()) < kMinUptime) nanosleep(&tenth, nullptr);
  const volatile uint64_t* generation = vdso_rng_generation();
  const uint64_t before = generation != nullptr ? *generation : 0;
  const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && ioctl(fd, RNDRESEEDCRNG) == 0;
  const int error = errno;
  if (fd >= 0) close(fd);
  const char* last = "forced";
  if (ok && generation != nullptr && before < (uint64_t{1} << 32) && *generation == before + 1) {
    // The timer's reseed: poll every millisecond, for at most the longest interval.
    const uint64_t forced = before + 1;
    const struct timespec millisecond = {0, 1000000};
    for (int i = 0; i < 70000 && *generation == forced; ++i) nanosleep(&millisecond, nullptr);
    if (*generation != forced) last = "timer";
  }
  emit("@K reseeded %s %s uptime=%s", ok ? "ok" : strerror(error), last, uptime().c_str());
}

// Runs `snapsafe genid bump --file FILE --set VALUE --reseed-kernel`; its stderr (what
// --reseed-kernel did) on the @K line.
void bump(const std::string& snapsafe, const std::string& file, const std::string& value) {
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) {
    emit("@K bump rc=-1 pipe: %s", strerror(errno));
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);  // the new generation: the host knows it
    execl(snapsafe.c_str(), snapsafe.c_str(), "genid", "bump", "--file", file.c_str(), "--set",
          value.c_str(), "--reseed-kernel", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err[1]);
  std::string message;
  char chunk[256];
  ssize_t n;
  while ((n = read(err[0], chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    message.append(chunk, n);
  }
  close(err[0]);
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  for (char& c : message) c = c == '\n' ? ' ' : c;
  const int rc = pid < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  emit("@K bump rc=%d %s", rc, message.c_str());
}

int serve(const char* tty, const std::string& file, const std::string& snapsafe) {
  const int fd = open(tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
  struct termios mode;
  if (fd < 0 || tcgetattr(fd, &mode) != 0) {
    emit("@K error %s: %s", tty, strerror(errno));
    return 1;
  }
  cfmakeraw(&mode);
  mode.c_cflag |= CLOCAL | CREAD;
  if (tcsetattr(fd, TCSANOW, &mode) != 0) {
    emit("@K error %s: tcsetattr: %s", tty, strerror(errno));
    return 1;
  }
  tcflush(fd, TCIFLUSH);
  std::string pending;
  for (;;) {
    char chunk[128];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      emit("@K error %s: read: %s", tty, n < 0 ? strerror(errno) : "end of file");
      return 1;
    }
    pending.append(chunk, n);
    size_t end;
    while ((end = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line == "reseed") {
        reseed();
      } else if (line == "none") {
        emit_getrandom("before");
        emit_getrandom("after");
      } else if (line.rfind("bump ", 0) == 0) {
        emit_getrandom("before");  // at once: the bump's fork and exec draw too
        bump(snapsafe, file, line.substr(5));
        emit_getrandom("after");
      } else {
        emit("@K error unknown command '%s'", line.c_str());
        continue;
      }
      emit("@K done %s", line.substr(0, line.find(' ')).c_str());
    }
  }
}

int cpu() {
  unsigned a, b, c, d;
  const bool rdrand = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_RDRND) != 0;
  const bool rdseed = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_RDSEED) != 0;
  printf("rdrand=%d rdseed=%d\n", rdrand ? 1 : 0, rdseed ? 1 : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "cpu") == 0) return cpu();
  if (argc == 5 && strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: %s cpu | serve TTY COUNTER_FILE SNAPSAFE\n", argv[0]);
  return 2;
}
