// vm_follow: the guest side of the VM suite's follower scenario (tests/vm/follow.py), one
// static program for the initramfs (busybox has no setpriv):
//   vm_follow follow ARGS...     `snapsafe genid follow ARGS...` (tools/genid_follow.h)
//   vm_follow create PATH        a counter file nobody bumps (the scenario's control)
//   vm_follow as-nobody CMD ...  drops to uid/gid 65534 with no groups, then execs CMD:
//                                a process that can open no root-only device
#include <grp.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/sysgenid.h"
#include "tools/cli_args.h"
#include "tools/genid_follow.h"

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "follow") {
    std::vector<std::string> args = {"snapsafe", "genid", "follow"};
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    try {
      const snapsafe::cli::Invocation invocation = snapsafe::cli::parse_invocation(args);
      snapsafe::tools::Follower follower(snapsafe::tools::follow_options(
          invocation.parsed, snapsafe::genid::kDefaultCounterFilePath,
          snapsafe::genid::kDefaultSysgenidPath));
      return follower.run();
    } catch (const snapsafe::cli::UsageError& e) {
      std::fprintf(stderr, "vm_follow: %s\n", e.message.c_str());
      return 2;
    }
  }
  if (command == "create" && argc == 3) {
    const std::string error = snapsafe::genid::counter_file_create(argv[2]);
    if (!error.empty()) std::fprintf(stderr, "vm_follow: %s\n", error.c_str());
    return error.empty() ? 0 : 1;
  }
  if (command == "as-nobody" && argc > 2) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
      std::perror("vm_follow: dropping privileges");
      return 1;
    }
    execv(argv[2], argv + 2);
    std::perror("vm_follow: exec");
    return 1;
  }
  std::fprintf(stderr, "usage: vm_follow follow ARGS | create PATH | as-nobody CMD...\n");
  return 2;
}
