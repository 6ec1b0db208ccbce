// File: tests/proc_self.h
//
// What /proc says about the calling process, for tests and the soak that check that
// memory and descriptors come back to where they were.
#pragma once

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace snapsafe::testing {

// A "kB" field of /proc/self/status ("VmRSS", "VmSize", ...): its value, or -1.
inline long proc_status_kib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  const size_t length = std::strlen(field);
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, length) == 0 && line[length] == ':') {
      kib = std::atol(line + length + 1);
    }
  }
  std::fclose(f);
  return kib;
}

// Resident memory, in KiB (VmRSS), or -1.
inline long resident_kib() { return proc_status_kib("VmRSS"); }

// Open descriptors of this process (not counting the one this count uses), or -1.
inline long open_descriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  long count = 0;
  while (const dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count - 1;
}

}  // namespace snapsafe::testing
