// The counter file's writer (create, bump, set, read), which the tools link and
// applications do not: see counter_file_writer.h; the format in counter_file_format.h.
#include "genid/counter_file_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "genid/counter_file_guard.h"
#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

using namespace counter_file_internal;  // NOLINT: this file is one of its three rooms

#ifdef SNAPSAFE_TESTING  // //genid:counter_file_writer_testing only
// Test-only: replaces getrandom() as the source of fresh generations (nullptr: getrandom).
std::atomic<bool (*)(Generation*)> g_fresh_for_testing{nullptr};
#endif

// A fresh generation: 64 bits from getrandom, never 0, and at least 2^32 below
// kGenerationUnknown. Every new file starts at one, so that a file created again (a fresh
// tmpfs at restore) never repeats the number the checkpoint had; every bump draws one, so
// that two clones bumped where each bump runs (the host) get different generations even
// when their kernels' RNGs are clones. Fails closed: no getrandom, no value (`what` says
// what is then not done).
std::string random_generation(Generation* generation, const char* what) {
  constexpr Generation kHighest = kGenerationUnknown - (Generation{1} << 32);
  for (int attempt = 0; attempt < 16; ++attempt) {
    Generation value = 0;
#ifdef SNAPSAFE_TESTING
    if (bool (*fresh)(Generation*) = g_fresh_for_testing.load(); fresh != nullptr) {
      if (!fresh(&value)) {
        errno = EIO;
        return std::string("getrandom: ") + std::strerror(errno) + " (" + what + ")";
      }
    } else
#endif
    {
      ssize_t got;
      do {
        got = getrandom(&value, sizeof value, 0);
      } while (got < 0 && errno == EINTR);
      if (got != static_cast<ssize_t>(sizeof value)) {
        if (got >= 0) errno = EIO;
        return std::string("getrandom: ") + std::strerror(errno) + " (" + what + ")";
      }
    }
    if (value != 0 && value < kHighest) {
      *generation = value;
      return "";
    }
  }
  return "getrandom: no usable value in 16 attempts";
}

std::string random_start(Generation* generation) {
  return random_generation(generation, "a counter file is never created without a random start");
}

// A hidden, unguessable name for the new file next to `name`.
std::string temporary_name(const std::string& name) {
  uint64_t suffix = 0;
  if (getrandom(&suffix, sizeof suffix, GRND_NONBLOCK) != sizeof suffix) suffix = getpid();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(suffix));
  return "." + name + ".new-" + hex;
}

// Whatever create found at the path is positively not a usable counter file (as opposed
// to one we could not judge, e.g. not readable by us): it may be replaced.
bool replaceable(const struct stat& seen, bool bad_magic) {
  return !S_ISREG(seen.st_mode) || untrusted_reason(seen, /*is_dir=*/false) != nullptr ||
         seen.st_size < static_cast<off_t>(kCounterFileSize) || bad_magic;
}

// Before an invalid file is replaced: processes may still map it, and the restore hook
// will never bump it again. Its generation word becomes kGenerationUnknown and its magic
// 0, so their draws go to the kernel and their still_valid() is false. Only where that
// cannot hit anything else: a regular 16-byte file with exactly one link (a hard link
// planted from elsewhere has two), opened without following links or blocking.
void retire(int dirfd, const std::string& name, const struct stat& seen) {
  if (!S_ISREG(seen.st_mode) || seen.st_nlink != 1 ||
      seen.st_size != static_cast<off_t>(kCounterFileSize)) {
    return;
  }
  const int fd =
      openat(dirfd, name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_dev == seen.st_dev && st.st_ino == seen.st_ino &&
      S_ISREG(st.st_mode) && st.st_nlink == 1 &&
      st.st_size == static_cast<off_t>(kCounterFileSize)) {
    map = mmap(nullptr, kCounterFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd);
  if (map == MAP_FAILED) return;
  install_sigbus_guard(/*again=*/false);  // truncated meanwhile: a tombstone, not a death
  const int slot = claim_slot(map, PROT_READ | PROT_WRITE);
  if (slot >= 0) {
    __atomic_store_n(generation_word(map), kGenerationUnknown, __ATOMIC_SEQ_CST);
    __atomic_store_n(static_cast<uint64_t*>(map), uint64_t{0}, __ATOMIC_SEQ_CST);
    release_slot(slot);
  }
  munmap(map, kCounterFileSize);
}

// Writes a complete new file under a temporary name in `dirfd`: mode 0644 whatever the
// umask (every process must read it), owned by the caller. Returns its name, or "" with
// *error set.
std::string write_new_file(int dirfd, const std::string& name, const std::string& path,
                           std::string* error) {
  Generation start = 0;
  if (std::string failed = random_start(&start); !failed.empty()) {
    *error = path + ": " + failed;
    return "";
  }
  const std::string tmp = temporary_name(name);
  const int fd = openat(dirfd, tmp.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = errno_message(path, "create");
    return "";
  }
  char bytes[kCounterFileSize] = {};
  std::memcpy(bytes, kCounterFileMagic, sizeof kCounterFileMagic);
  std::memcpy(bytes + 8, &start, sizeof start);
  const bool written =
      fchmod(fd, 0644) == 0 && write(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes);
  const int saved_errno = errno;
  close(fd);
  if (!written) {
    unlinkat(dirfd, tmp.c_str(), 0);
    errno = saved_errno;
    *error = errno_message(path, "write");
    return "";
  }
  return tmp;
}

// Puts `tmp` at `name` only if nothing is there. 0, or an errno (EEXIST: someone was
// faster).
int place_if_absent(int dirfd, const std::string& tmp, const std::string& name) {
  if (renameat2(dirfd, tmp.c_str(), dirfd, name.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // A file system without RENAME_NOREPLACE: link() never replaces either.
  if (linkat(dirfd, tmp.c_str(), dirfd, name.c_str(), 0) != 0) return errno;
  unlinkat(dirfd, tmp.c_str(), 0);
  return 0;
}

std::string create_in(int dirfd, const std::string& name, const std::string& path,
                      std::string* replaced, int root) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    struct stat seen;
    std::string invalid;  // why the file there is not kept; "" if nothing is there
    if (fstatat(dirfd, name.c_str(), &seen, AT_SYMLINK_NOFOLLOW) == 0) {
      Mapped existing;
      bool bad_magic = false;
      if (map_counter(path, PROT_READ, &existing, &invalid, &bad_magic, root)) {
        unmap_counter(existing);
        return "";  // a valid file exists: never reset a generation processes rely on
      }
      if (!replaceable(seen, bad_magic)) return invalid;  // not ours to judge
    } else if (errno != ENOENT) {
      return errno_message(path, "stat");
    }
    std::string error;
    const std::string tmp = write_new_file(dirfd, name, path, &error);
    if (tmp.empty()) return error;
    if (invalid.empty()) {
      const int failed = place_if_absent(dirfd, tmp, name);
      if (failed == 0) return "";
      unlinkat(dirfd, tmp.c_str(), 0);
      if (failed == EEXIST) continue;  // created meanwhile: judge that one
      errno = failed;
      return errno_message(path, "rename");
    }
    retire(dirfd, name, seen);
    if (renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
      const std::string message = errno_message(path, "rename");
      unlinkat(dirfd, tmp.c_str(), 0);
      return message;
    }
    if (replaced != nullptr) *replaced = invalid;
    return "";
  }
  return path + ": created and removed by someone else while we were creating it";
}

}  // namespace

