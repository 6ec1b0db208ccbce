// The snapsafe command line's argument parsing: see cli_args.h.
#include "tools/cli_args.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace snapsafe::cli {
namespace {

uint64_t count_option(const std::string& command, const Parsed& parsed) {
  const auto it = parsed.values.find("-n");
  return it == parsed.values.end() ? 1 : parse_number(command, "-n", it->second, kMaxCount);
}

}  // namespace

std::string shown(const std::string& text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

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
    "  genid bump [--min N|--set V] [--file PATH] [--reseed-kernel]\n"
    "                                      advance it (a restore hook runs this)\n"
    "  genid wait [--timeout-ms T]         wait until SysGenID watchers acknowledged it\n"
    "  genid follow [--file PATH] [--sources LIST] [--reseed-kernel] ...\n"
    "                                      bump the counter file on every VM restore (root)\n"
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
       "       snapsafe genid bump [--min N | --set VALUE] [--file PATH] [--reseed-kernel]\n"
       "       snapsafe genid wait [--timeout-ms T]\n"
       "       snapsafe genid follow [--file PATH] [--sources LIST] [--reseed-kernel]\n"
       "                             [--interval-ms N] [--vmclock-path P] [--sysgenid-path P]\n"
       "                             [--once] [--test-sources]\n"
       "\n"
       "The system generation: a number that changes whenever this system's memory may\n"
       "have been duplicated (a VM or container restored from a snapshot).\n"
       "Target: the SysGenID device if it exists (SNAPSAFE_SYSGENID_PATH, default\n"
       "/dev/sysgenid), else the counter file (SNAPSAFE_COUNTER_FILE, default\n"
       "/run/snapsafe/generation). --file PATH always selects that counter file.\n"
       "The device must be a character device, owned by root or you, on a path only\n"
       "root or you can change (a FIFO, a regular file or another user's file there\n"
       "is refused, exit 1).\n"
       "\n"
       "  read    prints the current generation\n"
       "  bump    advances it and prints the new one. Device: SYSGENID_TRIGGER_GEN_UPDATE\n"
       "          (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN); the result is at least\n"
       "          --min N (default 0: one more). N is at most 65536 above the current\n"
       "          generation, and the result stays below 4294967295 (the device would\n"
       "          keep that value for good and never signal a VM clone again): exit 2\n"
       "          otherwise. Counter file: atomically set to a fresh random generation\n"
       "          drawn here (never the one it replaces), so clones bumped each on its\n"
       "          own (host) side differ even if their kernel RNGs are clones; --min\n"
       "          is refused there (exit 2).\n"
       "          --set VALUE (counter file only; decimal, 0..18446744073709551614):\n"
       "          that generation instead, one handed in from outside the clone; a file\n"
       "          already at VALUE is left as it is (\"already at generation V:\n"
       "          unchanged\" on stderr, exit 0).\n"
       "          --reseed-kernel (needs CAP_SYS_ADMIN): first mix the new generation,\n"
       "          RDRAND words and the cycle counter into the kernel's input pool\n"
       "          (RNDADDENTROPY, no entropy credited) and reseed its CRNG\n"
       "          (RNDRESEEDCRNG); says what was and was not done. The bump is done\n"
       "          either way; exit 1 if the kernel part could not be.\n"
       "  wait    device only: blocks until no tracked watcher has an unacknowledged\n"
       "          generation (SYSGENID_WAIT_WATCHERS), then prints the generation. Opens\n"
       "          the device read-write: it acknowledges each change it sees.\n"
       "          --timeout-ms T: give up after T ms (0..86400000; 0, the default: wait\n"
       "          as long as it takes); a timeout exits 1.\n"
       "  follow  runs until killed (a root service: packaging/snapsafe-genid-follow.service):\n"
       "          watches the VM generation signals only root can see and bumps the\n"
       "          world-readable counter file (--file, else SNAPSAFE_COUNTER_FILE, else\n"
       "          /run/snapsafe/generation; created if missing) on each change, so that\n"
       "          non-root processes and containers naming it reseed. One line per event\n"
       "          on stderr. Asynchronous: a clone may draw before it runs (docs/DESIGN.md).\n"
       "          --sources LIST: comma-separated, of vmclock (/dev/vmclock0, or\n"
       "          --vmclock-path P; poll() where the kernel notifies, else compared every\n"
       "          --interval-ms N, 1..60000, default 100), uevent (the kernel's vmgenid\n"
       "          uevent NEW_VMGENID=1) and sysgenid (/dev/sysgenid, or --sysgenid-path P:\n"
       "          a tracked watcher, acknowledged after the bump). Default: every one that\n"
       "          opens; named ones must all open (exit 1 otherwise).\n"
       "          --reseed-kernel: as for bump, before each bump. --once: exit after the\n"
       "          first bump. --test-sources (tests only): accept a regular file as the\n"
       "          VMClock page and uevents from user-space senders.\n"},
      {"help",
       "usage: snapsafe help [COMMAND]\n"
       "\n"
       "Prints the list of commands, or the full help of one (also: COMMAND --help).\n"},
  };
  return *help;
}

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
      throw UsageError{command, "unknown option '" + shown(name) + "'"};
    }
  }
  return parsed;
}

