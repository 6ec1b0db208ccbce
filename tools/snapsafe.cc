// snapsafe: the command-line tool. Snapshot-safe random output (UUIDs, request IDs, raw
// bytes), the status report, and the system generation (read, bump, wait).
//
//   snapsafe status
//   snapsafe uuid [-n N] [--v4|--v7]
//   snapsafe bytes N [--hex|--base64]
//   snapsafe reqid [-n N]
//   snapsafe genid read [--file PATH]
//   snapsafe genid bump [--min N | --set VALUE] [--file PATH] [--reseed-kernel]
//   snapsafe genid wait [--timeout-ms T]
//   snapsafe genid follow [--file PATH] [--sources LIST] [--reseed-kernel] ...
//                                      (tools/genid_follow.h)
//   snapsafe help [COMMAND]            (also: snapsafe --help, snapsafe COMMAND --help)
//
// Exit status: 0 success, 1 runtime error, 2 usage error; every error on stderr, one line
// starting "snapsafe: ". Numbers are plain decimal (no sign, no spaces, no hex) and
// checked against the bounds in the help text before anything runs. `bytes` without
// --hex or --base64 refuses to write raw bytes to a terminal (exit 2): random bytes
// there only garble it (and could send it escape sequences); redirect or pipe them.
//
// The genid commands act on the SysGenID device when something is at its path
// (SNAPSAFE_SYSGENID_PATH, default /dev/sysgenid), else on the counter file
// (SNAPSAFE_COUNTER_FILE, default /run/snapsafe/generation); --file PATH always means
// that counter file. The device is opened as tools/sysgenid_device.h says (trusted, a
// character device only, never blocking in open(); read-write for `wait`), and `bump`
// never takes it to its saturated value (cli_args.h: check_device_min()). On a counter file
// `bump` stores a fresh random generation drawn here, or --set VALUE's (genid/counter_file.h:
// clones bumped each on its own host side differ even when their kernel RNGs are clones);
// --reseed-kernel first pushes the new generation into the kernel's RNG
// (tools/kernel_reseed.h) and exits 1 after the bump if that could not be done.
//
// The arguments are parsed and checked by tools/cli_args.h (no I/O there, so a fuzzer can
// drive it); this file runs what they ask for.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "genid/counter_file_writer.h"
#include "genid/sysgenid.h"
#include "ids/ids.h"
#include "rng/error.h"
#include "rng/fill.h"
#include "rng/status.h"
#include "tools/cli_args.h"
#include "tools/genid_follow.h"
#include "tools/kernel_reseed.h"
#include "tools/sysgenid_device.h"

namespace {

using snapsafe::cli::BytesOptions;
using snapsafe::cli::kExitOk;
using snapsafe::cli::kExitRuntime;
using snapsafe::cli::kExitUsage;
using snapsafe::cli::Parsed;
using snapsafe::cli::UsageError;
using snapsafe::cli::UuidOptions;

// A runtime error (exit 1). Thrown inside main() only; usage errors (exit 2) are
// cli::UsageError (tools/cli_args.h).
struct RuntimeError {
  std::string message;
};

// ---- Output: stdout through write(2), every error reported ----

class Output {
 public:
  ~Output() = default;
  void put(const char* data, size_t size) {
    if (size >= sizeof buffer_) {
      flush();
      write_all(data, size);
      return;
    }
    if (used_ + size > sizeof buffer_) flush();
    std::memcpy(buffer_ + used_, data, size);
    used_ += size;
  }
  void put(const std::string& text) { put(text.data(), text.size()); }
  void put(char c) { put(&c, 1); }
  void flush() {
    write_all(buffer_, used_);
    used_ = 0;
  }

