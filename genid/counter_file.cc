// Shared counter file: see counter_file.h for the format and the design.
#include "genid/counter_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>

#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

std::string errno_message(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

uint64_t magic_word() {
  uint64_t word;
  std::memcpy(&word, kCounterFileMagic, sizeof word);
  return word;
}

const uint64_t* magic_of(const void* map) { return static_cast<const uint64_t*>(map); }
uint64_t* generation_word(void* map) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(map) + 8);
}

bool magic_intact(const void* map) {
  return __atomic_load_n(magic_of(map), __ATOMIC_ACQUIRE) == magic_word();
}

// ---- Every mapping of a counter file this process holds, in a fixed table: a source's
// still_valid() finds its own by index (one function per slot, below).

constexpr size_t kSlots = 256;
enum SlotState : int { kFree, kClaimed, kSource };

// Why a source stopped being trusted (static strings: no allocation where they are set).
constexpr const char* kReasonMagic = "its magic was overwritten (not a counter file any more)";
constexpr const char* kReasonRetired =
    "it was retired by `snapsafe_counter create` (magic zeroed, generation unknown)";
constexpr const char* kReasonGone =
    "it was unlinked or renamed away (the path names no file now, so the restore hook "
    "cannot reach this one)";
constexpr const char* kReasonReplaced =
    "it was replaced (the path names another file now: the restore hook bumps that one)";
constexpr const char* kReasonShrunk = "it was truncated (shorter than 16 bytes)";
constexpr const char* kReasonOwner =
    "its owner changed to a user that is neither root nor the effective user";
constexpr const char* kReasonWritable = "it was made writable by group or others";
constexpr const char* kReasonNoStat = "its path cannot be checked any more (lstat failed)";
constexpr const char* kReasonTruncated =
    "it was truncated while mapped (SIGBUS caught: the page now reads generation unknown)";

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<uintptr_t> base{0};  // the mapping while registered, else 0
  size_t length = 0;               // of the mapping: one page
  int prot = 0;                    // PROT_READ, or PROT_READ | PROT_WRITE (the tool's)
  // Sources only (state kSource): what the path named when it was opened.
  std::string path;  // absolute, resolved at each check the way the restore hook resolves it
  std::atomic<uint64_t> dev{0};  // the mapped file (atomic: a check may follow a re-mapping)
  std::atomic<uint64_t> ino{0};
  std::atomic<int64_t> next_check_ns{0};     // still_valid's next lstat, CLOCK_MONOTONIC_COARSE
  std::atomic<const char*> invalid{nullptr};  // set once, never cleared: why it is not trusted
};
Slot g_slots[kSlots];
std::atomic<int64_t> g_check_interval_ns{kCounterFileCheckIntervalNs};

int64_t coarse_now_ns() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);  // vDSO: no system call
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

