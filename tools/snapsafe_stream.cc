// snapsafe_stream: writes snapsafe output to stdout until stdout closes (or N bytes with
// an argument), for statistical batteries that read a raw stream:
//
//   bazel-bin/tools/snapsafe_stream | dieharder -g 200 -a      (scripts/dieharder)
//
// 64 KiB per fill() call: the bulk path, the same construction as every draw.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "rng/fill.h"

int main(int argc, char** argv) {
  unsigned long long limit = 0;  // 0: until stdout closes
  if (argc == 2) {
    char* end = nullptr;
    errno = 0;
    limit = std::strtoull(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || argv[1][0] == '-') {
      std::fprintf(stderr, "usage: %s [BYTES]\n", argv[0]);
      return 2;
    }
  } else if (argc > 2) {
    std::fprintf(stderr, "usage: %s [BYTES]\n", argv[0]);
    return 2;
  }
  std::vector<unsigned char> block(1 << 16);
  unsigned long long written = 0;
  while (limit == 0 || written < limit) {
    snapsafe::fill(block.data(), block.size());
    size_t size = block.size();
    if (limit != 0 && limit - written < size) size = static_cast<size_t>(limit - written);
    size_t done = 0;
    while (done < size) {
      const ssize_t n = write(STDOUT_FILENO, block.data() + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;  // the reader is done
      done += static_cast<size_t>(n);
    }
    written += size;
  }
  return 0;
}