 private:
  static void write_all(const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = write(STDOUT_FILENO, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw RuntimeError{std::string("write error: ") + std::strerror(errno)};
      data += n;
      size -= static_cast<size_t>(n);
    }
  }
  char buffer_[65536];
  size_t used_ = 0;
};

// ---- Arguments ----

// ---- Random output ----

int cmd_status(const Parsed& parsed, Output& out) {
  snapsafe::cli::status_options(parsed);
  out.put(snapsafe::status().to_string());
  return kExitOk;
}

int cmd_uuid(const Parsed& parsed, Output& out) {
  const UuidOptions options = snapsafe::cli::uuid_options(parsed);
  const uint64_t count = options.count;
  const bool v7 = options.v7;
  char line[37];
  line[36] = '\n';
  for (uint64_t i = 0; i < count; ++i) {
    snapsafe::uuid_to_chars(v7 ? snapsafe::uuid_v7() : snapsafe::uuid_v4(), line);
    out.put(line, sizeof line);
  }
  return kExitOk;
}

int cmd_reqid(const Parsed& parsed, Output& out) {
  const uint64_t count = snapsafe::cli::reqid_options(parsed);
  char line[33];
  line[32] = '\n';
  for (uint64_t i = 0; i < count; ++i) {
    snapsafe::request_id_to_chars(line);
    out.put(line, sizeof line);
  }
  return kExitOk;
}

void put_base64(Output& out, const uint8_t* data, size_t size) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char quad[4];
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t{data[i]} << 16 | uint32_t{data[i + 1]} << 8 | data[i + 2];
    quad[0] = kAlphabet[v >> 18];
    quad[1] = kAlphabet[(v >> 12) & 63];
    quad[2] = kAlphabet[(v >> 6) & 63];
    quad[3] = kAlphabet[v & 63];
    out.put(quad, 4);
  }
  if (i < size) {  // the last 1 or 2 bytes, with padding
    const uint32_t v = uint32_t{data[i]} << 16 | (i + 1 < size ? uint32_t{data[i + 1]} << 8 : 0);
    quad[0] = kAlphabet[v >> 18];
    quad[1] = kAlphabet[(v >> 12) & 63];
    quad[2] = i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    quad[3] = '=';
    out.put(quad, 4);
  }
}

int cmd_bytes(const Parsed& parsed, Output& out) {
  const BytesOptions options = snapsafe::cli::bytes_options(parsed);
  const bool hex = options.hex;
  const bool base64 = options.base64;
  const uint64_t total = options.total;
  if (!hex && !base64 && isatty(STDOUT_FILENO)) {
    throw UsageError{"bytes",
                     "refusing to write raw bytes to a terminal: add --hex or --base64, or "
                     "redirect stdout"};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::vector<uint8_t> chunk(48 * 1024);  // a multiple of 3: base64 pads only at the end
  for (uint64_t done = 0; done < total;) {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(chunk.size(), total - done));
    snapsafe::fill(chunk.data(), size);
    if (hex) {
      char pair[2];
      for (size_t i = 0; i < size; ++i) {
        pair[0] = kHex[chunk[i] >> 4];
        pair[1] = kHex[chunk[i] & 0xf];
        out.put(pair, 2);
      }
    } else if (base64) {
      put_base64(out, chunk.data(), size);
    } else {
      out.put(reinterpret_cast<const char*>(chunk.data()), size);
    }
    done += size;
  }
  explicit_bzero(chunk.data(), chunk.size());
  if (hex || base64) out.put('\n');
  return kExitOk;
}

// ---- The generation ----

