// Output served without the buffer: see kernel_output.h.
#include "rng/internal/kernel_output.h"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/setup.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/wipe.h"

namespace snapsafe::rng_internal {
namespace {

// A draw is served again at most this often when a fork() lands inside it (from a signal
// handler that interrupted it); then it fails closed.
constexpr int kMaxAttempts = 3;

// Forks this process has been made by: the pthread_atfork child handler below adds one in
// each child (also when fork() is called from a signal handler). A draw that sees it change
// ran partly in the parent: the bytes it made so far are the parent's too.
std::atomic<uint64_t> g_forks{0};
void count_fork_in_child() { g_forks.fetch_add(1, std::memory_order_relaxed); }
[[maybe_unused]] const int g_fork_counter = pthread_atfork(nullptr, nullptr, &count_fork_in_child);

uint64_t fork_token() {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // not moved across the draw
  return g_forks.load(std::memory_order_relaxed);
}

// Up to this size the hardware mask is one health-checked RDRAND word per 8 bytes (at most
// 8 words, ~31 ns each here); above, AES-256-CTR keyed by 4 such words (hardware_rng.h).
// Measured, a kernel-backed 4 KiB draw (bench fill4096/snapsafe_kernel, loaded host):
// 512 words 26.7-27.4 us CPU, keyed 11.0-11.6 us (of which the vDSO's 4 KiB is most).
constexpr size_t kWordMaskMaxBytes = 64;

// XORs the hardware mask over `size` bytes of kernel output; false if the hardware RNG
// failed its checks (`out` must then be discarded).
bool hardware_mask(void* out, size_t size) {
  if (size > kWordMaskMaxBytes && aes_ctr_variant() != AesVariant::kEvp) {
    return hardware_rng_keyed_xor(out, size);
  }
  return hardware_rng_xor(out, size);
}

// One serving, as kernel_output.h says.
int serve(void* out, size_t size, bool signal_safe) {
  if (SNAPSAFE_TEST_FLAG(unmasked_vdso_output)) return kernel_fill_fast(out, size);
  if (hardware_rng_present()) {
    // The vDSO's state may be a replayed copy: safe only under the hardware mask.
    const int error = signal_safe ? kernel_fill(out, size) : kernel_fill_fast(out, size);
    if (error != 0) return error;
    if (hardware_mask(out, size)) return 0;
    // The hardware RNG failed a health check: fall through to a fresh kernel read.
  }
  return kernel_fill(out, size);
}

}  // namespace

bool kernel_output_uses_hardware_rng() noexcept {
  if (!hardware_rng_present()) return false;
  if (SNAPSAFE_TEST_FLAG(status_trusts_cpuid)) return true;
  uint64_t words[2];  // the health checks every draw applies, on two fresh words
  const bool healthy = hardware_rng_words(words, 2);
  wipe(words, sizeof words);
  return healthy;
}

int kernel_output(void* out, size_t size, bool signal_safe) noexcept {
  // The RDRAND probe, the vDSO lookup: under the fork-safe one-time setup (one load once
  // done), also for callers that reach here first (random_device("kernel")).
  if (!SNAPSAFE_TEST_FLAG(kernel_output_skips_setup)) library_setup();
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const uint64_t token = fork_token();
    const int error = serve(out, size, signal_safe);
    if (error != 0) return error;
    SNAPSAFE_TEST_HOOK(after_kernel_output);
    if (fork_token() == token || SNAPSAFE_TEST_FLAG(disable_fork_recheck)) return 0;
    // fork() ran inside this draw: this is the child, and `out` holds bytes its parent
    // also returns. The child handlers wiped this thread's vDSO state: serve again.
  }
  std::memset(out, 0, size);
  return EAGAIN;
}

}  // namespace snapsafe::rng_internal
