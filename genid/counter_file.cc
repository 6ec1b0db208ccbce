// Shared counter file: see counter_file.h for the format and the design.
#include "genid/counter_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

std::string errno_message(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// Opens and validates the file, then maps it with `prot`. On success returns the mapping
// (whose generation word is at offset 8) and "" in *error.
void* map_counter(const std::string& path, int prot, std::string* error) {
  struct stat st;
  const int fd = open_trusted(path, prot & PROT_WRITE ? O_RDWR : O_RDONLY,
                              LastComponent::kRegularNoFollow, &st, error);
  if (fd < 0) return nullptr;
  void* map = nullptr;
  if (st.st_size < static_cast<off_t>(kCounterFileSize)) {
    *error = path + ": truncated counter file (" + std::to_string(st.st_size) +
             " bytes, expected " + std::to_string(kCounterFileSize) + ")";
  } else {
    map = mmap(nullptr, kCounterFileSize, prot, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      *error = errno_message(path, "mmap");
      map = nullptr;
    } else if (std::memcmp(map, kCounterFileMagic, sizeof kCounterFileMagic) != 0) {
      *error = path + ": corrupt counter file (bad magic; expected \"SSGENv1\")";
      munmap(map, kCounterFileSize);
      map = nullptr;
    }
  }
  close(fd);  // the mapping keeps the file referenced
  return map;
}

// The generation a new file starts at: 64 bits from getrandom, so that a file created
// again (a fresh tmpfs at restore) never repeats the number the checkpoint had. Never 0,
// and at least 2^32 bumps below kGenerationUnknown. Fails closed: no getrandom, no file.
std::string random_start(Generation* generation) {
  constexpr Generation kHighest = kGenerationUnknown - (Generation{1} << 32);
  for (int attempt = 0; attempt < 16; ++attempt) {
    Generation value = 0;
    ssize_t got;
    do {
      got = getrandom(&value, sizeof value, 0);
    } while (got < 0 && errno == EINTR);
    if (got != static_cast<ssize_t>(sizeof value)) {
      if (got >= 0) errno = EIO;
      return std::string("getrandom: ") + std::strerror(errno) +
             " (a counter file is never created without a random start)";
    }
    if (value != 0 && value < kHighest) {
      *generation = value;
      return "";
    }
  }
  return "getrandom: no usable value in 16 attempts";
}

uint64_t* generation_word(void* map) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(map) + 8);
}

}  // namespace

OpenResult open_counter_file(const std::string& path) {
  OpenResult result;
  void* map = map_counter(path, PROT_READ, &result.error);
  if (map == nullptr) return result;
  Reader reader;
  reader.word = generation_word(map);
  return opened_source(SourceKind::kCounterFile, path, reader);
}

std::string counter_file_create(const std::string& path) {
  std::string error;
  if (void* map = map_counter(path, PROT_READ, &error)) {
    munmap(map, kCounterFileSize);
    return "";  // a valid file exists: never reset a generation processes rely on
  }
  Generation start = 0;
  if (std::string failed = random_start(&start); !failed.empty()) return path + ": " + failed;
  // Write the complete file under a temporary name, then rename it into place, so no
  // process ever maps a half-written file.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno_message(tmp, "create");
  char bytes[kCounterFileSize] = {};
  std::memcpy(bytes, kCounterFileMagic, sizeof kCounterFileMagic);
  std::memcpy(bytes + 8, &start, sizeof start);
  const bool written = fchmod(fd, 0644) == 0 &&  // whatever the umask: others must read it
                       write(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes);
  const int saved_errno = errno;
  close(fd);
  if (!written) {
    unlink(tmp.c_str());
    errno = saved_errno;
    return errno_message(tmp, "write");
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string message = errno_message(path, "rename");
    unlink(tmp.c_str());
    return message;
  }
  return "";
}

std::string counter_file_bump(const std::string& path, Generation* generation) {
  std::string error;
  void* map = map_counter(path, PROT_READ | PROT_WRITE, &error);
  if (map == nullptr) return error;
  *generation = __atomic_add_fetch(generation_word(map), 1, __ATOMIC_SEQ_CST);
  munmap(map, kCounterFileSize);
  return "";
}

std::string counter_file_read(const std::string& path, Generation* generation) {
  std::string error;
  void* map = map_counter(path, PROT_READ, &error);
  if (map == nullptr) return error;
  *generation = __atomic_load_n(generation_word(map), __ATOMIC_ACQUIRE);
  munmap(map, kCounterFileSize);
  return "";
}

}  // namespace snapsafe::genid
