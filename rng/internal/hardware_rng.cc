// The CPU's hardware RNG: see hardware_rng.h.
#include "rng/internal/hardware_rng.h"

#include <cstring>

#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/wipe.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace snapsafe::rng_internal {

#if defined(__x86_64__)
bool hardware_rng_present() noexcept {
  static const bool has = [] {
    SNAPSAFE_TEST_HOOK(inside_setup);
    unsigned int eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_RDRND);
  }();
  return has && !SNAPSAFE_TEST_FLAG(disable_hardware_rng);
}

namespace {

// Wipes the stack copies of healthy_word(): the instruction's output goes through a slot
// (the intrinsic takes its address), and an unoptimised build spills `previous` too.
void wipe_word_copies(unsigned long long* value, uint64_t* previous) {
  if (SNAPSAFE_TEST_FLAG(keep_stack_secrets)) return;
  wipe(value, sizeof *value);
  wipe(previous, sizeof *previous);
}

// One healthy word, or false. `previous` is the word before it in this call (or 0).
__attribute__((target("rdrnd"))) bool healthy_word(uint64_t previous, uint64_t* word) {
  unsigned long long value = 0;
  for (int tries = 0; tries < 10; ++tries) {
    if (!_rdrand64_step(&value)) continue;
#ifdef SNAPSAFE_TESTING
    if (g_test_hooks.hardware_rng_value != nullptr) value = g_test_hooks.hardware_rng_value();
#endif
    if (value == 0 || value == ~0ull || value == previous) continue;
    *word = value;
    wipe_word_copies(&value, &previous);
    return true;
  }
  wipe_word_copies(&value, &previous);
  return false;
}

}  // namespace

bool hardware_rng_words(uint64_t* words, size_t count) noexcept {
  if (!hardware_rng_present()) {
    std::memset(words, 0, count * sizeof *words);
    return false;
  }
  uint64_t previous = 0;
  bool ok = true;
  for (size_t i = 0; ok && i < count; ++i) {
    ok = healthy_word(previous, &words[i]);
    previous = words[i];
  }
  if (!ok) std::memset(words, 0, count * sizeof *words);
  wipe(&previous, sizeof previous);
  return ok;
}
#else
bool hardware_rng_present() noexcept { return false; }
namespace {
bool healthy_word(uint64_t, uint64_t*) { return false; }
}  // namespace
bool hardware_rng_words(uint64_t* words, size_t count) noexcept {
  std::memset(words, 0, count * sizeof *words);
  return false;
}
#endif

bool hardware_rng_xor(void* out, size_t size) noexcept {
  if (!hardware_rng_present()) return false;
  auto* bytes = static_cast<unsigned char*>(out);
  uint64_t previous = 0, word = 0, mixed;
  bool ok = true;
  for (size_t done = 0; done < size; done += sizeof word) {
    if (!healthy_word(previous, &word)) {
      ok = false;
      break;
    }
    const size_t take = size - done < sizeof word ? size - done : sizeof word;
    mixed = 0;
    std::memcpy(&mixed, bytes + done, take);
    mixed ^= word;
    std::memcpy(bytes + done, &mixed, take);
    previous = word;
  }
  wipe(&word, sizeof word);
  wipe(&previous, sizeof previous);
  return ok;
}

bool hardware_rng_keyed_xor(void* out, size_t size) noexcept {
  if (aes_ctr_variant() == AesVariant::kEvp) return false;  // before any RDRAND is spent
  uint64_t key[kAesKeyBytes / sizeof(uint64_t)];
  AesSchedule schedule;
  uint8_t counter[kAesBlockBytes] = {};
  alignas(16) uint8_t chunk[256];
  bool ok = hardware_rng_words(key, sizeof key / sizeof key[0]) &&
            aes256_expand(&schedule, reinterpret_cast<const uint8_t*>(key));
  auto* bytes = static_cast<unsigned char*>(out);
  for (size_t done = 0; ok && done < size; done += sizeof chunk) {
    const size_t take = size - done < sizeof chunk ? size - done : sizeof chunk;
    ok = aes256_ctr(&schedule, counter, chunk, (take + kAesBlockBytes - 1) / kAesBlockBytes);
    for (size_t i = 0; ok && i < take; ++i) bytes[done + i] ^= chunk[i];
  }
  if (!SNAPSAFE_TEST_FLAG(keep_stack_secrets)) {
    wipe(key, sizeof key);
    wipe(&schedule, sizeof schedule);
    wipe(chunk, sizeof chunk);
  }
  return ok;
}

}  // namespace snapsafe::rng_internal
