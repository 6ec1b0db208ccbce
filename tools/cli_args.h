// File: tools/cli_args.h
//
// The `snapsafe` command line's argument parsing (tools/snapsafe.cc runs what it returns),
// kept apart from main() so that tests/fuzz/cli_args_fuzz.cc can drive exactly the code the
// tool runs. Nothing here touches the machine: no environment, no files, no output.
// Every problem with the arguments is a UsageError (exit 2); nothing else is thrown
// (except std::bad_alloc).
//
// The order of the checks is the tool's: run() first calls parse_invocation(), then the
// command's *_options() function, and only then anything that depends on the machine
// (whether the SysGenID device exists, whether stdout is a terminal). The genid commands
// interleave such steps: `genid bump` checks --min against a bound that depends on the
// target (min_option()), and on the device also against the current generation
// (check_device_min()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace snapsafe::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

inline constexpr uint64_t kMaxCount = 1000000;            // -n
inline constexpr uint64_t kMaxBytes = uint64_t{1} << 30;  // bytes N: 1 GiB
inline constexpr uint64_t kMaxTimeoutMs = 86400000;       // --timeout-ms: one day
inline constexpr uint64_t kMaxMinAhead = 65536;           // device --min: at most this far ahead

// A usage error (exit 2) for `command` ("" for the tool itself). main() prints
// "snapsafe: COMMAND: MESSAGE" and "Try 'snapsafe help COMMAND'."
struct UsageError {
  std::string command;
  std::string message;
};

// `text` as a message shows it: control characters and DEL as \xNN, so that no argument
// can split the one-line error message or send a terminal escape sequences. Every piece
// of an argument that goes into a UsageError goes through this (found by
// tests/fuzz/cli_args_fuzz.cc: `snapsafe uuid -n $'1\n2'` printed a two-line error).
std::string shown(const std::string& text);

// `snapsafe help`, and each command's full help by name ("status", "uuid", "bytes",
// "reqid", "genid", "help").
extern const char kGeneralHelp[];
const std::map<std::string, std::string>& command_help();

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
             const std::vector<std::string>& flag_options);

// A plain decimal number in [0, max]: digits only (no sign, space or base prefix), no
// overflow.
uint64_t parse_number(const std::string& command, const std::string& what, const std::string& text,
                      uint64_t max);

void no_positional(const std::string& command, const Parsed& parsed);

// What a whole command line (args[0] is the program) asks for.
struct Invocation {
  enum class Kind {
    kNoCommand,  // no arguments: the general help on stderr, exit 2
    kHelp,       // print `topic`'s help ("" for the general help) on stdout
    kRun,        // run `command` with `parsed`
  };
  Kind kind = Kind::kNoCommand;
  std::string topic;    // kHelp: a key of command_help(), or ""
  std::string command;  // kRun: "status", "uuid", "bytes", "reqid", "genid read",
                        // "genid bump" or "genid wait"
  Parsed parsed;        // kRun: its arguments
};
Invocation parse_invocation(const std::vector<std::string>& args);

// Each command's options, checked in the order the command checks them.
void status_options(const Parsed& parsed);
struct UuidOptions {
  uint64_t count;
  bool v7;
};
UuidOptions uuid_options(const Parsed& parsed);
uint64_t reqid_options(const Parsed& parsed);  // the count
struct BytesOptions {
  uint64_t total;
  bool hex;
  bool base64;
};
BytesOptions bytes_options(const Parsed& parsed);  // (the terminal check comes after)

// genid read|bump|wait: no positional arguments; then --file PATH if given (never empty);
// bump's --min (the device only, at most UINT32_MAX; 0 if absent; a UsageError with a
// counter file, whose bump draws a random generation); bump's --set (a counter file only,
// not with --min, at most UINT64_MAX - 1: UINT64_MAX is the "unknown" generation; nullopt
// if absent); wait's --timeout-ms (0 if absent).
std::optional<std::string> file_option(const Parsed& parsed);
uint64_t min_option(const Parsed& parsed, bool device);
std::optional<uint64_t> set_option(const Parsed& parsed, bool device);
uint64_t timeout_option(const Parsed& parsed);

// `genid bump --min MIN` on the device, whose generation is `current` now. The device
// sets the generation to max(current + 1, MIN) and keeps it at 4294967295 for good once
// there: every later VM clone then goes unsignalled (kernel_shim/sysgenid.c). So MIN may
// be at most kMaxMinAhead above `current` (a step no restore needs to exceed; a typo
// cannot end detection), and the result must stay below 4294967295: a UsageError
// otherwise. A `current` already at 4294967295 passes (the device's EOVERFLOW then says
// it is saturated).
void check_device_min(uint64_t min, uint32_t current);

}  // namespace snapsafe::cli
