// snapsafe: the command-line tool. Snapshot-safe random output (UUIDs, request IDs, raw
// bytes), the status report, and the system generation (read, bump, wait).
//
//   snapsafe status
//   snapsafe uuid [-n N] [--v4|--v7]
//   snapsafe bytes N [--hex|--base64]
//   snapsafe reqid [-n N]
//   snapsafe genid read [--file PATH]
//   snapsafe genid bump [--min N] [--file PATH]
//   snapsafe genid wait [--timeout-ms T]
//   snapsafe help [COMMAND]            (also: snapsafe --help, snapsafe COMMAND --help)
//
// Exit status: 0 success, 1 runtime error, 2 usage error; every error on stderr, one line
// starting "snapsafe: ". Numbers are plain decimal (no sign, no spaces, no hex) and
// checked against the bounds in the help text before anything runs. `bytes` without
// --hex or --base64 refuses to write raw bytes to a terminal (exit 2): random bytes
// there only garble it (and could send it escape sequences); redirect or pipe them.
//
// The genid commands act on the SysGenID device when it exists (SNAPSAFE_SYSGENID_PATH,
// default /dev/sysgenid), else on the counter file (SNAPSAFE_COUNTER_FILE, default
// /run/snapsafe/generation); --file PATH always means that counter file.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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

#include <linux/sysgenid.h>

#include "genid/counter_file.h"
#include "genid/sysgenid.h"
#include "rng/error.h"
#include "rng/fill.h"
#include "rng/ids.h"
#include "rng/status.h"

