// VMClock source: see vmclock.h.
#include "genid/vmclock.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "genid/file_trust.h"

namespace snapsafe::genid {
namespace {

const unsigned char* g_page = nullptr;

template <typename T>
T load_acquire(const unsigned char* page, size_t offset) {
  return __atomic_load_n(reinterpret_cast<const T*>(page + offset), __ATOMIC_ACQUIRE);
}

Generation read_mapped() { return vmclock_read_generation(g_page); }

}  // namespace

#ifdef SNAPSAFE_TESTING  // //genid:genid_testing only: production reads carry no hook
void (*g_vmclock_between_loads_for_testing)() = nullptr;
#endif

Generation vmclock_read_generation(const unsigned char* page) {
  for (int attempt = 0; attempt < kVmclockSeqlockRetries; ++attempt) {
    const uint32_t seq_before = load_acquire<uint32_t>(page, kVmclockOffsetSeqCount);
    if (seq_before & 1) continue;  // the hypervisor is writing
    const uint64_t generation = load_acquire<uint64_t>(page, kVmclockOffsetGeneration);
    std::atomic_thread_fence(std::memory_order_acquire);  // the value before the re-read
#ifdef SNAPSAFE_TESTING
    if (__builtin_expect(g_vmclock_between_loads_for_testing != nullptr, 0)) {
      g_vmclock_between_loads_for_testing();
    }
#endif
    if (load_acquire<uint32_t>(page, kVmclockOffsetSeqCount) == seq_before) return generation;
  }
  return kGenerationUnknown;
}

const char* vmclock_page_problem(const unsigned char* page) {
  if (load_acquire<uint32_t>(page, kVmclockOffsetMagic) != kVmclockMagic) {
    return "bad magic (not a VMClock page)";
  }
  if (load_acquire<uint16_t>(page, kVmclockOffsetVersion) != 1) {
    return "unsupported VMClock version";
  }
  if (load_acquire<uint32_t>(page, kVmclockOffsetSize) < kVmclockOffsetGeneration + 8) {
    return "VMClock region too small for vm_generation_counter";
  }
  if (!(load_acquire<uint64_t>(page, kVmclockOffsetFlags) & kVmclockFlagGenCounterPresent)) {
    return "VMClock has no vm_generation_counter (flag bit 8 clear)";
  }
  return nullptr;
}

OpenResult open_vmclock(const std::string& path) {
  OpenResult result;
  // The real path is a character device, tests use a regular file. Never anything else:
  // a FIFO planted at the path would block a plain open() forever (file_trust.h).
  struct stat st;
  const int fd =
      open_trusted(path, O_RDONLY, LastComponent::kRegularOrCharDevice, &st, &result.error);
  if (fd < 0) return result;
  const bool is_file = S_ISREG(st.st_mode);
  if (is_file && st.st_size < static_cast<off_t>(kVmclockOffsetGeneration + 8)) {
    close(fd);
    result.error = path + ": truncated VMClock page";
    return result;
  }
  void* map = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    result.error = path + ": mmap: " + std::strerror(errno);
    return result;
  }
  const auto* page = static_cast<const unsigned char*>(map);
  if (const char* problem = vmclock_page_problem(page); problem != nullptr) {
    munmap(map, 4096);
    result.error = path + ": " + problem;
    return result;
  }
  g_page = page;
  Reader reader;
  reader.call = &read_mapped;
  return opened_source(SourceKind::kVmclock, path, reader);
}

}  // namespace snapsafe::genid
