// criu_clone_probe: the process that tests/criu/run checkpoints with CRIU and restores
// several times. It draws from snapsafe (public API only) and, as controls, from three
// user-space generators that know nothing of snapshots: OpenSSL's RAND_bytes, absl::BitGen
// and a once-seeded std::mt19937_64. Every generator is warmed up before the checkpoint,
// so each one's state is in the image.
//
//   criu_clone_probe DIR [--fork] [--values N]
//
// Handshake (files in DIR, each written by rename, so never seen half-written):
//   1. The probe draws its warm-up values, then writes DIR/ready ("pid", the active source,
//      its generation) and waits, polling every 2 ms for DIR/go. The image is taken here.
//   2. The driver writes DIR/go containing one line: an output path. The original process
//      (left running by `criu dump --leave-running`) and every restored copy see it only
//      when the driver puts it there, one process at a time.
//   3. The probe reads the path, draws the values, writes them to PATH.tmp, renames it to
//      PATH and exits 0. The output file is opened only now, after the restore: CRIU
//      restores descriptors by path, so a descriptor opened before the checkpoint would
//      point every copy at the same file.
//
// Output, one line per generator, `--values` hex tokens each (default 5):
//   source NAME GENERATION        what snapsafe::status() says, read after the draws
//   snapsafe ...                  snapsafe::random_u64()
//   snapsafe-id UUID REQUEST_ID   snapsafe::uuid_v4_string(), snapsafe::request_id()
//   openssl ... / absl ... / mt ...   the controls: each must repeat in every copy
//   openssl-rand NAME             the EVP_RAND behind RAND_bytes: CTR-DRBG, or SNAPSAFE
//                                 when OPENSSL_CONF loads the provider (then the openssl
//                                 line is snapsafe's and must not repeat)
//   getrandom ...                 getrandom(2) straight from the kernel: for reference
// With --fork, after those lines the probe forks; the child draws first, then the parent:
//   child-snapsafe ... / parent-snapsafe ...   must share nothing
//   child-absl ... / parent-absl ...           control: the same stream in both
//   child-mt ... / parent-mt ...               control: the same stream in both
// The last line is "end". Errors go into the output (or ready) file as "error ...",
// since the probe's standard streams are /dev/null (CRIU checks regular files' sizes
// at restore, so a growing log file would break the restore).
//
// The wait has a watchdog counted in polls, not in clock time (a restored copy's clocks
// have moved on): ~60 s of polls after the ready file, then the probe exits 3.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "absl/random/random.h"
#include "ids/ids.h"
#include "rng/fill.h"
#include "rng/status.h"

namespace {

constexpr int kPollMicros = 2000;
constexpr long kMaxPolls = 30000;  // ~60 s

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Writes `text` to `path` via PATH.tmp and rename(2). Returns false on any error.
bool write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* file = std::fopen(tmp.c_str(), "w");
  if (file == nullptr) return false;
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  return written && closed && std::rename(tmp.c_str(), path.c_str()) == 0;
}

struct Generators {
  absl::BitGen absl_gen;
  std::mt19937_64 mt;

  Generators() : mt(std::random_device()()) {}

  std::string snapsafe_line(int n) {
    std::string line;
    for (int i = 0; i < n; ++i) line += " " + hex64(snapsafe::random_u64());
    return line;
  }
  static std::string openssl_line(int n) {
    std::string line;
    for (int i = 0; i < n; ++i) {
      uint64_t value = 0;
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
        return " RAND_bytes-failed";
      }
      line += " " + hex64(value);
    }
    return line;
  }
  static std::string openssl_rand_name() {
    EVP_RAND_CTX* const rand = RAND_get0_public(nullptr);
    const char* const name =
        rand == nullptr ? nullptr : EVP_RAND_get0_name(EVP_RAND_CTX_get0_rand(rand));
    return name == nullptr ? "unknown" : name;
  }
  std::string absl_line(int n) {
    std::string line;
    for (int i = 0; i < n; ++i) line += " " + hex64(absl::Uniform<uint64_t>(absl_gen));
    return line;
  }
  std::string mt_line(int n) {
    std::string line;
    for (int i = 0; i < n; ++i) line += " " + hex64(mt());
    return line;
  }
  static std::string getrandom_line(int n) {
    std::string line;
    for (int i = 0; i < n; ++i) {
      uint64_t value = 0;
      if (syscall(SYS_getrandom, &value, sizeof value, 0) != sizeof value) {
        return " getrandom-failed";
      }
      line += " " + hex64(value);
    }
    return line;
  }
};

