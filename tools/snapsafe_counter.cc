// snapsafe_counter: manages the shared counter file (genid/counter_file.h) that tells
// every snapsafe process in a container that the container was restored.
//
//   snapsafe_counter create [--root DIR] PATH
//       make PATH at a random generation (a valid file is kept as is; an invalid one is
//       retired and replaced)
//   snapsafe_counter bump [--root DIR] [--missing-ok] [--set VALUE] PATH
//       atomically set a fresh random generation drawn here (never the one it replaces);
//       prints it. With --set VALUE: that generation instead (decimal, 0..2^64-2), one
//       handed in from outside the clone (an agent that got it from its host); a file
//       already at VALUE is left as it is ("already at generation V: unchanged" on
//       stderr, exit 0: CRIU runs its hooks twice per stage)
//   snapsafe_counter read [--root DIR] [--missing-ok] PATH
//       print the current generation
//
// --root DIR    resolve PATH (then absolute) beneath the directory DIR, not beneath this
//               process's "/": DIR is opened as given, so `--root /proc/PID/root` walks
//               the root of task PID, in its own mount namespace (a restored container's
//               /run, not the host's). Absolute symlinks and ".." on the way stay beneath
//               DIR; every trust rule applies there as it does from "/".
// --missing-ok  PATH not existing (the file or a directory on the way: ENOENT) is not an
//               error: exit 3, nothing printed. Any other failure still exits 1.
//
// Why random and not +1: clones of one snapshot hold copies of one file at one generation.
// +1 on each gives every clone the same new generation, and a clone whose guest kernel RNG
// is itself a clone (and no RDRAND) then repeats its siblings' random numbers. A value
// drawn where the bump runs (the host, for CRIU and containers) differs per clone, and
// the reseed hashes it in (docs/DESIGN.md, threat model).
//
// A restore hook calls `bump` once per restore, before the workload resumes. Exit status:
// 0 on success, 1 on an error (message on stderr), 2 on a usage error, 3 with
// --missing-ok when PATH does not exist.
//
// Safe to point at anything: it never truncates a file, never follows a symlink at PATH,
// never blocks on a FIFO, and refuses a file or directory that someone other than root
// or the caller could write (the library would refuse it too). `create` makes the file
// mode 0644 owned by the caller, whatever the umask.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "genid/counter_file_writer.h"
#include "genid/file_trust.h"

namespace {

using namespace snapsafe::genid;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitMissing = 3;

struct Arguments {
  std::string command;
  std::string root;  // "" : this process's "/"
  bool missing_ok = false;
  bool set = false;  // bump --set VALUE
  Generation value = 0;
  std::string path;
};

int usage(const char* me, const std::string& problem) {
  if (!problem.empty()) std::fprintf(stderr, "%s: %s\n", me, problem.c_str());
  std::fprintf(stderr,
               "usage: %s create [--root DIR] PATH\n"
               "       %s bump [--root DIR] [--missing-ok] [--set VALUE] PATH\n"
               "       %s read [--root DIR] [--missing-ok] PATH\n",
               me, me, me);
  return kExitUsage;
}

// A generation for --set: plain decimal digits (no sign, space or prefix), no overflow,
// below kGenerationUnknown. "" on success, else the problem.
std::string parse_generation(const std::string& text, Generation* value) {
  if (text.empty()) return "--set needs a value";
  Generation parsed = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return "--set: not a decimal number: \"" + text + "\"";
    const Generation digit = static_cast<Generation>(c - '0');
    if (parsed > (UINT64_MAX - digit) / 10) return "--set: too large: " + text;
    parsed = parsed * 10 + digit;
  }
  if (parsed >= kGenerationUnknown) {
    return "--set: too large: " + text + " (at most " + std::to_string(kGenerationUnknown - 1) +
           "; " + std::to_string(kGenerationUnknown) + " means \"unknown\")";
  }
  *value = parsed;
  return "";
}

// Parses the command line strictly; "" on success, else the problem.
std::string parse(int argc, char** argv, Arguments* args) {
  if (argc < 3) return "a command and a PATH are needed";
  args->command = argv[1];
  if (args->command != "create" && args->command != "bump" && args->command != "read") {
    return "unknown command \"" + args->command + "\" (create, bump or read)";
  }
  int i = 2;
  for (; i < argc - 1; ++i) {
    const std::string option = argv[i];
    if (option == "--root" && args->root.empty() && i + 1 < argc - 1) {
      args->root = argv[++i];
      if (args->root.empty() || args->root[0] != '/') {
        return "--root needs an absolute directory (got \"" + args->root + "\")";
      }
    } else if (option == "--missing-ok" && !args->missing_ok && args->command != "create") {
      args->missing_ok = true;
    } else if (option == "--set" && !args->set && args->command == "bump" && i + 1 < argc - 1) {
      args->set = true;
      if (std::string problem = parse_generation(argv[++i], &args->value); !problem.empty()) {
        return problem;
      }
    } else if (option == "--set" && args->command == "bump" && !args->set) {
      return "--set needs a VALUE before PATH";
    } else {
      return "unexpected \"" + option + "\" before PATH";
    }
  }
  args->path = argv[argc - 1];
  if (args->path.empty() || args->path[0] == '-') {
    return "PATH missing or an option (got \"" + args->path + "\")";
  }
  if (!args->root.empty() && args->path[0] != '/') {
    return "with --root, PATH must be absolute (it is resolved from DIR)";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  const char* me = argv[0];
  Arguments args;
  if (std::string problem = parse(argc, argv, &args); !problem.empty()) return usage(me, problem);
  int root = kThisProcessRoot;
  std::string error;
  if (!args.root.empty()) {
    root = open_root_directory(args.root, &error);
    if (root < 0) {
      std::fprintf(stderr, "%s: --root: %s\n", me, error.c_str());
      return kExitError;
    }
  }
  const std::string& path = args.path;
  Generation generation = 0;
  bool missing = false;
  if (args.command == "create") {
    std::string replaced;
    error = counter_file_create(path, &replaced, root);
    if (!replaced.empty()) {
      std::fprintf(stderr,
                   "%s: replaced %s (%s); processes still mapping the old file now "
                   "read generation unknown\n",
                   me, path.c_str(), replaced.c_str());
    }
    if (error.empty()) error = counter_file_read(path, &generation, root);
  } else if (args.command == "bump" && args.set) {
    bool unchanged = false;
    error = counter_file_set(path, args.value, &unchanged, root, &missing);
    generation = args.value;
    if (error.empty() && unchanged) {
      std::fprintf(stderr, "%s: %s: already at generation %llu: unchanged\n", me, path.c_str(),
                   static_cast<unsigned long long>(generation));
    }
  } else if (args.command == "bump") {
    error = counter_file_bump(path, &generation, root, &missing);
  } else {
    error = counter_file_read(path, &generation, root, &missing);
  }
  if (root != kThisProcessRoot) close(root);
  if (!error.empty()) {
    if (missing && args.missing_ok) return kExitMissing;
    const std::string where = args.root.empty() ? "" : " (beneath --root " + args.root + ")";
    std::fprintf(stderr, "%s: %s%s\n", me, error.c_str(), where.c_str());
    return kExitError;
  }
  std::printf("%llu\n", static_cast<unsigned long long>(generation));
  return 0;
}
