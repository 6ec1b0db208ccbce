// The snapsafe CLI's argument parsing (tools/cli_args.h) below the tool: what
// tests/snapsafe_cli_test.sh cannot see from outside, and the regressions found by
// tests/fuzz/cli_args_fuzz.cc.
#include "tools/cli_args.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace snapsafe::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The usage message for `args` (after argv[0]), through parsing and the command's option
// checks as the tool runs them; "" if there is none.
std::string usage_message(std::vector<std::string> args) {
  args.insert(args.begin(), "snapsafe");
  try {
    const Invocation invocation = parse_invocation(args);
    if (invocation.kind != Invocation::Kind::kRun) return "";
    if (invocation.command == "uuid") uuid_options(invocation.parsed);
    if (invocation.command == "reqid") reqid_options(invocation.parsed);
    if (invocation.command == "bytes") bytes_options(invocation.parsed);
    if (invocation.command == "status") status_options(invocation.parsed);
    return "";
  } catch (const UsageError& e) {
    return e.message;
  }
}

bool printable_line(const std::string& text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Found by cli_args_fuzz (its first input, "\n"): an argument echoed into a usage error
// was printed raw, so `snapsafe uuid -n $'1\n2'` printed a two-line error and a command
// name holding ESC sequences reached the terminal. Every echoed argument is now shown
// with its control characters as \xNN.
TEST(CliArgs, EchoedArgumentsCannotBreakTheOneLineMessage) {
  const std::vector<std::vector<std::string>> cases = {
      {"uuid", "-n", "1\n2"},
      {"uuid", "-n", "-1\n"},
      {"uuid", "-n", "9999999999999999999999\n"},
      {"bytes", "\x1b]0;owned\x07"},
      {"bytes", "5", "\r6"},
      {"uuid", "x\ny"},
      {"uuid", "--v\n7"},
      {"help", "uuid", "\n"},
      {"help", "\x1b[2J"},
      {"genid", "re\nad"},
      {"fr\x7fob"},
  };
  for (const auto& args : cases) {
    const std::string message = usage_message(args);
    ASSERT_FALSE(message.empty()) << args.back();
    EXPECT_TRUE(printable_line(message)) << message;
  }
  EXPECT_EQ(usage_message({"uuid", "-n", "1\n2"}), "-n is not a decimal number: '1\\x0a2'");
  EXPECT_EQ(usage_message({"fr\x1b"
                           "ob"}),
            "unknown command 'fr\\x1bob'");
}

TEST(CliArgs, PrintableArgumentsAreEchoedAsTheyAre) {
  EXPECT_EQ(shown("plain text, UTF-8 \xc3\xa9 and \\x41"), "plain text, UTF-8 \xc3\xa9 and \\x41");
  EXPECT_EQ(usage_message({"frobnicate"}), "unknown command 'frobnicate'");
  EXPECT_EQ(usage_message({"uuid", "-n", "1000001"}), "-n is too large: 1000001 (at most 1000000)");
  EXPECT_THAT(usage_message({"uuid", "-n", "5 "}), HasSubstr("'5 '"));
  EXPECT_THAT(usage_message({"uuid", "-n", "5"}), Not(HasSubstr("x")));
}

TEST(CliArgs, InvocationKinds) {
  EXPECT_EQ(parse_invocation({"snapsafe"}).kind, Invocation::Kind::kNoCommand);
  EXPECT_EQ(parse_invocation({"snapsafe", "help", "genid"}).topic, "genid");
  const Invocation bump = parse_invocation({"snapsafe", "genid", "bump", "--min=5"});
  EXPECT_EQ(bump.kind, Invocation::Kind::kRun);
  EXPECT_EQ(bump.command, "genid bump");
  EXPECT_EQ(min_option(bump.parsed, /*device=*/true), 5u);
  const Invocation help = parse_invocation({"snapsafe", "genid", "bump", "--help"});
  EXPECT_EQ(help.kind, Invocation::Kind::kHelp);
  EXPECT_EQ(help.topic, "genid");
}

// The usage message of `genid bump ARGS` on the device or a counter file; "" if none.
std::string bump_message(std::vector<std::string> args, bool device) {
  args.insert(args.begin(), {"snapsafe", "genid", "bump"});
  try {
    const Invocation invocation = parse_invocation(args);
    min_option(invocation.parsed, device);
    set_option(invocation.parsed, device);
    return "";
  } catch (const UsageError& e) {
    return e.message;
  }
}

// A counter-file bump draws a random generation (not +1), so --min has no meaning there;
// --set VALUE (a counter file only) takes a generation handed in from the host.
TEST(CliArgs, BumpSetAndMinByTarget) {
  EXPECT_EQ(bump_message({"--min", "5"}, /*device=*/true), "");
  EXPECT_THAT(bump_message({"--min", "5"}, /*device=*/false),
              HasSubstr("--min applies to the SysGenID device only"));
  EXPECT_EQ(bump_message({"--set", "5"}, /*device=*/false), "");
  EXPECT_THAT(bump_message({"--set", "5"}, /*device=*/true),
              HasSubstr("--set applies to a counter file only"));
  EXPECT_EQ(bump_message({"--set", "0"}, false), "");
  EXPECT_EQ(bump_message({"--set", "18446744073709551614"}, false), "");
  EXPECT_EQ(bump_message({"--set", "18446744073709551615"}, false),
            "--set is too large: 18446744073709551615 (at most 18446744073709551614)");
  EXPECT_THAT(bump_message({"--set", "-1"}, false), HasSubstr("must not be negative"));
  EXPECT_THAT(bump_message({"--set", "0x1"}, false), HasSubstr("not a decimal number"));
  EXPECT_THAT(bump_message({"--set", " 1"}, false), HasSubstr("not a decimal number"));
  EXPECT_THAT(bump_message({"--set", ""}, false), HasSubstr("empty number"));
  EXPECT_THAT(bump_message({"--set"}, false), HasSubstr("--set needs a value"));
  EXPECT_THAT(bump_message({"--set", "1", "--set", "2"}, false), HasSubstr("given twice"));
  EXPECT_EQ(bump_message({"--reseed-kernel"}, false), "");
  EXPECT_THAT(bump_message({"--reseed-kernel=yes"}, false), HasSubstr("takes no value"));
  const Invocation set = parse_invocation({"snapsafe", "genid", "bump", "--set=42"});
  EXPECT_EQ(set_option(set.parsed, /*device=*/false), std::optional<uint64_t>(42));
  EXPECT_EQ(set_option(parse_invocation({"snapsafe", "genid", "bump"}).parsed, false),
            std::nullopt);
}

// `genid bump --min` on the device never saturates it: one
// `--min 4294967295` used to pin the counter at U32_MAX, after which no VM clone was ever
// signalled again (kernel_shim/sysgenid.c keeps it there) while status() still claimed
// VM-clone coverage.
std::string device_min_message(uint64_t min, uint32_t current) {
  try {
    check_device_min(min, current);
    return "";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.command, "genid");
    return e.message;
  }
}

