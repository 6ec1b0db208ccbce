// File: provider/snapsafe_provider.cc
//
// An OpenSSL 3 provider whose one algorithm, the EVP_RAND "SNAPSAFE", serves every
// request from snapsafe::fill(): OpenSSL's RAND_bytes, RAND_priv_bytes and everything
// built on them (key generation, TLS randoms, nonces) become snapshot-safe with no code
// change, by configuration (provider/openssl-snapsafe.cnf):
//
//   [provider_sect]  snapsafe = snapsafe_sect, default = default_sect
//   [random]         random = SNAPSAFE
//
// OpenSSL 3.0 builds its three shared DRBGs (primary, public, private) from the
// algorithm named there; each becomes one SNAPSAFE context. A context holds nothing: the
// state is snapsafe's, per thread, checked against the generation on every draw, so there
// is no parent to seed from and nothing to lock. Reseed and instantiate accept and ignore
// entropy and personalisation input (snapsafe reseeds itself from the kernel whenever a
// watched generation moves); additional input is ignored likewise.
//
// Prediction resistance: a generate call that asks for it (EVP_RAND_generate with
// prediction_resistance = 1) is served by snapsafe's kernel-backed output
// (rng/internal/kernel_output.h: a fresh kernel read, masked with the CPU's RNG where it
// is healthy), never from the thread's buffer, whose next bytes are in process memory
// before the call (a memory image predicts them). OpenSSL asks for it on the first
// max_request (64 KiB) chunk of a request only (evp_rand.c), as for its own DRBGs.
//
// Failure: a failed draw (the kernel refused entropy, an OpenSSL step failed) fails the
// generate call with the output zeroed: OpenSSL then reports an error and returns no
// bytes (fail closed). The context shows EVP_RAND_STATE_ERROR until its next generate,
// which tries again: OpenSSL never re-instantiates a provider's RAND, so a context that
// stayed in the error state would fail every RAND_bytes of the process for good after
// one transient failure. Trying again is safe: the context holds nothing, and the failed
// draw already forgot the thread's snapsafe state (it reseeds); if the cause persists,
// that draw fails closed too.
//
// OpenSSL 3.5+: `random_provider = snapsafe` in the [random] section
// (provider/openssl-snapsafe-3.5.cnf) hands RAND_bytes and RAND_priv_bytes straight to
// the provider's OSSL_FUNC_PROVIDER_RANDOM_BYTES, with no DRBG in between; this provider
// offers it (provider_random_bytes, served like a generate call without prediction
// resistance: each call is snapsafe's draw, which checks the generation). OpenSSL 3.0
// never asks for that function: the EVP_RAND route above is the one it has.
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <cerrno>
#include <cstring>

#include "provider/test_flags.h"
#include "rng/internal/draw.h"
#include "rng/internal/kernel_output.h"

#ifdef SNAPSAFE_TESTING
namespace snapsafe::provider_internal {
ProviderTestFlags g_provider_test_flags;
}  // namespace snapsafe::provider_internal
#endif

namespace {

// What OpenSSL asks of a DRBG before it uses one.
constexpr unsigned int kStrength = 256;
constexpr size_t kMaxRequest = 1 << 16;

struct Context {
  int state = EVP_RAND_STATE_UNINITIALISED;
};

void* rand_newctx(void*, void*, const OSSL_DISPATCH*) { return new (std::nothrow) Context; }

void rand_freectx(void* ctx) { delete static_cast<Context*>(ctx); }

int rand_instantiate(void* ctx, unsigned int strength, int, const unsigned char*, size_t,
                     const OSSL_PARAM[]) {
  if (strength > kStrength) return 0;
  static_cast<Context*>(ctx)->state = EVP_RAND_STATE_READY;
  return 1;
}

int rand_uninstantiate(void* ctx) {
  static_cast<Context*>(ctx)->state = EVP_RAND_STATE_UNINITIALISED;
  return 1;
}

// Fills `out`: from the kernel when the caller asks for prediction resistance, else from
// snapsafe's draw. 0, or an errno with `out` zeroed.
int fill_output(unsigned char* out, size_t outlen, bool prediction_resistance) {
  if (prediction_resistance && !SNAPSAFE_PROVIDER_TEST_FLAG(ignore_prediction_resistance)) {
    return snapsafe::rng_internal::kernel_output(out, outlen, /*signal_safe=*/false);
  }
  return snapsafe::rng_internal::draw(out, outlen);
}

int rand_generate(void* ctx, unsigned char* out, size_t outlen, unsigned int strength,
                  int prediction_resistance, const unsigned char*, size_t) {
  auto* context = static_cast<Context*>(ctx);
  if (strength > kStrength) return 0;
  // The last call failed: try again (see the top of the file).
  if (context->state == EVP_RAND_STATE_ERROR && !SNAPSAFE_PROVIDER_TEST_FLAG(sticky_error)) {
    context->state = EVP_RAND_STATE_READY;
  }
  if (context->state != EVP_RAND_STATE_READY) return 0;
  if (fill_output(out, outlen, prediction_resistance != 0) != 0) {
    context->state = EVP_RAND_STATE_ERROR;
    return 0;  // fail closed: `out` is zeroed, OpenSSL reports the error
  }
  return 1;
}

int rand_reseed(void*, int, const unsigned char*, size_t, const unsigned char*, size_t) {
  return 1;
}

int rand_enable_locking(void*) { return 1; }  // no shared state: nothing to lock
int rand_lock(void*) { return 1; }
void rand_unlock(void*) {}

// Every output byte is snapsafe's: wiped in its buffer when handed out, keys erased.
int rand_verify_zeroization(void*) { return 1; }

const OSSL_PARAM kGettableCtxParams[] = {
    OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, nullptr),
    OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, nullptr),
    OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, nullptr),
    OSSL_PARAM_END,
};