// A plain decimal number in [0, max]: digits only (no sign, space or base prefix), no
// overflow.
uint64_t parse_number(const std::string& command, const std::string& what, const std::string& text,
                      uint64_t max) {
  if (text.empty()) throw UsageError{command, what + ": empty number"};
  if (text[0] == '-') throw UsageError{command, what + " must not be negative: " + shown(text)};
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      throw UsageError{command, what + " is not a decimal number: '" + shown(text) + "'"};
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      throw UsageError{command, what + " is too large: " + shown(text) + " (at most " +
                                    std::to_string(max) + ")"};
    }
    value = value * 10 + digit;
  }
  if (value > max) {
    throw UsageError{
        command, what + " is too large: " + shown(text) + " (at most " + std::to_string(max) + ")"};
  }
  return value;
}

void no_positional(const std::string& command, const Parsed& parsed) {
  if (!parsed.positional.empty()) {
    throw UsageError{command, "unexpected argument '" + shown(parsed.positional[0]) + "'"};
  }
}

Invocation parse_invocation(const std::vector<std::string>& args) {
  Invocation invocation;
  if (args.size() < 2) return invocation;  // kNoCommand
  const std::string& command = args[1];
  if (command == "--help" || command == "-h") {
    invocation.kind = Invocation::Kind::kHelp;
    return invocation;
  }
  if (command == "help") {
    if (args.size() > 3) throw UsageError{"help", "unexpected argument '" + shown(args[3]) + "'"};
    invocation.kind = Invocation::Kind::kHelp;
    invocation.topic = args.size() == 3 ? args[2] : "";
    if (!invocation.topic.empty() && command_help().count(invocation.topic) == 0) {
      throw UsageError{"", "no such command '" + shown(invocation.topic) + "'"};
    }
    return invocation;
  }
  struct Spec {
    std::vector<std::string> values, flags;
  };
  static const auto* kCommands = new std::map<std::string, Spec>{
      {"status", {{}, {}}},
      {"uuid", {{"-n"}, {"--v4", "--v7"}}},
      {"bytes", {{}, {"--hex", "--base64"}}},
      {"reqid", {{"-n"}, {}}},
  };
  static const auto* kGenidCommands = new std::map<std::string, Spec>{
      {"read", {{"--file"}, {}}},
      {"bump", {{"--min", "--set", "--file"}, {"--reseed-kernel"}}},
      {"wait", {{"--timeout-ms"}, {}}},
      {"follow",
       {{"--file", "--sources", "--interval-ms", "--vmclock-path", "--sysgenid-path"},
        {"--reseed-kernel", "--once", "--test-sources"}}},
  };
  if (command == "genid") {
    if (args.size() < 3) throw UsageError{"genid", "which one: read, bump, wait or follow?"};
    invocation.kind = Invocation::Kind::kHelp;
    invocation.topic = "genid";
    if (args[2] == "--help" || args[2] == "-h") return invocation;
    const auto it = kGenidCommands->find(args[2]);
    if (it == kGenidCommands->end()) {
      throw UsageError{
          "genid", "unknown genid command '" + shown(args[2]) + "' (read, bump, wait or follow)"};
    }
    invocation.parsed = parse("genid", args, 3, it->second.values, it->second.flags);
    if (invocation.parsed.help) return invocation;
    invocation.kind = Invocation::Kind::kRun;
    invocation.topic.clear();
    invocation.command = "genid " + args[2];
    return invocation;
  }
  const auto it = kCommands->find(command);
  if (it == kCommands->end()) throw UsageError{"", "unknown command '" + shown(command) + "'"};
  invocation.parsed = parse(command, args, 2, it->second.values, it->second.flags);
  if (invocation.parsed.help) {
    invocation.kind = Invocation::Kind::kHelp;
    invocation.topic = command;
    return invocation;
  }
  invocation.kind = Invocation::Kind::kRun;
  invocation.command = command;
  return invocation;
}