// Registers a fresh mapping; the slot index, or -1 if the table is full.
int claim_slot(void* map, int prot) {
  for (size_t i = 0; i < kSlots; ++i) {
    Slot& slot = g_slots[i];
    int expected = kFree;
    if (!slot.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
      continue;
    }
    slot.length = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    slot.prot = prot;
    slot.invalid.store(nullptr, std::memory_order_relaxed);
    slot.next_check_ns.store(0, std::memory_order_relaxed);
    slot.base.store(reinterpret_cast<uintptr_t>(map), std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void release_slot(int index) {
  g_slots[index].base.store(0, std::memory_order_release);
  g_slots[index].state.store(kFree, std::memory_order_release);
}

// Builds the tombstone aside and moves it over the counter page in one step (mremap), so
// no load ever sees a half-made page (a zero generation). System calls only: safe in a
// signal handler.
bool tombstone_mapping(uintptr_t base, size_t length, int prot) {
  void* page = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return false;
  __atomic_store_n(generation_word(page), kGenerationUnknown, __ATOMIC_RELAXED);  // magic: 0
  if (!(prot & PROT_WRITE)) mprotect(page, length, PROT_READ);
  if (mremap(page, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(base)) ==
      MAP_FAILED) {
    munmap(page, length);
    return false;
  }
  return true;
}

// Marks the slot untrusted for `reason` (the first reason wins); returns false.
bool invalidate(Slot& slot, const char* reason) {
  const char* none = nullptr;
  slot.invalid.compare_exchange_strong(none, reason, std::memory_order_acq_rel);
  return false;
}

// still_valid() found the source untrusted: the same, and its page becomes a tombstone
// too, so that from now on every thread's per-draw check reads kGenerationUnknown and
// every draw in the process goes to the kernel, not only the one that asked (the others
// would otherwise serve what their buffers hold until their own next refill).
bool retire_source(Slot& slot, const char* reason) {
  const char* none = nullptr;
  if (slot.invalid.compare_exchange_strong(none, reason, std::memory_order_acq_rel)) {
    tombstone_mapping(slot.base.load(std::memory_order_relaxed), slot.length, PROT_READ);
  }
  return false;
}

// The device and inode of the file mapped at `base`, from /proc/self/maps; false if it
// cannot be told. System calls and a byte-by-byte scan only: async-signal-safe.
bool mapped_file_identity(uintptr_t base, uint64_t* dev, uint64_t* ino) {
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // Each line: start-end perms offset major:minor inode [path]. Fields by number.
  int field = 0;
  bool skip = false, found = false;
  uint64_t start = 0, major = 0, minor = 0, inode = 0;
  char chunk[4096];
  ssize_t got;
  while (!found && (got = read(fd, chunk, sizeof chunk)) > 0) {
    for (ssize_t i = 0; i < got; ++i) {
      const char c = chunk[i];
      if (c == '\n') {
        found = !skip && field >= 5 && start == base;
        if (found) break;
        field = 0;
        skip = false;
        start = major = minor = inode = 0;
        continue;
      }
      if (skip) continue;
      const int hex = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      switch (field) {
        case 0:  // start address
          if (c == '-') {
            field = 1;
            skip = start != base;
          } else if (hex >= 0) {
            start = start * 16 + static_cast<uint64_t>(hex);
          }
          break;
        case 4:  // device, major:minor in hex
          if (c == ':') {
            major = minor, minor = 0;
            field = 40;
          } else if (hex >= 0) {
            minor = minor * 16 + static_cast<uint64_t>(hex);
          }
          break;
        case 40:
          if (c == ' ') field = 5;
          else if (hex >= 0) minor = minor * 16 + static_cast<uint64_t>(hex);
          break;
        case 5:  // inode, decimal
          if (c == ' ') field = 6;
          else if (c >= '0' && c <= '9') inode = inode * 10 + static_cast<uint64_t>(c - '0');
          break;
        case 6:
          break;
        default:  // end, perms, offset: to the next space
          if (c == ' ') ++field;
          break;
      }
    }
  }
  close(fd);
  if (found) {
    *dev = makedev(major, minor);
    *ino = inode;
  }
  return found;
}

// still_valid() of the source in `slot`. Every call: one load of the magic. At most once
// per check interval (the first caller after it elapsed wins; others go on): one lstat()
// of the path, compared with the file that is mapped.
bool check_slot_may_set_errno(Slot& slot) {
  if (slot.invalid.load(std::memory_order_acquire) != nullptr) return false;
  void* const map = reinterpret_cast<void*>(slot.base.load(std::memory_order_relaxed));
  if (!magic_intact(map)) {
    const bool retired = __atomic_load_n(magic_of(map), __ATOMIC_RELAXED) == 0 &&
                         __atomic_load_n(generation_word(map), __ATOMIC_RELAXED) ==
                             kGenerationUnknown;
    return retire_source(slot, retired ? kReasonRetired : kReasonMagic);
  }
  const int64_t now = coarse_now_ns();
  int64_t next = slot.next_check_ns.load(std::memory_order_relaxed);
  if (now < next) return true;
  const int64_t interval = g_check_interval_ns.load(std::memory_order_relaxed);
  if (!slot.next_check_ns.compare_exchange_strong(next, now + interval,
                                                  std::memory_order_relaxed)) {
    return true;  // another thread is checking right now
  }
  struct stat st;
  if (lstat(slot.path.c_str(), &st) != 0) {
    return retire_source(slot, errno == ENOENT ? kReasonGone : kReasonNoStat);
  }
  if (st.st_dev != slot.dev.load(std::memory_order_relaxed) ||
      st.st_ino != slot.ino.load(std::memory_order_relaxed)) {
    // Another file at the path. Still fine if the mapping itself is now that file: a
    // restore that re-creates file mappings by path (CRIU) maps the file the hook bumps.
    uint64_t dev = 0, ino = 0;
    if (!mapped_file_identity(reinterpret_cast<uintptr_t>(map), &dev, &ino) ||
        dev != st.st_dev || ino != st.st_ino) {
      return retire_source(slot, kReasonReplaced);
    }
    slot.dev.store(dev, std::memory_order_relaxed);
    slot.ino.store(ino, std::memory_order_relaxed);
  }
  if (untrusted_reason(st, /*is_dir=*/false) != nullptr) {
    const bool trusted_owner = st.st_uid == 0 || st.st_uid == geteuid();
    return retire_source(slot, trusted_owner ? kReasonWritable : kReasonOwner);
  }
  if (st.st_size < static_cast<off_t>(kCounterFileSize)) return retire_source(slot, kReasonShrunk);
  return true;
}

// The same, leaving errno as it was (the draw calls it).
bool check_slot(Slot& slot) {
  const int saved_errno = errno;
  const bool valid = check_slot_may_set_errno(slot);
  errno = saved_errno;
  return valid;
}

// ---- Truncation. A load from a page of a MAP_SHARED mapping past the end of its file
// raises SIGBUS. The guard replaces such a counter page with a tombstone (magic 0,
// generation kGenerationUnknown): the faulting load is retried and reads "unknown", so
// the draw goes to the kernel, and still_valid() is false. Any other SIGBUS goes where it
// went before the guard was installed.

struct sigaction g_previous_sigbus;  // what to pass foreign SIGBUS to
std::atomic<bool> g_sigbus_guard{true};
std::mutex g_install_mutex;
bool g_sigbus_installed = false;

// A SIGBUS that is not ours: do what would have happened without the guard.
void pass_on(int signal, siginfo_t* info, void* context) {
  const struct sigaction& previous = g_previous_sigbus;
  const bool fault = info != nullptr && info->si_code > 0;  // raised by the kernel, not kill()
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(signal, info, context);
    return;
  }
  if (previous.sa_handler == SIG_IGN) {
    // A fault cannot be ignored: restored, the retried access faults again and the
    // kernel kills, as it did before. A SIGBUS sent by kill() stays ignored.
    if (fault) sigaction(SIGBUS, &previous, nullptr);
    return;
  }
  if (previous.sa_handler == SIG_DFL) {
    // The default action, restored, then the signal again (pending until this handler
    // returns): the process dies of SIGBUS as it would have, whether the signal was a
    // fault (which might not repeat: an asynchronous memory error) or sent.
    sigaction(SIGBUS, &previous, nullptr);
    raise(SIGBUS);
    return;
  }
  previous.sa_handler(signal);
}

void on_sigbus(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (info != nullptr && info->si_code > 0 && g_sigbus_guard.load(std::memory_order_relaxed)) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Slot& slot : g_slots) {
      const uintptr_t base = slot.base.load(std::memory_order_acquire);
      if (base == 0 || address - base >= slot.length) continue;
      if (tombstone_mapping(base, slot.length, slot.prot)) {
        invalidate(slot, kReasonTruncated);
        errno = saved_errno;
        return;  // the load is retried on the tombstone
      }
      break;  // no memory for a tombstone: as if there were no guard
    }
  }
  pass_on(signal, info, context);
  errno = saved_errno;
}