std::string counter_file_create(const std::string& path, std::string* replaced, int root) {
  if (replaced != nullptr) replaced->clear();
  std::string name, error;
  const int dirfd = open_trusted_parent(path, &name, &error, root);
  if (dirfd < 0) return error;
  error = create_in(dirfd, name, path, replaced, root);
  close(dirfd);
  return error;
}

std::string counter_file_bump(const std::string& path, Generation* generation, int root,
                              bool* missing, const std::function<void(Generation)>& before_store) {
  if (missing != nullptr) *missing = false;
  std::string error;
  Mapped mapped;
  if (!map_counter(path, PROT_READ | PROT_WRITE, &mapped, &error, nullptr, root, missing)) {
    return error;
  }
  uint64_t* const word = generation_word(mapped.map);
  Generation seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  for (int attempt = 0;; ++attempt) {
    if (attempt == 16) {
      error = path + ": no fresh generation differing from the current one in 16 attempts";
      break;
    }
    Generation next = 0;
    error = random_generation(&next, "nothing written: a bump never falls back to +1");
    if (!error.empty()) {
      error = path + ": " + error;
      break;
    }
    if (next == seen) continue;  // the new value always differs from the one it replaces
    if (before_store) before_store(next);
    if (__atomic_compare_exchange_n(word, &seen, next, false, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE)) {
      *generation = next;
      break;
    }
  }
  const bool intact = magic_intact(mapped.map);  // not tombstoned by a truncation meanwhile
  unmap_counter(mapped);
  if (!error.empty()) return error;
  return intact ? "" : path + ": truncated or overwritten during the bump";
}

std::string counter_file_set(const std::string& path, Generation value, bool* unchanged, int root,
                             bool* missing) {
  if (missing != nullptr) *missing = false;
  if (unchanged != nullptr) *unchanged = false;
  if (value == kGenerationUnknown) {
    return path + ": " + std::to_string(value) + " is the reserved \"unknown\" generation";
  }
  std::string error;
  Mapped mapped;
  if (!map_counter(path, PROT_READ | PROT_WRITE, &mapped, &error, nullptr, root, missing)) {
    return error;
  }
  const Generation before =
      __atomic_exchange_n(generation_word(mapped.map), value, __ATOMIC_SEQ_CST);
  if (unchanged != nullptr) *unchanged = before == value;
  const bool intact = magic_intact(mapped.map);
  unmap_counter(mapped);
  return intact ? "" : path + ": truncated or overwritten while being set";
}

std::string counter_file_read(const std::string& path, Generation* generation, int root,
                              bool* missing) {
  if (missing != nullptr) *missing = false;
  std::string error;
  Mapped mapped;
  if (!map_counter(path, PROT_READ, &mapped, &error, nullptr, root, missing)) return error;
  *generation = __atomic_load_n(generation_word(mapped.map), __ATOMIC_ACQUIRE);
  const bool intact = magic_intact(mapped.map);
  unmap_counter(mapped);
  return intact ? "" : path + ": truncated or overwritten while being read";
}

#ifdef SNAPSAFE_TESTING
void counter_file_fresh_generation_for_testing(bool (*fresh)(Generation*)) {
  g_fresh_for_testing.store(fresh);
}
#endif

}  // namespace snapsafe::genid
