// Seed gathering: see seed.h (the construction is explained there).
#include "rng/internal/seed.h"

#include <time.h>

#include <atomic>
#include <cstring>

#include "rng/internal/hardware_rng.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/wipe.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace snapsafe::rng_internal {
namespace {

std::atomic<uint64_t> g_reseed_counter{0};

thread_local bool t_hardware_rng = false;

#if !defined(__x86_64__)
uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
#endif

}  // namespace

bool hardware_rng_available() noexcept { return t_hardware_rng; }

bool gather_seed_inputs(genid::Generation generation, SeedMaterial* material) noexcept {
  SeedMaterial& m = *material;
  std::memset(&m, 0, sizeof m);
#ifdef SNAPSAFE_TESTING
  if (g_test_hooks.injected_seed != nullptr) {
    std::memcpy(m.kernel, g_test_hooks.injected_seed, sizeof m.kernel);
    return true;
  }
#endif
  t_hardware_rng = hardware_rng_words(m.hardware, 2);
#if defined(__x86_64__)
  m.clock = __rdtsc();
#else
  m.clock = clock_ns(CLOCK_MONOTONIC);
#endif
  if (SNAPSAFE_TEST_FLAG(frozen_clocks)) m.clock = 0;
  m.generation = generation;
  m.thread = reinterpret_cast<uintptr_t>(&t_hardware_rng);  // unique per live thread
  m.counter = g_reseed_counter.fetch_add(1, std::memory_order_relaxed);
  return false;
}

#ifdef SNAPSAFE_TESTING
void observe_seed(const SeedMaterial& m) noexcept {
  if (g_test_hooks.seed_material != nullptr) g_test_hooks.seed_material(&m, sizeof m);
}
#endif

int derive_seed(genid::Generation generation, SeedMaterial* material) noexcept {
  return gather_seed(generation, material);
}

int derive_seed(genid::Generation generation, uint8_t key[32]) noexcept {
  SeedMaterial m;
  const int error = derive_seed(generation, &m);
  std::memcpy(key, m.kernel, sizeof m.kernel);
  wipe(&m, sizeof m);
  return error;
}

}  // namespace snapsafe::rng_internal