std::string status_line() {
  const snapsafe::Status status = snapsafe::status();
  return "source " + status.source_name + " " + std::to_string(status.generation) + "\n";
}

// After fork: the child's lines (written to `fd`), drawn before the parent draws again.
std::string fork_lines(Generators& gens, int n, bool child) {
  const std::string who = child ? "child-" : "parent-";
  std::string text;
  text += who + "snapsafe" + gens.snapsafe_line(n) + "\n";
  text += who + "absl" + gens.absl_line(n) + "\n";
  text += who + "mt" + gens.mt_line(n) + "\n";
  return text;
}

// Forks; the child draws and sends its lines through a pipe, then the parent draws.
std::string fork_and_draw(Generators& gens, int n) {
  int fds[2];
  if (pipe(fds) != 0) return std::string("error pipe: ") + std::strerror(errno) + "\n";
  const pid_t pid = fork();
  if (pid < 0) return std::string("error fork: ") + std::strerror(errno) + "\n";
  if (pid == 0) {
    close(fds[0]);
    std::string text;
    try {
      text = fork_lines(gens, n, true);
    } catch (const std::exception& e) {
      text = std::string("error child: ") + e.what() + "\n";
    }
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t w = write(fds[1], text.data() + done, text.size() - done);
      if (w <= 0) _exit(1);
      done += static_cast<size_t>(w);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string child_text;
  char buffer[4096];
  for (;;) {
    const ssize_t r = read(fds[0], buffer, sizeof buffer);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    child_text.append(buffer, static_cast<size_t>(r));
  }
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) child_text += "error child exited badly\n";
  // The parent draws only after the child has drawn and exited.
  return child_text + fork_lines(gens, n, false);
}

std::string read_first_line(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return "";
  char line[4096] = {};
  const bool ok = std::fgets(line, sizeof line, file) != nullptr;
  std::fclose(file);
  if (!ok) return "";
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [--fork] [--values N]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool do_fork = false;
  int n = 5;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fork") {
      do_fork = true;
    } else if (arg == "--values" && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "%s: unknown argument \"%s\"\n", argv[0], arg.c_str());
      return 2;
    }
  }
  if (n < 1 || n > 64) n = 5;

  Generators gens;
  std::string ready;
  try {
    // Warm-up: every generator has drawn, so each holds live state in the image.
    (void)gens.snapsafe_line(3);
    (void)snapsafe::uuid_v4_string();
    (void)Generators::openssl_line(3);
    (void)gens.absl_line(3);
    (void)gens.mt_line(3);
    ready = "pid " + std::to_string(getpid()) + "\n" + status_line();
  } catch (const std::exception& e) {
    ready = std::string("error warm-up: ") + e.what() + "\n";
  }
  if (!write_file_atomically(dir + "/ready", ready)) return 1;

  // The checkpoint is taken somewhere in this loop.
  const std::string go = dir + "/go";
  std::string out_path;
  for (long polls = 0; out_path.empty(); ++polls) {
    if (polls >= kMaxPolls) return 3;
    out_path = read_first_line(go);
    if (out_path.empty()) {
      const timespec pause = {0, kPollMicros * 1000L};
      nanosleep(&pause, nullptr);
    }
  }

  // After the restore: draw first, each generator in turn, then describe the state.
  std::string text;
  try {
    text += "snapsafe" + gens.snapsafe_line(n) + "\n";
    text += "snapsafe-id " + snapsafe::uuid_v4_string() + " " + snapsafe::request_id() + "\n";
    text += "openssl" + Generators::openssl_line(n) + "\n";
    text += "openssl-rand " + Generators::openssl_rand_name() + "\n";
    text += "absl" + gens.absl_line(n) + "\n";
    text += "mt" + gens.mt_line(n) + "\n";
    text += "getrandom" + Generators::getrandom_line(n) + "\n";
    if (do_fork) text += fork_and_draw(gens, n);
    text += status_line();
  } catch (const std::exception& e) {
    text += std::string("error draw: ") + e.what() + "\n";
  }
  text += "end\n";
  return write_file_atomically(out_path, text) ? 0 : 1;
}
