// Fuzz target: the `snapsafe` CLI's argument parsing (tools/cli_args.h), the code the tool
// runs before anything touches the machine.
//
// Design: the input is split at NUL bytes into arguments (at most 12), after
// argv[0] = "snapsafe". parse_invocation() runs on them, then, for a command, the
// *_options() checks that command runs, in its order (for `genid bump` with both --min
// bounds, device and counter file). Nothing is executed: no random output, no file.
// Properties:
//  - nothing but snapsafe::cli::UsageError is ever thrown (anything else escapes and
//    libFuzzer reports it);
//  - every usage message is one printable line (the tool prints "snapsafe: CMD: MESSAGE"
//    as one line on stderr), and names a known command or none;
//  - what parses is consistent: kNoCommand exactly without arguments; a help topic is ""
//    or a command with help; a run is a known command whose options are its own;
//  - numbers: parse_number, on every argument and bound, agrees with an independent
//    oracle (digits only, no overflow, at most the bound), and the -n / N / --min /
//    --timeout-ms values the commands get are the oracle's values of their texts;
//  - `genid follow`'s options (tools/genid_follow.h): accepted exactly when the oracle's
//    paths, source list and interval are, and then what it returns is what they say.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "tools/cli_args.h"
#include "tools/genid_follow.h"

namespace {

namespace cli = snapsafe::cli;

// The oracle for parse_number: the value of a decimal text if it is at most `max`.
std::optional<uint64_t> oracle_number(const std::string& text, uint64_t max) {
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const size_t first = text.find_first_not_of('0');
  const std::string digits = first == std::string::npos ? "0" : text.substr(first);
  const std::string bound = std::to_string(max);
  if (digits.size() > bound.size() || (digits.size() == bound.size() && digits > bound)) {
    return std::nullopt;
  }
  return std::stoull(digits);
}

bool printable_line(const std::string& text) {
  if (text.empty()) return false;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return false;
  }
  return true;
}

void check_usage_error(const cli::UsageError& e) {
  static const std::set<std::string> kCommands = {"",      "help",  "status", "uuid",
                                                  "bytes", "reqid", "genid"};
  FUZZ_CHECK(kCommands.count(e.command), "usage error for unknown command '%s'", e.command.c_str());
  FUZZ_CHECK(printable_line(e.message), "usage message is not one printable line: '%s'",
             e.message.c_str());
}

// parse_number against the oracle; returns the value or nullopt (a UsageError).
std::optional<uint64_t> checked_number(const std::string& text, uint64_t max) {
  const std::optional<uint64_t> want = oracle_number(text, max);
  try {
    const uint64_t got = cli::parse_number("uuid", "-n", text, max);
    FUZZ_CHECK(want.has_value() && *want == got, "parse_number('%s', %llu) = %llu, oracle %s",
               text.c_str(), static_cast<unsigned long long>(max),
               static_cast<unsigned long long>(got), want ? "other value" : "rejects");
    return got;
  } catch (const cli::UsageError& e) {
    check_usage_error(e);
    FUZZ_CHECK(!want.has_value(), "parse_number('%s', %llu) refused: %s", text.c_str(),
               static_cast<unsigned long long>(max), e.message.c_str());
    return std::nullopt;
  }
}

// A value option's number as the command must get it: the oracle's value of its text.
void check_option_value(const cli::Parsed& parsed, const std::string& option, uint64_t got,
                        uint64_t max, uint64_t absent) {
  const auto it = parsed.values.find(option);
  if (it == parsed.values.end()) {
    FUZZ_CHECK(got == absent, "%s absent but got %llu", option.c_str(),
               static_cast<unsigned long long>(got));
    return;
  }
  const std::optional<uint64_t> want = oracle_number(it->second, max);
  FUZZ_CHECK(want && *want == got, "%s '%s' gave %llu", option.c_str(), it->second.c_str(),
             static_cast<unsigned long long>(got));
}

void check_options_belong(const cli::Parsed& parsed, const std::set<std::string>& values,
                          const std::set<std::string>& flags) {
  for (const auto& [name, value] : parsed.values) {
    FUZZ_CHECK(values.count(name), "value option %s does not belong", name.c_str());
  }
  for (const auto& [name, on] : parsed.flags) {
    FUZZ_CHECK(flags.count(name) && on, "flag %s does not belong", name.c_str());
  }
}