// Installed once, when a process first maps a counter file (`again`: tests only).
void install_sigbus_guard(bool again) {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_sigbus_installed && !again) return;
  struct sigaction current;
  if (sigaction(SIGBUS, nullptr, &current) != 0) return;
  const bool ours = (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == &on_sigbus;
  if (!ours) g_previous_sigbus = current;
  struct sigaction action = {};
  action.sa_sigaction = &on_sigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGBUS, &action, nullptr) == 0) g_sigbus_installed = true;
}

template <size_t kIndex>
bool still_valid_at() {
  return check_slot(g_slots[kIndex]);
}

template <size_t... kIndex>
constexpr std::array<bool (*)(), sizeof...(kIndex)> still_valid_table(
    std::index_sequence<kIndex...>) {
  return {{&still_valid_at<kIndex>...}};
}

// One still_valid() per slot: a source's function knows its mapping without any argument.
constexpr std::array<bool (*)(), kSlots> kStillValid =
    still_valid_table(std::make_index_sequence<kSlots>());

// A validated, registered mapping of a counter file.
struct Mapped {
  void* map = nullptr;
  int slot = -1;
  struct stat st;
};

void unmap_counter(const Mapped& mapped) {
  release_slot(mapped.slot);
  munmap(mapped.map, kCounterFileSize);
}

// Opens the file under the trust rules (file_trust.h), resolved from `root`, checks its
// size, maps it with `prot`, registers the mapping and checks the magic. On failure returns
// false with *error set, and *missing (if given) true when the path names nothing (ENOENT).
bool map_counter(const std::string& path, int prot, Mapped* mapped, std::string* error,
                 bool* bad_magic = nullptr, int root = kThisProcessRoot,
                 bool* missing = nullptr) {
  const int fd = open_trusted(path, prot & PROT_WRITE ? O_RDWR : O_RDONLY,
                              LastComponent::kRegularNoFollow, &mapped->st, error, root);
  if (fd < 0) {
    if (missing != nullptr) *missing = errno == ENOENT;
    return false;
  }
  if (mapped->st.st_size < static_cast<off_t>(kCounterFileSize)) {
    *error = path + ": truncated counter file (" + std::to_string(mapped->st.st_size) +
             " bytes, expected " + std::to_string(kCounterFileSize) + ")";
    close(fd);
    return false;
  }
  void* const map = mmap(nullptr, kCounterFileSize, prot, MAP_SHARED, fd, 0);
  close(fd);  // the mapping keeps the file referenced
  if (map == MAP_FAILED) {
    *error = errno_message(path, "mmap");
    return false;
  }
  install_sigbus_guard(/*again=*/false);  // before the first load from the mapping
  mapped->map = map;
  mapped->slot = claim_slot(map, prot);
  if (mapped->slot < 0) {
    munmap(map, kCounterFileSize);
    *error = path + ": too many counter-file mappings in this process (" +
             std::to_string(kSlots) + ")";
    return false;
  }
  if (!magic_intact(map)) {
    unmap_counter(*mapped);
    *error = path + ": corrupt counter file (bad magic; expected \"SSGENv1\")";
    if (bad_magic != nullptr) *bad_magic = true;
    return false;
  }
  return true;
}

