// The counter file as a generation source (the read side the draw path uses): see
// counter_file.h for the design. Its mappings and the SIGBUS guard over them are in
// counter_file_guard.cc, the writer the tools link in counter_file_writer.cc.
#include "genid/counter_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <utility>

#include "genid/counter_file_guard.h"
#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

using namespace counter_file_internal;  // NOLINT: this file is one of its three rooms

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

std::atomic<int64_t> g_check_interval_ns{kCounterFileCheckIntervalNs};

int64_t coarse_now_ns() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);  // vDSO: no system call
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
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
        case 6: break;
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
    const bool retired =
        __atomic_load_n(magic_of(map), __ATOMIC_RELAXED) == 0 &&
        __atomic_load_n(generation_word(map), __ATOMIC_RELAXED) == kGenerationUnknown;
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
    if (!mapped_file_identity(reinterpret_cast<uintptr_t>(map), &dev, &ino) || dev != st.st_dev ||
        ino != st.st_ino) {
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

// invalid_reason() (source.h): why the source's still_valid() said false.
std::string invalid_reason(const OpenedSource& source) {
  return counter_file_invalid_reason(source.still_valid);
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
  return opened_source(SourceKind::kCounterFile, path, reader, nullptr, kStillValid[index],
                       &invalid_reason);
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

#ifdef SNAPSAFE_TESTING  // //genid:genid_testing only
void counter_file_check_interval_for_testing(int64_t nanoseconds) {
  g_check_interval_ns.store(nanoseconds);
}
#endif

}  // namespace snapsafe::genid