// Runs `check` (a command's option checks, then this file's checks of what it returned)
// and compares its outcome with the oracle's `want_ok`.
template <typename Check>
void expect(bool want_ok, const std::string& command, Check check) {
  try {
    check();
  } catch (const cli::UsageError& e) {
    check_usage_error(e);
    FUZZ_CHECK(!want_ok, "%s refused valid options: %s", command.c_str(), e.message.c_str());
    return;
  }
  FUZZ_CHECK(want_ok, "%s accepted invalid options", command.c_str());
}

// Whether `option` is absent or its text is a number the oracle accepts.
bool number_ok(const cli::Parsed& parsed, const std::string& option, uint64_t max) {
  const auto it = parsed.values.find(option);
  return it == parsed.values.end() || oracle_number(it->second, max).has_value();
}

void run_command(const cli::Invocation& invocation) {
  const cli::Parsed& p = invocation.parsed;
  const std::string& command = invocation.command;
  const bool no_positional = p.positional.empty();
  if (command == "status") {
    check_options_belong(p, {}, {});
    expect(no_positional, command, [&] { cli::status_options(p); });
  } else if (command == "uuid") {
    check_options_belong(p, {"-n"}, {"--v4", "--v7"});
    const bool both = p.flags.count("--v4") && p.flags.count("--v7");
    expect(no_positional && !both && number_ok(p, "-n", cli::kMaxCount), command, [&] {
      const cli::UuidOptions options = cli::uuid_options(p);
      FUZZ_CHECK(options.v7 == (p.flags.count("--v7") != 0), "uuid --v7");
      check_option_value(p, "-n", options.count, cli::kMaxCount, 1);
    });
  } else if (command == "reqid") {
    check_options_belong(p, {"-n"}, {});
    expect(no_positional && number_ok(p, "-n", cli::kMaxCount), command,
           [&] { check_option_value(p, "-n", cli::reqid_options(p), cli::kMaxCount, 1); });
  } else if (command == "bytes") {
    check_options_belong(p, {}, {"--hex", "--base64"});
    const bool hex = p.flags.count("--hex") != 0, base64 = p.flags.count("--base64") != 0;
    const bool ok = p.positional.size() == 1 && !(hex && base64) &&
                    oracle_number(p.positional[0], cli::kMaxBytes).has_value();
    expect(ok, command, [&] {
      const cli::BytesOptions options = cli::bytes_options(p);
      FUZZ_CHECK(options.hex == hex && options.base64 == base64, "bytes flags");
      FUZZ_CHECK(options.total == *oracle_number(p.positional[0], cli::kMaxBytes), "bytes N");
    });
  } else if (command == "genid wait") {
    check_options_belong(p, {"--timeout-ms"}, {});
    expect(no_positional && number_ok(p, "--timeout-ms", cli::kMaxTimeoutMs), command, [&] {
      cli::no_positional("genid", p);
      check_option_value(p, "--timeout-ms", cli::timeout_option(p), cli::kMaxTimeoutMs, 0);
    });
  } else if (command == "genid read" || command == "genid bump") {
    const bool bump = command == "genid bump";
    if (bump) {
      check_options_belong(p, {"--min", "--set", "--file"}, {"--reseed-kernel"});
    } else {
      check_options_belong(p, {"--file"}, {});
    }
    const auto file = p.values.find("--file");
    const bool file_ok = file == p.values.end() || !file->second.empty();
    const bool has_min = p.values.count("--min") != 0, has_set = p.values.count("--set") != 0;
    // bump checks --min and --set after resolving the target (is there a SysGenID
    // device?): both targets are tried. --min: the device only; --set: a counter file
    // only, never with --min, below the "unknown" generation.
    for (const bool device : {false, true}) {
      const bool options_ok = !bump || (device ? !has_set && number_ok(p, "--min", UINT32_MAX)
                                               : !has_min && number_ok(p, "--set", UINT64_MAX - 1));
      expect(no_positional && file_ok && options_ok, command, [&] {
        cli::no_positional("genid", p);
        const std::optional<std::string> path = cli::file_option(p);
        FUZZ_CHECK(path.has_value() == (file != p.values.end()), "--file presence");
        if (bump) {
          check_option_value(p, "--min", cli::min_option(p, device), UINT32_MAX, 0);
          const std::optional<uint64_t> set = cli::set_option(p, device);
          FUZZ_CHECK(set.has_value() == has_set, "--set presence");
          if (set) check_option_value(p, "--set", *set, UINT64_MAX - 1, 0);
        }
      });
    }
  } else if (command == "genid follow") {
    check_options_belong(
        p, {"--file", "--sources", "--interval-ms", "--vmclock-path", "--sysgenid-path"},
        {"--reseed-kernel", "--once", "--test-sources"});
    bool paths_ok = true;
    for (const char* name : {"--file", "--vmclock-path", "--sysgenid-path"}) {
      const auto it = p.values.find(name);
      paths_ok &= it == p.values.end() || !it->second.empty();
    }
    // --sources: comma-separated known names, at least one (a trailing comma ends the list).
    bool sources_ok = true;
    std::set<std::string> named;
    if (const auto it = p.values.find("--sources"); it != p.values.end()) {
      std::string text = it->second;
      if (!text.empty() && text.back() == ',') text.pop_back();
      size_t start = 0;
      while (!text.empty() && start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        named.insert(text.substr(start, comma - start));
        start = comma + 1;
      }
      for (const std::string& name : named) {
        sources_ok &= name == "vmclock" || name == "uevent" || name == "sysgenid";
      }
      sources_ok &= !named.empty();
    }
    const auto interval = p.values.find("--interval-ms");
    const bool interval_ok =
        interval == p.values.end() ||
        oracle_number(interval->second, snapsafe::tools::kMaxFollowIntervalMs).value_or(0) > 0;
    expect(no_positional && paths_ok && sources_ok && interval_ok, command, [&] {
      const snapsafe::tools::FollowOptions options =
          snapsafe::tools::follow_options(p, "/run/default", "/dev/default");
      FUZZ_CHECK(options.sources_named == (p.values.count("--sources") != 0), "--sources");
      if (options.sources_named) {
        FUZZ_CHECK(options.vmclock == (named.count("vmclock") != 0) &&
                       options.uevent == (named.count("uevent") != 0) &&
                       options.sysgenid == (named.count("sysgenid") != 0),
                   "--sources names");
      }
      FUZZ_CHECK(options.reseed_kernel == (p.flags.count("--reseed-kernel") != 0) &&
                     options.once == (p.flags.count("--once") != 0) &&
                     options.test_sources == (p.flags.count("--test-sources") != 0),
                 "follow flags");
      if (interval != p.values.end()) {
        FUZZ_CHECK(options.interval_ms == *oracle_number(interval->second, UINT64_MAX),
                   "--interval-ms value");
      }
    });
  } else {
    FUZZ_CHECK(false, "run of an unknown command '%s'", command.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = {"snapsafe"};
  if (size > 0) {
    const char* text = reinterpret_cast<const char*>(data);
    size_t start = 0;
    for (size_t i = 0; i <= size && args.size() <= 12; ++i) {
      if (i == size || text[i] == '\0') {
        args.emplace_back(text + start, i - start);
        start = i + 1;
      }
    }
  }
  for (const std::string& arg : args) {
    for (const uint64_t max : {uint64_t{0}, uint64_t{1}, cli::kMaxCount, cli::kMaxBytes,
                               uint64_t{UINT32_MAX}, uint64_t{UINT64_MAX}}) {
      checked_number(arg, max);
    }
  }

  cli::Invocation invocation;
  try {
    invocation = cli::parse_invocation(args);
  } catch (const cli::UsageError& e) {
    check_usage_error(e);
    FUZZ_CHECK(args.size() >= 2, "a usage error without arguments");
    return 0;
  }
  using Kind = cli::Invocation::Kind;
  FUZZ_CHECK((invocation.kind == Kind::kNoCommand) == (args.size() < 2), "kNoCommand");
  if (invocation.kind == Kind::kHelp) {
    FUZZ_CHECK(invocation.topic.empty() || cli::command_help().count(invocation.topic),
               "help for unknown topic '%s'", invocation.topic.c_str());
    return 0;
  }
  if (invocation.kind != Kind::kRun) return 0;
  FUZZ_CHECK(!invocation.parsed.help, "a run that asked for help");
  for (const std::string& positional : invocation.parsed.positional) {
    bool found = false;
    for (size_t i = 2; i < args.size() && !found; ++i) found = args[i] == positional;
    FUZZ_CHECK(found, "positional '%s' is no argument", positional.c_str());
  }
  run_command(invocation);
  return 0;
}
