// snapsafe_counter: manages the shared counter file (genid/counter_file.h) that tells
// every snapsafe process in a container that the container was restored.
//
//   snapsafe_counter create PATH   make PATH at a random generation (a valid file is kept
//                                  as is; an invalid one is retired and replaced)
//   snapsafe_counter bump PATH     atomically increment; prints the new generation
//   snapsafe_counter read PATH     print the current generation
//
// A restore hook calls `bump` once per restore, before the workload resumes. Exit status:
// 0 on success, 1 on an error (message on stderr), 2 on a usage error.
//
// Safe to point at anything: it never truncates a file, never follows a symlink at PATH,
// never blocks on a FIFO, and refuses a file or directory that someone other than root
// or the caller could write (the library would refuse it too). `create` makes the file
// mode 0644 owned by the caller, whatever the umask.
#include <cstdio>
#include <string>

#include "genid/counter_file.h"

int main(int argc, char** argv) {
  using namespace snapsafe::genid;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s create|bump|read PATH\n", argv[0]);
    return 2;
  }
  const std::string command = argv[1];
  const std::string path = argv[2];
  Generation generation = 0;
  std::string error;
  if (command == "create") {
    std::string replaced;
    error = counter_file_create(path, &replaced);
    if (!replaced.empty()) {
      std::fprintf(stderr, "%s: replaced %s (%s); processes still mapping the old file now "
                           "read generation unknown\n",
                   argv[0], path.c_str(), replaced.c_str());
    }
    if (error.empty()) error = counter_file_read(path, &generation);
  } else if (command == "bump") {
    error = counter_file_bump(path, &generation);
  } else if (command == "read") {
    error = counter_file_read(path, &generation);
  } else {
    std::fprintf(stderr, "%s: unknown command \"%s\" (create, bump or read)\n", argv[0],
                 command.c_str());
    return 2;
  }
  if (!error.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], error.c_str());
    return 1;
  }
  std::printf("%llu\n", static_cast<unsigned long long>(generation));
  return 0;
}