namespace {

// SysGenID ioctls, from the UAPI header of kernel_shim/ (argument passed by value).
constexpr unsigned long kSysgenidWaitWatchers = SYSGENID_WAIT_WATCHERS;
constexpr unsigned long kSysgenidTriggerGenUpdate = SYSGENID_TRIGGER_GEN_UPDATE;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

constexpr uint64_t kMaxCount = 1000000;             // -n
constexpr uint64_t kMaxBytes = uint64_t{1} << 30;   // bytes N: 1 GiB
constexpr uint64_t kMaxTimeoutMs = 86400000;        // --timeout-ms: one day

// A usage error (exit 2) for `command` ("" for the tool itself), or a runtime error
// (exit 1). Thrown inside main() only.
struct UsageError {
  std::string command;
  std::string message;
};
struct RuntimeError {
  std::string message;
};

const char kGeneralHelp[] =
    "usage: snapsafe COMMAND [OPTIONS]\n"
    "\n"
    "Snapshot-safe random numbers, UUIDs and the system generation.\n"
    "\n"
    "commands:\n"
    "  status                              what protects this process's random numbers\n"
    "  uuid [-n N] [--v4|--v7]             N UUIDs, one per line (default 1, version 4)\n"
    "  bytes N [--hex|--base64]            N random bytes (raw: never to a terminal)\n"
    "  reqid [-n N]                        N request IDs (32 lower-case hex digits)\n"
    "  genid read [--file PATH]            print the system generation\n"
    "  genid bump [--min N] [--file PATH]  advance it (a restore hook runs this)\n"
    "  genid wait [--timeout-ms T]         wait until SysGenID watchers acknowledged it\n"
    "  help [COMMAND]                      this text, or one command's in full\n"
    "\n"
    "Exit status: 0 success, 1 runtime error, 2 usage error (messages on stderr).\n";

const std::map<std::string, std::string>& command_help() {
  static const auto* help = new std::map<std::string, std::string>{
      {"status",
       "usage: snapsafe status\n"
       "\n"
       "Prints the status report of the snapsafe library in this process: every watched\n"
       "generation source, whether output is buffered, and for each event (fork, VM\n"
       "clone, process restore, cloned kernel RNG) whether draws stay unique across it.\n"
       "The SNAPSAFE_* environment (docs/USAGE.md) selects the sources, as in any program.\n"},
      {"uuid",
       "usage: snapsafe uuid [-n N] [--v4|--v7]\n"
       "\n"
       "Prints N UUIDs (RFC 9562), one per line, in the canonical lower-case form.\n"
       "  -n N    how many, 0..1000000 (default 1)\n"
       "  --v4    random UUIDs (the default)\n"
       "  --v7    time-ordered UUIDs: the lines come out strictly increasing\n"},
      {"bytes",
       "usage: snapsafe bytes N [--hex|--base64]\n"
       "\n"
       "Writes N random bytes (0..1073741824, i.e. up to 1 GiB) to stdout.\n"
       "  (none)    raw bytes; refused when stdout is a terminal (exit 2)\n"
       "  --hex     lower-case hex digits on one line\n"
       "  --base64  base64 (RFC 4648, with padding) on one line\n"},
      {"reqid",
       "usage: snapsafe reqid [-n N]\n"
       "\n"
       "Prints N request IDs, one per line: 128 random bits as 32 lower-case hex digits.\n"
       "  -n N    how many, 0..1000000 (default 1)\n"},
      {"genid",
       "usage: snapsafe genid read [--file PATH]\n"
       "       snapsafe genid bump [--min N] [--file PATH]\n"
       "       snapsafe genid wait [--timeout-ms T]\n"
       "\n"
       "The system generation: a number that changes whenever this system's memory may\n"
       "have been duplicated (a VM or container restored from a snapshot).\n"
       "Target: the SysGenID device if it exists (SNAPSAFE_SYSGENID_PATH, default\n"
       "/dev/sysgenid), else the counter file (SNAPSAFE_COUNTER_FILE, default\n"
       "/run/snapsafe/generation). --file PATH always selects that counter file.\n"
       "\n"
       "  read    prints the current generation\n"
       "  bump    advances it and prints the new one. Device: SYSGENID_TRIGGER_GEN_UPDATE\n"
       "          (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN); the result is at least\n"
       "          --min N (0..4294967295, default 0: one more). Counter file: an atomic\n"
       "          increment by one; if that ends below --min N (0..2^64-1), the bump\n"
       "          stands and the command fails (exit 1).\n"
       "  wait    device only: blocks until no tracked watcher has an unacknowledged\n"
       "          generation (SYSGENID_WAIT_WATCHERS), then prints the generation.\n"
       "          --timeout-ms T: give up after T ms (0..86400000; 0, the default: wait\n"
       "          as long as it takes); a timeout exits 1.\n"},
      {"help",
       "usage: snapsafe help [COMMAND]\n"
       "\n"
       "Prints the list of commands, or the full help of one (also: COMMAND --help).\n"},
  };
  return *help;
}

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

struct Parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // option -> value
  std::map<std::string, bool> flags;
  bool help = false;
  bool has(const std::string& name) const { return values.count(name) || flags.count(name); }
};

// Parses args[first..] for `command`: `value_options` take a value ("-n 5", "--min=5"),
// `flag_options` do not. --help/-h anywhere asks for the command's help. An argument
// that starts with '-' and a digit is a (negative) value, left to the number check.
Parsed parse(const std::string& command, const std::vector<std::string>& args, size_t first,
             const std::vector<std::string>& value_options,
             const std::vector<std::string>& flag_options) {
  const auto is = [](const std::vector<std::string>& list, const std::string& name) {
    for (const std::string& entry : list) {
      if (entry == name) return true;
    }
    return false;
  };
  Parsed parsed;
  bool only_positional = false;
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-' || (arg[1] >= '0' && arg[1] <= '9')) {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (parsed.has(name)) throw UsageError{command, name + " given twice"};
    if (is(value_options, name)) {
      if (!value) {
        if (i + 1 >= args.size()) throw UsageError{command, name + " needs a value"};
        value = args[++i];
      }
      parsed.values[name] = *value;
    } else if (is(flag_options, name) && !value) {
      parsed.flags[name] = true;
    } else if (is(flag_options, name)) {
      throw UsageError{command, name + " takes no value"};
    } else {
      throw UsageError{command, "unknown option '" + name + "'"};
    }
  }
  return parsed;
}