void status_options(const Parsed& parsed) { no_positional("status", parsed); }

UuidOptions uuid_options(const Parsed& parsed) {
  no_positional("uuid", parsed);
  if (parsed.flags.count("--v4") && parsed.flags.count("--v7")) {
    throw UsageError{"uuid", "choose one of --v4 and --v7"};
  }
  const uint64_t count = count_option("uuid", parsed);
  return {count, parsed.flags.count("--v7") != 0};
}

uint64_t reqid_options(const Parsed& parsed) {
  no_positional("reqid", parsed);
  return count_option("reqid", parsed);
}

BytesOptions bytes_options(const Parsed& parsed) {
  if (parsed.positional.empty()) throw UsageError{"bytes", "how many bytes? (bytes N)"};
  if (parsed.positional.size() > 1) {
    throw UsageError{"bytes", "unexpected argument '" + shown(parsed.positional[1]) + "'"};
  }
  const bool hex = parsed.flags.count("--hex") != 0;
  const bool base64 = parsed.flags.count("--base64") != 0;
  if (hex && base64) throw UsageError{"bytes", "choose one of --hex and --base64"};
  const uint64_t total = parse_number("bytes", "N", parsed.positional[0], kMaxBytes);
  return {total, hex, base64};
}

std::optional<std::string> file_option(const Parsed& parsed) {
  const auto it = parsed.values.find("--file");
  if (it == parsed.values.end()) return std::nullopt;
  if (it->second.empty()) throw UsageError{"genid", "--file needs a path"};
  return it->second;
}

uint64_t min_option(const Parsed& parsed, bool device) {
  const auto it = parsed.values.find("--min");
  if (it == parsed.values.end()) return 0;
  if (!device) {
    throw UsageError{"genid",
                     "--min applies to the SysGenID device only: a counter file "
                     "bump draws a random generation (--set VALUE sets one)"};
  }
  return parse_number("genid", "--min", it->second, UINT32_MAX);
}

std::optional<uint64_t> set_option(const Parsed& parsed, bool device) {
  const auto it = parsed.values.find("--set");
  if (it == parsed.values.end()) return std::nullopt;
  if (device) {
    throw UsageError{"genid",
                     "--set applies to a counter file only: the SysGenID device's "
                     "generation is the kernel's counter (--file PATH selects a "
                     "counter file)"};
  }
  if (parsed.values.count("--min")) throw UsageError{"genid", "choose one of --min and --set"};
  return parse_number("genid", "--set", it->second, UINT64_MAX - 1);
}

void check_device_min(uint64_t min, uint32_t current) {
  constexpr uint64_t kSaturated = UINT32_MAX;
  if (current == kSaturated) return;
  const uint64_t limit = std::min<uint64_t>(uint64_t{current} + kMaxMinAhead, kSaturated - 1);
  if (min > uint64_t{current} + kMaxMinAhead) {
    throw UsageError{"genid", "--min " + std::to_string(min) + " is more than " +
                                  std::to_string(kMaxMinAhead) + " above the current generation " +
                                  std::to_string(current) + " (at most " + std::to_string(limit) +
                                  ")"};
  }
  if (std::max<uint64_t>(uint64_t{current} + 1, min) >= kSaturated) {
    throw UsageError{"genid", (min >= kSaturated ? "--min " + std::to_string(min) : "a bump") +
                                  " would take the generation to 4294967295, where the "
                                  "device keeps it for good: no VM clone could ever be "
                                  "signalled again"};
  }
}

uint64_t timeout_option(const Parsed& parsed) {
  const auto it = parsed.values.find("--timeout-ms");
  if (it == parsed.values.end()) return 0;
  return parse_number("genid", "--timeout-ms", it->second, kMaxTimeoutMs);
}

}  // namespace snapsafe::cli
