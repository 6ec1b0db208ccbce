// File: tests/fuzz/fuzz_util.h
//
// What the libFuzzer targets in tests/fuzz/ share: a property check that turns a broken
// property into a crash (libFuzzer then saves the input as a finding), and a private
// temporary directory for targets that hand their input to the library as a file.
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

// A property the target checks: if it does not hold, say which and abort (a finding).
#define FUZZ_CHECK(condition, ...)                                                                \
  do {                                                                                            \
    if (!(condition)) {                                                                           \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #condition); \
      std::fprintf(stderr, __VA_ARGS__);                                                          \
      std::fprintf(stderr, "\n");                                                                 \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

namespace snapsafe::fuzz {

// A directory only this process's user can write, under $SNAPSAFE_FUZZ_TMPDIR (tests/fuzz/run
// sets it to its work directory) or /tmp: directories the library's trust rules for
// counter files accept (genid/file_trust.h), so only the fuzzed bytes decide. Made once per
// process and removed at a normal exit.
inline const std::string& private_dir() {
  static const std::string* dir = [] {
    const char* parent = std::getenv("SNAPSAFE_FUZZ_TMPDIR");
    std::string pattern =
        std::string(parent != nullptr && *parent ? parent : "/tmp") + "/snapsafe-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr || chmod(pattern.c_str(), 0700) != 0) {
      std::perror("snapsafe fuzz: mkdtemp");
      std::abort();
    }
    auto* path = new std::string(pattern.c_str());
    std::atexit([] {
      nftw(
          private_dir().c_str(),
          [](const char* name, const struct stat*, int, struct FTW*) { return remove(name); }, 16,
          FTW_DEPTH | FTW_PHYS);
    });
    return path;
  }();
  return *dir;
}

// Writes `size` bytes to a new file at `path` (whatever was there is unlinked first, so a
// mapping the library may still hold of an older file is never truncated under it), mode
// `mode` whatever the umask.
inline void write_file(const std::string& path, const void* data, size_t size, mode_t mode = 0644) {
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  FUZZ_CHECK(fd >= 0, "open %s", path.c_str());
  FUZZ_CHECK(fchmod(fd, mode) == 0, "fchmod %s", path.c_str());
  FUZZ_CHECK(size == 0 || write(fd, data, size) == static_cast<ssize_t>(size), "write %s",
             path.c_str());
  close(fd);
}

inline void write_file(const std::string& path, const std::string& bytes, mode_t mode = 0644) {
  write_file(path, bytes.data(), bytes.size(), mode);
}

}  // namespace snapsafe::fuzz
