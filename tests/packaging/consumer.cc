// A consumer outside Bazel (pkg-config, CMake) or in another Bazel workspace: draws, prints
// a UUID and the protecting source.
#include <cstdio>

#include "ids/ids.h"
#include "rng/fill.h"
#include "rng/status.h"

int main() {
  const std::string uuid = snapsafe::uuid_v4_string();
  std::printf("consumer: uuid %s u64 %016llx source %s\n", uuid.c_str(),
              static_cast<unsigned long long>(snapsafe::random_u64()),
              snapsafe::status().source_name.c_str());
  return uuid.size() == 36 ? 0 : 1;
}
