// The counter file's mappings and their SIGBUS guard: see counter_file_guard.h.
#include "genid/counter_file_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "genid/counter_file.h"

namespace snapsafe::genid {
namespace counter_file_internal {

Slot g_slots[kSlots];

std::string errno_message(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

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

bool invalidate(Slot& slot, const char* reason) {
  const char* none = nullptr;
  slot.invalid.compare_exchange_strong(none, reason, std::memory_order_acq_rel);
  return false;
}

namespace {

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

}  // namespace

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

void unmap_counter(const Mapped& mapped) {
  release_slot(mapped.slot);
  munmap(mapped.map, kCounterFileSize);
}

bool map_counter(const std::string& path, int prot, Mapped* mapped, std::string* error,
                 bool* bad_magic, int root, bool* missing) {
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
    *error =
        path + ": too many counter-file mappings in this process (" + std::to_string(kSlots) + ")";
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

}  // namespace counter_file_internal

#ifdef SNAPSAFE_TESTING  // //genid:genid_testing only
void counter_file_sigbus_guard_for_testing(bool enabled) {
  counter_file_internal::g_sigbus_guard.store(enabled);
}

void counter_file_reinstall_sigbus_handler_for_testing() {
  counter_file_internal::install_sigbus_guard(/*again=*/true);
}
#endif

}  // namespace snapsafe::genid
