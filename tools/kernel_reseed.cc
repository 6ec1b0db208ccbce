// Mixing a new generation into the kernel's RNG: see kernel_reseed.h.
#include "tools/kernel_reseed.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "rng/internal/hardware_rng.h"
#include "rng/internal/wipe.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace snapsafe::tools {
namespace {

int real_ioctl(int fd, unsigned long request, void* argument) {
  return ioctl(fd, request, argument);
}

constexpr int kHardwareWords = 4;

// struct rand_pool_info (<linux/random.h>) with room in its flexible buffer for the
// generation, the RDRAND words and the cycle counter, 8 bytes each.
struct PoolInput {
  int entropy_count;
  int buf_size;  // bytes
  uint32_t buf[2 * (2 + kHardwareWords)];
};
static_assert(offsetof(PoolInput, entropy_count) == offsetof(rand_pool_info, entropy_count));
static_assert(offsetof(PoolInput, buf_size) == offsetof(rand_pool_info, buf_size));
static_assert(offsetof(PoolInput, buf) == offsetof(rand_pool_info, buf));

std::string why(int error) {
  if (error == EPERM) return "EPERM: needs CAP_SYS_ADMIN";
  if (error == EINVAL || error == ENOTTY) {
    return std::string(strerrorname_np(error)) + ": not supported by this kernel";
  }
  const char* name = strerrorname_np(error);
  return std::string(name != nullptr ? name : "error") + ": " + std::strerror(error);
}

}  // namespace

KernelIoctl g_kernel_ioctl = &real_ioctl;

KernelReseedReport reseed_kernel(uint64_t generation) {
  const int saved_errno = errno;
  KernelReseedReport report;
  const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    report.mix_errno = report.reseed_errno = errno;
    errno = saved_errno;
    return report;
  }
  PoolInput input;
  std::memset(&input, 0, sizeof input);
  uint64_t values[2 + kHardwareWords] = {generation};
  size_t count = 1;
  if (rng_internal::hardware_rng_words(values + count, kHardwareWords)) {
    report.hardware_words = kHardwareWords;
    count += kHardwareWords;
  }
#if defined(__x86_64__)
  values[count++] = __rdtsc();
#endif
  std::memcpy(input.buf, values, count * sizeof values[0]);
  input.entropy_count = 0;  // mix, credit nothing
  input.buf_size = static_cast<int>(count * sizeof values[0]);
  if (g_kernel_ioctl(fd, RNDADDENTROPY, &input) == 0) {
    report.mixed = true;
  } else {
    report.mix_errno = errno;
  }
  if (g_kernel_ioctl(fd, RNDRESEEDCRNG, nullptr) == 0) {
    report.reseeded = true;
  } else {
    report.reseed_errno = errno;
  }
  close(fd);
  rng_internal::wipe(values, sizeof values);
  rng_internal::wipe(&input, sizeof input);
  errno = saved_errno;
  return report;
}

std::string KernelReseedReport::describe() const {
  std::string line = "mixed into the pool: ";
  if (mixed) {
    line += "yes (the generation, " +
            (hardware_words > 0 ? std::to_string(hardware_words) + " RDRAND words"
                                : std::string("no RDRAND word (none healthy)")) +
            ", the cycle counter; no entropy credited)";
  } else {
    line += "no (" + why(mix_errno) + ")";
  }
  line += "; CRNG reseeded: ";
  line += reseeded ? "yes" : "no (" + why(reseed_errno) + ")";
  return line;
}

}  // namespace snapsafe::tools