TEST(CliArgs, DeviceMinNeverSaturatesTheGeneration) {
  EXPECT_EQ(device_min_message(0, 0), "");
  EXPECT_EQ(device_min_message(65536, 0), "");  // the bound
  EXPECT_EQ(device_min_message(65537, 0),
            "--min 65537 is more than 65536 above the current generation 0 (at most 65536)");
  EXPECT_EQ(device_min_message(1065536, 1000000), "");
  EXPECT_THAT(device_min_message(4294967295u, 0), HasSubstr("more than 65536 above"));
  // Near the top: never to 4294967295, by --min or by a plain bump.
  EXPECT_EQ(device_min_message(4294967294u, 4294967200u), "");
  EXPECT_EQ(device_min_message(0, 4294967293u), "");
  EXPECT_EQ(device_min_message(4294967295u, 4294967200u),
            "--min 4294967295 would take the generation to 4294967295, where the device keeps "
            "it for good: no VM clone could ever be signalled again");
  EXPECT_THAT(device_min_message(0, 4294967294u),
              HasSubstr("a bump would take the generation to 4294967295"));
  EXPECT_THAT(device_min_message(4294967294u, 4294967294u), HasSubstr("would take"));
  // Already saturated: not a usage error (the device's EOVERFLOW says so, exit 1).
  EXPECT_EQ(device_min_message(0, 4294967295u), "");
}

}  // namespace
}  // namespace snapsafe::cli