const OSSL_PARAM* rand_gettable_ctx_params(void*, void*) { return kGettableCtxParams; }

int rand_get_ctx_params(void* ctx, OSSL_PARAM params[]) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
  if (p != nullptr && !OSSL_PARAM_set_int(p, static_cast<Context*>(ctx)->state)) return 0;
  p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
  if (p != nullptr && !OSSL_PARAM_set_uint(p, kStrength)) return 0;
  p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
  if (p != nullptr && !OSSL_PARAM_set_size_t(p, kMaxRequest)) return 0;
  return 1;
}

// Accepted and ignored: OpenSSL passes reseed intervals (and, for some types, a cipher
// or digest); snapsafe's reseeding is driven by the generation instead.
const OSSL_PARAM kSettableCtxParams[] = {OSSL_PARAM_END};
const OSSL_PARAM* rand_settable_ctx_params(void*, void*) { return kSettableCtxParams; }
int rand_set_ctx_params(void*, const OSSL_PARAM[]) { return 1; }

template <typename F>
OSSL_DISPATCH fn(int id, F f) {
  return {id, reinterpret_cast<void (*)(void)>(f)};
}

const OSSL_DISPATCH kRandFunctions[] = {
    fn(OSSL_FUNC_RAND_NEWCTX, rand_newctx),
    fn(OSSL_FUNC_RAND_FREECTX, rand_freectx),
    fn(OSSL_FUNC_RAND_INSTANTIATE, rand_instantiate),
    fn(OSSL_FUNC_RAND_UNINSTANTIATE, rand_uninstantiate),
    fn(OSSL_FUNC_RAND_GENERATE, rand_generate),
    fn(OSSL_FUNC_RAND_RESEED, rand_reseed),
    fn(OSSL_FUNC_RAND_ENABLE_LOCKING, rand_enable_locking),
    fn(OSSL_FUNC_RAND_LOCK, rand_lock),
    fn(OSSL_FUNC_RAND_UNLOCK, rand_unlock),
    fn(OSSL_FUNC_RAND_VERIFY_ZEROIZATION, rand_verify_zeroization),
    fn(OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, rand_gettable_ctx_params),
    fn(OSSL_FUNC_RAND_GET_CTX_PARAMS, rand_get_ctx_params),
    fn(OSSL_FUNC_RAND_SETTABLE_CTX_PARAMS, rand_settable_ctx_params),
    fn(OSSL_FUNC_RAND_SET_CTX_PARAMS, rand_set_ctx_params),
    {0, nullptr},
};

const OSSL_ALGORITHM kRands[] = {
    {"SNAPSAFE", "provider=snapsafe", kRandFunctions,
     "snapsafe: per-thread AES-256-CTR checked against the VM/container generation"},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM* provider_query(void*, int operation_id, int* no_cache) {
  *no_cache = 0;
  return operation_id == OSSL_OP_RAND ? kRands : nullptr;
}

const OSSL_PARAM kProviderGettable[] = {
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, nullptr, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, nullptr, 0),
    OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, nullptr),
    OSSL_PARAM_END,
};

const OSSL_PARAM* provider_gettable_params(void*) { return kProviderGettable; }

int provider_get_params(void*, OSSL_PARAM params[]) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
  if (p != nullptr && !OSSL_PARAM_set_utf8_ptr(p, "snapsafe")) return 0;
  p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
  if (p != nullptr && !OSSL_PARAM_set_utf8_ptr(p, "1.0")) return 0;
  p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
  if (p != nullptr && !OSSL_PARAM_set_int(p, 1)) return 0;
  return 1;
}

void provider_teardown(void*) {}

// OpenSSL 3.5's provider-level random function (core_dispatch.h of 3.5; the 3.0 headers
// this is built with lack it, and 3.0 never calls it). `which` is public or private: both
// are snapsafe's per-thread draw. 1, or 0 with `buf` zeroed (fail closed).
#ifndef OSSL_FUNC_PROVIDER_RANDOM_BYTES
#define OSSL_FUNC_PROVIDER_RANDOM_BYTES 1032
#endif
int provider_random_bytes(void*, int, void* buf, size_t n, unsigned int strength) {
  if (strength > kStrength) {
    std::memset(buf, 0, n);
    return 0;
  }
  return fill_output(static_cast<unsigned char*>(buf), n, /*prediction_resistance=*/false) == 0;
}

const OSSL_DISPATCH kProviderFunctions[] = {
    fn(OSSL_FUNC_PROVIDER_QUERY_OPERATION, provider_query),
    fn(OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, provider_gettable_params),
    fn(OSSL_FUNC_PROVIDER_GET_PARAMS, provider_get_params),
    fn(OSSL_FUNC_PROVIDER_TEARDOWN, provider_teardown),
    fn(OSSL_FUNC_PROVIDER_RANDOM_BYTES, provider_random_bytes),
    {0, nullptr},
};

}  // namespace

extern "C" __attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE*,
                                                                         const OSSL_DISPATCH*,
                                                                         const OSSL_DISPATCH** out,
                                                                         void** provctx) {
  *out = kProviderFunctions;
  *provctx = nullptr;
  return 1;
}
