// Seed gathering: see seed.h (the construction is explained there).
#include "rng/internal/seed.h"

#include <openssl/crypto.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/test_hooks.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace snapsafe::rng_internal {
namespace {

std::atomic<uint64_t> g_reseed_counter{0};

thread_local bool t_hardware_rng = false;

uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

bool hardware_rng_available() noexcept { return t_hardware_rng; }

int derive_seed(genid::Generation generation, SeedMaterial* material) noexcept {
  SeedMaterial& m = *material;
  std::memset(&m, 0, sizeof m);
#ifdef SNAPSAFE_TESTING
  if (g_test_hooks.injected_seed != nullptr) {
    std::memcpy(m.kernel, g_test_hooks.injected_seed, sizeof m.kernel);
    return 0;
  }
#endif
  // The system call, never the vDSO: its state is process memory a restore replays (20 of
  // 20 restores drew identical vDSO bytes right after a bumped reseed). A reseed must
  // rest on a fresh kernel read.
  if (const int error = kernel_fill(m.kernel, sizeof m.kernel)) {
    std::memset(&m, 0, sizeof m);
    return error;
  }
  t_hardware_rng = hardware_rng_words(m.hardware, 2);
  m.clocks[0] = clock_ns(CLOCK_REALTIME);
#if defined(__x86_64__)
  m.clocks[1] = __rdtsc();
#else
  m.clocks[1] = clock_ns(CLOCK_MONOTONIC);
#endif
  if (SNAPSAFE_TEST_FLAG(frozen_clocks)) std::memset(m.clocks, 0, sizeof m.clocks);
  m.generation = generation;
  m.thread = reinterpret_cast<uintptr_t>(&t_hardware_rng);  // unique per live thread
  m.counter = g_reseed_counter.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(m.label, "ssseed/3", sizeof m.label);
#ifdef SNAPSAFE_TESTING
  if (g_test_hooks.seed_material != nullptr) g_test_hooks.seed_material(&m, sizeof m);
#endif
  return 0;
}

int derive_seed(genid::Generation generation, uint8_t key[32]) noexcept {
  SeedMaterial m;
  const int error = derive_seed(generation, &m);
  std::memcpy(key, m.kernel, sizeof m.kernel);
  OPENSSL_cleanse(&m, sizeof m);
  return error;
}

int seed_and_step(genid::Generation generation, ThreadState* st, EVP_CIPHER_CTX*& ctx, uint8_t* out,
                  size_t size) noexcept {
  SeedMaterial m;
  if (const int error = derive_seed(generation, &m)) return error;
  std::memcpy(st->key, m.kernel, sizeof m.kernel);
  const bool stepped =
      state_keystream_reseed_step(st, ctx, out, size, seed_input(m), kSeedInputBlocks);
  if (!SNAPSAFE_TEST_FLAG(keep_stack_secrets)) OPENSSL_cleanse(&m, sizeof m);
  return stepped ? 0 : EIO;
}

}  // namespace snapsafe::rng_internal