// A plain decimal number in [0, max]: digits only (no sign, space or base prefix), no
// overflow.
uint64_t parse_number(const std::string& command, const std::string& what,
                      const std::string& text, uint64_t max) {
  if (text.empty()) throw UsageError{command, what + ": empty number"};
  if (text[0] == '-') throw UsageError{command, what + " must not be negative: " + text};
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      throw UsageError{command, what + " is not a decimal number: '" + text + "'"};
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      throw UsageError{command, what + " is too large: " + text + " (at most " +
                                    std::to_string(max) + ")"};
    }
    value = value * 10 + digit;
  }
  if (value > max) {
    throw UsageError{command, what + " is too large: " + text + " (at most " +
                                  std::to_string(max) + ")"};
  }
  return value;
}

void no_positional(const std::string& command, const Parsed& parsed) {
  if (!parsed.positional.empty()) {
    throw UsageError{command, "unexpected argument '" + parsed.positional[0] + "'"};
  }
}

uint64_t count_option(const std::string& command, const Parsed& parsed) {
  const auto it = parsed.values.find("-n");
  return it == parsed.values.end() ? 1 : parse_number(command, "-n", it->second, kMaxCount);
}

// ---- Random output ----

int cmd_status(const Parsed& parsed, Output& out) {
  no_positional("status", parsed);
  out.put(snapsafe::status().to_string());
  return kExitOk;
}

int cmd_uuid(const Parsed& parsed, Output& out) {
  no_positional("uuid", parsed);
  if (parsed.flags.count("--v4") && parsed.flags.count("--v7")) {
    throw UsageError{"uuid", "choose one of --v4 and --v7"};
  }
  const uint64_t count = count_option("uuid", parsed);
  const bool v7 = parsed.flags.count("--v7") != 0;
  char line[37];
  line[36] = '\n';
  for (uint64_t i = 0; i < count; ++i) {
    snapsafe::uuid_to_chars(v7 ? snapsafe::uuid_v7() : snapsafe::uuid_v4(), line);
    out.put(line, sizeof line);
  }
  return kExitOk;
}

int cmd_reqid(const Parsed& parsed, Output& out) {
  no_positional("reqid", parsed);
  const uint64_t count = count_option("reqid", parsed);
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
  if (parsed.positional.empty()) throw UsageError{"bytes", "how many bytes? (bytes N)"};
  if (parsed.positional.size() > 1) {
    throw UsageError{"bytes", "unexpected argument '" + parsed.positional[1] + "'"};
  }
  const bool hex = parsed.flags.count("--hex") != 0;
  const bool base64 = parsed.flags.count("--base64") != 0;
  if (hex && base64) throw UsageError{"bytes", "choose one of --hex and --base64"};
  const uint64_t total = parse_number("bytes", "N", parsed.positional[0], kMaxBytes);
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
  bool device;       // the SysGenID device, else a counter file
  std::string path;
};

Target resolve_target(const Parsed& parsed) {
  if (const auto it = parsed.values.find("--file"); it != parsed.values.end()) {
    if (it->second.empty()) throw UsageError{"genid", "--file needs a path"};
    return {false, it->second};
  }
  const std::string device = env_or("SNAPSAFE_SYSGENID_PATH", snapsafe::genid::kDefaultSysgenidPath);
  if (access(device.c_str(), F_OK) == 0) return {true, device};
  return {false, env_or("SNAPSAFE_COUNTER_FILE", snapsafe::genid::kDefaultCounterFilePath)};
}

std::string errno_text(const std::string& path, const char* what, int error) {
  return path + ": " + what + ": " + std::strerror(error);
}

// An open descriptor on the device, closed on scope exit.
class DeviceFd {
 public:
  explicit DeviceFd(const std::string& path) : path_(path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw RuntimeError{errno_text(path, "open", errno)};
  }
  ~DeviceFd() { close(fd_); }
  DeviceFd(const DeviceFd&) = delete;
  DeviceFd& operator=(const DeviceFd&) = delete;
  int get() const { return fd_; }