// Test-only: replaces getrandom() as the source of fresh generations (nullptr: getrandom).
std::atomic<bool (*)(Generation*)> g_fresh_for_testing{nullptr};

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
    if (bool (*fresh)(Generation*) = g_fresh_for_testing.load(); fresh != nullptr) {
      if (!fresh(&value)) {
        errno = EIO;
        return std::string("getrandom: ") + std::strerror(errno) + " (" + what + ")";
      }
    } else {
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
  const bool written = fchmod(fd, 0644) == 0 &&
                       write(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes);
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

OpenResult open_counter_file(const std::string& path) {
  OpenResult result;
  const std::string absolute = absolute_path(path);
  if (absolute.empty()) {
    result.error = errno_message(path, "getcwd");
    return result;
  }
  Mapped mapped;
  if (!map_counter(path, PROT_READ, &mapped, &result.error)) return result;
  int index = mapped.slot;
  // The same file opened again (a re-selection): keep its mapping and its state.
  for (size_t i = 0; i < kSlots; ++i) {
    Slot& slot = g_slots[i];
    if (slot.state.load(std::memory_order_acquire) == kSource && slot.path == absolute &&
        slot.dev.load() == mapped.st.st_dev && slot.ino.load() == mapped.st.st_ino &&
        kStillValid[i]()) {
      unmap_counter(mapped);
      index = static_cast<int>(i);
      break;
    }
  }
  Slot& slot = g_slots[index];
  if (index == mapped.slot) {
    slot.path = absolute;
    slot.dev.store(mapped.st.st_dev);
    slot.ino.store(mapped.st.st_ino);
    slot.state.store(kSource, std::memory_order_release);
  }
  Reader reader;
  reader.word = generation_word(reinterpret_cast<void*>(slot.base.load()));
  return opened_source(SourceKind::kCounterFile, path, reader, nullptr, kStillValid[index]);
}

std::string counter_file_invalid_reason(bool (*still_valid)()) {
  for (size_t i = 0; i < kSlots; ++i) {
    if (kStillValid[i] != still_valid) continue;
    const Slot& slot = g_slots[i];
    if (slot.state.load(std::memory_order_acquire) != kSource) return "";
    const char* reason = slot.invalid.load(std::memory_order_acquire);
    return reason == nullptr ? "" : slot.path + ": no longer trusted: " + reason;
  }
  return "";
}

void counter_file_sigbus_guard_for_testing(bool enabled) { g_sigbus_guard.store(enabled); }

void counter_file_reinstall_sigbus_handler_for_testing() { install_sigbus_guard(/*again=*/true); }

void counter_file_check_interval_for_testing(int64_t nanoseconds) {
  g_check_interval_ns.store(nanoseconds);
}

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
                              bool* missing,
                              const std::function<void(Generation)>& before_store) {
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
    if (__atomic_compare_exchange_n(word, &seen, next, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_ACQUIRE)) {
      *generation = next;
      break;
    }
  }
  const bool intact = magic_intact(mapped.map);  // not tombstoned by a truncation meanwhile
  unmap_counter(mapped);
  if (!error.empty()) return error;
  return intact ? "" : path + ": truncated or overwritten during the bump";
}

std::string counter_file_set(const std::string& path, Generation value, bool* unchanged,
                             int root, bool* missing) {
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
  const Generation before = __atomic_exchange_n(generation_word(mapped.map), value,
                                                __ATOMIC_SEQ_CST);
  if (unchanged != nullptr) *unchanged = before == value;
  const bool intact = magic_intact(mapped.map);
  unmap_counter(mapped);
  return intact ? "" : path + ": truncated or overwritten while being set";
}

void counter_file_fresh_generation_for_testing(bool (*fresh)(Generation*)) {
  g_fresh_for_testing.store(fresh);
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

}  // namespace snapsafe::genid