std::string env_or(const char* name, const char* fallback) {
  const char* value = secure_getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

struct Target {
  bool device;  // the SysGenID device, else a counter file
  std::string path;
};

Target resolve_target(const Parsed& parsed) {
  if (const std::optional<std::string> file = snapsafe::cli::file_option(parsed)) {
    return {false, *file};
  }
  const std::string device =
      env_or("SNAPSAFE_SYSGENID_PATH", snapsafe::genid::kDefaultSysgenidPath);
  if (access(device.c_str(), F_OK) == 0) return {true, device};  // opens nothing
  return {false, env_or("SNAPSAFE_COUNTER_FILE", snapsafe::genid::kDefaultCounterFilePath)};
}

// An open descriptor on the device (tools/sysgenid_device.h), closed on scope exit.
class DeviceFd {
 public:
  DeviceFd(const std::string& path, snapsafe::tools::DeviceUse use) : path_(path) {
    std::string error;
    fd_ = snapsafe::tools::open_sysgenid_device(path, use, &error);
    if (fd_ < 0) throw RuntimeError{error};
  }
  ~DeviceFd() { close(fd_); }
  DeviceFd(const DeviceFd&) = delete;
  DeviceFd& operator=(const DeviceFd&) = delete;

  uint32_t generation() const {
    uint32_t value = 0;
    check(snapsafe::tools::sysgenid_device_generation(fd_, path_, &value));
    return value;
  }
  uint32_t trigger(uint32_t min) const {
    uint32_t value = 0;
    check(snapsafe::tools::sysgenid_device_trigger(fd_, path_, min, &value));
    return value;
  }
  uint32_t wait(uint64_t timeout_ms) const {
    uint32_t value = 0;
    check(snapsafe::tools::sysgenid_device_wait(fd_, path_, timeout_ms, &value));
    return value;
  }

 private:
  static void check(const std::string& error) {
    if (!error.empty()) throw RuntimeError{error};
  }
  std::string path_;
  int fd_;
};

void put_number(Output& out, uint64_t value) { out.put(std::to_string(value) + "\n"); }

int cmd_genid_read(const Parsed& parsed, Output& out) {
  snapsafe::cli::no_positional("genid", parsed);
  const Target target = resolve_target(parsed);
  if (target.device) {
    put_number(out, DeviceFd(target.path, snapsafe::tools::DeviceUse::kRead).generation());
    return kExitOk;
  }
  snapsafe::genid::Generation generation = 0;
  if (std::string error = snapsafe::genid::counter_file_read(target.path, &generation);
      !error.empty()) {
    throw RuntimeError{error};
  }
  put_number(out, generation);
  return kExitOk;
}

// --reseed-kernel: mixes `generation` into the kernel's RNG and reseeds it (once per
// value: a retried counter-file store offers the same value again only by chance).
class KernelReseed {
 public:
  explicit KernelReseed(bool wanted) : wanted_(wanted) {}
  void before_store(uint64_t generation) {
    if (!wanted_ || (ran_ && generation == last_)) return;
    report_ = snapsafe::tools::reseed_kernel(generation);
    ran_ = true;
    last_ = generation;
  }
  // After the bump: what was done, on stderr; kExitRuntime if not everything.
  int finish() const {
    if (!wanted_) return kExitOk;
    std::fprintf(stderr, "snapsafe: --reseed-kernel: %s%s\n", report_.describe().c_str(),
                 report_.done() ? "" : " (the generation was bumped all the same)");
    return report_.done() ? kExitOk : kExitRuntime;
  }

 private:
  bool wanted_;
  bool ran_ = false;
  uint64_t last_ = 0;
  snapsafe::tools::KernelReseedReport report_;
};

int cmd_genid_bump(const Parsed& parsed, Output& out) {
  snapsafe::cli::no_positional("genid", parsed);
  const Target target = resolve_target(parsed);
  const uint64_t min = snapsafe::cli::min_option(parsed, target.device);
  const std::optional<uint64_t> set = snapsafe::cli::set_option(parsed, target.device);
  KernelReseed kernel(parsed.flags.count("--reseed-kernel") != 0);
  if (target.device) {
    const DeviceFd device(target.path, snapsafe::tools::DeviceUse::kBump);
    const uint32_t current = device.generation();
    snapsafe::cli::check_device_min(min, current);                        // never to saturation
    kernel.before_store(std::max<uint64_t>(uint64_t{current} + 1, min));  // what it will be
    put_number(out, device.trigger(static_cast<uint32_t>(min)));
    return kernel.finish();
  }
  snapsafe::genid::Generation generation = 0;
  std::string error;
  if (set) {
    kernel.before_store(*set);
    bool unchanged = false;
    error = snapsafe::genid::counter_file_set(target.path, *set, &unchanged);
    generation = *set;
    if (error.empty() && unchanged) {
      std::fprintf(stderr, "snapsafe: %s: already at generation %llu: unchanged\n",
                   snapsafe::cli::shown(target.path).c_str(),
                   static_cast<unsigned long long>(generation));
    }
  } else {
    error = snapsafe::genid::counter_file_bump(
        target.path, &generation, snapsafe::genid::kThisProcessRoot, nullptr,
        [&kernel](snapsafe::genid::Generation next) { kernel.before_store(next); });
  }
  if (!error.empty()) throw RuntimeError{error};
  put_number(out, generation);
  return kernel.finish();
}

int cmd_genid_wait(const Parsed& parsed, Output& out) {
  snapsafe::cli::no_positional("genid", parsed);
  const uint64_t timeout = snapsafe::cli::timeout_option(parsed);
  const Target target = resolve_target(parsed);
  if (!target.device) {
    throw RuntimeError{"genid wait needs the SysGenID device, and " +
                       env_or("SNAPSAFE_SYSGENID_PATH", snapsafe::genid::kDefaultSysgenidPath) +
                       " does not exist (a counter file has no watchers to wait for)"};
  }
  put_number(out, DeviceFd(target.path, snapsafe::tools::DeviceUse::kWait).wait(timeout));
  return kExitOk;
}

int cmd_genid_follow(const Parsed& parsed, Output& out) {
  out.flush();
  snapsafe::tools::Follower follower(snapsafe::tools::follow_options(
      parsed, env_or("SNAPSAFE_COUNTER_FILE", snapsafe::genid::kDefaultCounterFilePath),
      env_or("SNAPSAFE_SYSGENID_PATH", snapsafe::genid::kDefaultSysgenidPath)));
  return follower.run();
}

// ---- Dispatch ----

int print_help(const std::string& topic) {
  if (topic.empty()) {
    std::fputs(snapsafe::cli::kGeneralHelp, stdout);
  } else {
    const auto& help = snapsafe::cli::command_help();
    const auto it = help.find(topic);
    if (it == help.end()) {
      throw UsageError{"", "no such command '" + snapsafe::cli::shown(topic) + "'"};
    }
    std::fputs(it->second.c_str(), stdout);
  }
  return std::fflush(stdout) == 0 && !std::ferror(stdout) ? kExitOk : kExitRuntime;
}

int run(const std::vector<std::string>& args, Output& out) {
  using Kind = snapsafe::cli::Invocation::Kind;
  const snapsafe::cli::Invocation invocation = snapsafe::cli::parse_invocation(args);
  if (invocation.kind == Kind::kNoCommand) {
    std::fputs(snapsafe::cli::kGeneralHelp, stderr);
    return kExitUsage;
  }
  if (invocation.kind == Kind::kHelp) return print_help(invocation.topic);
  static const std::map<std::string, int (*)(const Parsed&, Output&)> kRun = {
      {"status", &cmd_status},         {"uuid", &cmd_uuid},
      {"bytes", &cmd_bytes},           {"reqid", &cmd_reqid},
      {"genid read", &cmd_genid_read}, {"genid bump", &cmd_genid_bump},
      {"genid wait", &cmd_genid_wait}, {"genid follow", &cmd_genid_follow},
  };
  return kRun.at(invocation.command)(invocation.parsed, out);
}

}  // namespace

int main(int argc, char** argv) {
  static Output out;  // 64 KiB: static, not on the stack
  try {
    const std::vector<std::string> args(argv, argv + argc);
    const int status = run(args, out);
    out.flush();
    return status;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "snapsafe: %s%s%s\n", e.command.c_str(), e.command.empty() ? "" : ": ",
                 e.message.c_str());
    std::fprintf(stderr, "Try 'snapsafe help%s%s'.\n", e.command.empty() ? "" : " ",
                 e.command.c_str());
    return kExitUsage;
  } catch (const RuntimeError& e) {
    // One line, whatever a --file path or the environment holds.
    std::fprintf(stderr, "snapsafe: %s\n", snapsafe::cli::shown(e.message).c_str());
  } catch (const snapsafe::entropy_error& e) {
    std::fprintf(stderr, "snapsafe: no entropy: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "snapsafe: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "snapsafe: %s\n", e.what());
  }
  return kExitRuntime;
}