  // The current generation: the first 4 bytes of the read-only page (a regular file
  // standing in for the device in tests: the u32 at offset 0).
  uint32_t generation() const {
    struct stat st;
    if (fstat(fd_, &st) != 0) throw RuntimeError{errno_text(path_, "fstat", errno)};
    uint32_t value = 0;
    if (S_ISREG(st.st_mode)) {
      if (pread(fd_, &value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
        throw RuntimeError{path_ + ": not a SysGenID device (a regular file shorter than 4 bytes)"};
      }
      return value;
    }
    if (!S_ISCHR(st.st_mode)) throw RuntimeError{path_ + ": not a SysGenID device"};
    void* page = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd_, 0);
    if (page == MAP_FAILED) throw RuntimeError{errno_text(path_, "mmap", errno)};
    value = __atomic_load_n(static_cast<const uint32_t*>(page), __ATOMIC_ACQUIRE);
    munmap(page, 4096);
    return value;
  }

  // An ioctl's errno as a message.
  std::string ioctl_error(const char* name, int error) const {
    if (error == ENOTTY || error == EINVAL) {
      return path_ + ": not a SysGenID device (" + name + ": " + std::strerror(error) + ")";
    }
    if (error == EACCES || error == EPERM) {
      return path_ + ": " + name + ": " + std::strerror(error) +
             " (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)";
    }
    return errno_text(path_, name, error);
  }

 private:
  std::string path_;
  int fd_;
};

void put_number(Output& out, uint64_t value) { out.put(std::to_string(value) + "\n"); }

int cmd_genid_read(const Parsed& parsed, Output& out) {
  no_positional("genid", parsed);
  const Target target = resolve_target(parsed);
  if (target.device) {
    put_number(out, DeviceFd(target.path).generation());
    return kExitOk;
  }
  snapsafe::genid::Generation generation = 0;
  if (std::string error = snapsafe::genid::counter_file_read(target.path, &generation); !error.empty()) {
    throw RuntimeError{error};
  }
  put_number(out, generation);
  return kExitOk;
}

int cmd_genid_bump(const Parsed& parsed, Output& out) {
  no_positional("genid", parsed);
  const Target target = resolve_target(parsed);
  uint64_t min = 0;
  if (const auto it = parsed.values.find("--min"); it != parsed.values.end()) {
    min = parse_number("genid", "--min", it->second, target.device ? UINT32_MAX : UINT64_MAX);
  }
  if (target.device) {
    const DeviceFd device(target.path);
    if (ioctl(device.get(), kSysgenidTriggerGenUpdate, static_cast<unsigned long>(min)) != 0) {
      throw RuntimeError{device.ioctl_error("SYSGENID_TRIGGER_GEN_UPDATE", errno)};
    }
    put_number(out, device.generation());
    return kExitOk;
  }
  snapsafe::genid::Generation generation = 0;
  if (std::string error = snapsafe::genid::counter_file_bump(target.path, &generation); !error.empty()) {
    throw RuntimeError{error};
  }
  if (generation < min) {
    throw RuntimeError{target.path + ": bumped to " + std::to_string(generation) +
                       ", still below --min " + std::to_string(min) +
                       " (a counter file counts up by one)"};
  }
  put_number(out, generation);
  return kExitOk;
}

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

