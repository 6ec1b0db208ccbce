// The dispatch between the in-page and the EVP keystream: see state_keystream.h.
#include "rng/internal/state_keystream.h"

#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/wipe.h"

namespace snapsafe::rng_internal {
namespace {

// A failed step's end: key and output zeroed.
bool fail(ThreadState* st, uint8_t* out, size_t size) {
  wipe(st->key, sizeof st->key);
  wipe(out, size);
  return false;
}

// The test hook fail_keystream on the in-page path (keystream.cc checks it on the EVP
// path): whether the step is to fail as a real failure would.
bool in_page_failure_injected() { return SNAPSAFE_TEST_FLAG(fail_keystream); }

}  // namespace

bool state_keystream_in_page() noexcept { return aes_ctr_variant() != AesVariant::kEvp; }

bool state_keystream_reseed_step(ThreadState* st, EVP_CIPHER_CTX*& ctx, uint8_t* out, size_t size,
                                 const uint8_t* input, size_t input_blocks) noexcept {
  if (state_keystream_in_page()) {
    if (in_page_failure_injected()) return fail(st, out, size);
    return page_keystream_reseed_step(&st->schedule, st->counter, st->key, out, size, input,
                                      input_blocks);
  }
  if (ctx == nullptr) ctx = keystream_new();
  if (ctx == nullptr) return fail(st, out, size);
  return keystream_reseed_step(ctx, st->key, out, size, input, input_blocks);
}

bool state_keystream_step(ThreadState* st, EVP_CIPHER_CTX* ctx, uint8_t* out,
                          size_t size) noexcept {
  if (state_keystream_in_page()) {
    if (in_page_failure_injected()) return fail(st, out, size);
    return page_keystream_step(&st->schedule, st->counter, st->key, out, size);
  }
  if (ctx == nullptr) return fail(st, out, size);  // a test switched the variant to evp
  return keystream_step(ctx, st->key, out, size);
}

bool state_keystream_bulk_step(ThreadState* st, EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size,
                               const uint8_t next_key[kKeyBytes]) noexcept {
  if (state_keystream_in_page()) {
    if (in_page_failure_injected()) return fail(st, out, size);
    return page_keystream_bulk_step(&st->schedule, st->counter, st->key, out, size, next_key);
  }
  if (ctx == nullptr) return fail(st, out, size);
  return keystream_bulk_step(ctx, st->key, out, size, next_key);
}

}  // namespace snapsafe::rng_internal