int cmd_genid_wait(const Parsed& parsed, Output& out) {
  no_positional("genid", parsed);
  uint64_t timeout = 0;
  if (const auto it = parsed.values.find("--timeout-ms"); it != parsed.values.end()) {
    timeout = parse_number("genid", "--timeout-ms", it->second, kMaxTimeoutMs);
  }
  const Target target = resolve_target(parsed);
  if (!target.device) {
    throw RuntimeError{"genid wait needs the SysGenID device, and " +
                       env_or("SNAPSAFE_SYSGENID_PATH", snapsafe::genid::kDefaultSysgenidPath) +
                       " does not exist (a counter file has no watchers to wait for)"};
  }
  const DeviceFd device(target.path);
  const uint64_t deadline = monotonic_ms() + timeout;
  for (;;) {
    uint64_t left = 0;
    if (timeout != 0) {
      const uint64_t now = monotonic_ms();
      if (now >= deadline) {
        throw RuntimeError{target.path + ": timed out after " + std::to_string(timeout) +
                           " ms: some watchers have not acknowledged the generation"};
      }
      left = deadline - now;
    }
    if (ioctl(device.get(), kSysgenidWaitWatchers, static_cast<unsigned long>(left)) == 0) break;
    const int error = errno;
    if (error == EINTR) {
      // The generation moved while waiting (or this descriptor is outdated): acknowledge
      // the current one for this descriptor, as the interface asks, and wait again.
      const uint32_t current = device.generation();
      (void)!write(device.get(), &current, sizeof current);
      continue;
    }
    if (error == ETIMEDOUT || error == EAGAIN || error == EBUSY) {
      throw RuntimeError{target.path + ": timed out after " + std::to_string(timeout) +
                         " ms: some watchers have not acknowledged the generation"};
    }
    throw RuntimeError{device.ioctl_error("SYSGENID_WAIT_WATCHERS", error)};
  }
  put_number(out, device.generation());
  return kExitOk;
}

// ---- Dispatch ----

int print_help(const std::string& topic) {
  if (topic.empty()) {
    std::fputs(kGeneralHelp, stdout);
  } else {
    const auto it = command_help().find(topic);
    if (it == command_help().end()) throw UsageError{"", "no such command '" + topic + "'"};
    std::fputs(it->second.c_str(), stdout);
  }
  return std::fflush(stdout) == 0 && !std::ferror(stdout) ? kExitOk : kExitRuntime;
}

int run(const std::vector<std::string>& args, Output& out) {
  if (args.size() < 2) {
    std::fputs(kGeneralHelp, stderr);
    return kExitUsage;
  }
  const std::string& command = args[1];
  if (command == "--help" || command == "-h") return print_help("");
  if (command == "help") {
    if (args.size() > 3) throw UsageError{"help", "unexpected argument '" + args[3] + "'"};
    return print_help(args.size() == 3 ? args[2] : "");
  }
  struct Spec {
    std::vector<std::string> values, flags;
    int (*run)(const Parsed&, Output&);
  };
  static const std::map<std::string, Spec> kCommands = {
      {"status", {{}, {}, &cmd_status}},
      {"uuid", {{"-n"}, {"--v4", "--v7"}, &cmd_uuid}},
      {"bytes", {{}, {"--hex", "--base64"}, &cmd_bytes}},
      {"reqid", {{"-n"}, {}, &cmd_reqid}},
  };
  static const std::map<std::string, Spec> kGenidCommands = {
      {"read", {{"--file"}, {}, &cmd_genid_read}},
      {"bump", {{"--min", "--file"}, {}, &cmd_genid_bump}},
      {"wait", {{"--timeout-ms"}, {}, &cmd_genid_wait}},
  };
  if (command == "genid") {
    if (args.size() < 3) throw UsageError{"genid", "which one: read, bump or wait?"};
    if (args[2] == "--help" || args[2] == "-h") return print_help("genid");
    const auto it = kGenidCommands.find(args[2]);
    if (it == kGenidCommands.end()) {
      throw UsageError{"genid", "unknown genid command '" + args[2] + "' (read, bump or wait)"};
    }
    const Parsed parsed = parse("genid", args, 3, it->second.values, it->second.flags);
    if (parsed.help) return print_help("genid");
    return it->second.run(parsed, out);
  }
  const auto it = kCommands.find(command);
  if (it == kCommands.end()) throw UsageError{"", "unknown command '" + command + "'"};
  const Parsed parsed = parse(command, args, 2, it->second.values, it->second.flags);
  if (parsed.help) return print_help(command);
  return it->second.run(parsed, out);
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
    std::fprintf(stderr, "snapsafe: %s\n", e.message.c_str());
  } catch (const snapsafe::entropy_error& e) {
    std::fprintf(stderr, "snapsafe: no entropy: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "snapsafe: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "snapsafe: %s\n", e.what());
  }
  return kExitRuntime;
}
