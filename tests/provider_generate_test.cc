// The OpenSSL provider's generate call (provider/snapsafe_provider.cc),
// through OpenSSL itself: the provider is registered as a built-in in a private library
// context whose three DRBGs are SNAPSAFE (RAND_set_DRBG_type, as `random = SNAPSAFE` in
// the shipped config does), linked with the library's test hooks.
//
//  1. Prediction resistance: EVP_RAND_generate(..., prediction_resistance = 1) on the
//     private DRBG returns bytes that were not in the thread's buffer before the call (a
//     memory image of the process predicts the buffer; the test reads it). Control
//     (test flag ignore_prediction_resistance): the request is served from the buffer,
//     exactly the bytes the test predicted, 100 of 100 (measured before the fix).
//  2. A transient failure (test hook fail_keystream: OpenSSL fails a keystream step)
//     fails that RAND_bytes with no output, and once the cause is gone the next call
//     succeeds, and every later one. Control (test flag sticky_error): the context stays
//     in the error state, 0 of 1000 later calls succeed (measured before the fix:
//     OpenSSL never re-instantiates a provider's RAND).
//  3. An entropy failure still fails closed: with getrandom refused (seccomp, in a forked
//     child) every call, prediction-resistant or not, fails with its output zeroed, the
//     retries of (2) included.
//  4. OpenSSL 3.5's provider-level random function (random_provider) serves public and
//     private requests and fails closed likewise.
#include <openssl/core.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <gtest/gtest.h>

#include "provider/test_flags.h"
#include "rng/fill.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

constexpr int kTries = 100;
constexpr int kLaterCalls = 1000;

// A library context with the default provider and snapsafe's (built in), whose primary,
// public and private DRBGs are SNAPSAFE.
class ProviderContext {
 public:
  ProviderContext() {
    libctx_ = OSSL_LIB_CTX_new();
    if (libctx_ == nullptr) return;
    if (OSSL_PROVIDER_add_builtin(libctx_, "snapsafe", OSSL_provider_init) != 1) return;
    default_ = OSSL_PROVIDER_load(libctx_, "default");
    snapsafe_ = OSSL_PROVIDER_load(libctx_, "snapsafe");
    ok_ = default_ != nullptr && snapsafe_ != nullptr &&
          RAND_set_DRBG_type(libctx_, "SNAPSAFE", nullptr, nullptr, nullptr) == 1;
  }
  ~ProviderContext() {
    if (snapsafe_ != nullptr) OSSL_PROVIDER_unload(snapsafe_);
    if (default_ != nullptr) OSSL_PROVIDER_unload(default_);
    OSSL_LIB_CTX_free(libctx_);
  }
  ProviderContext(const ProviderContext&) = delete;
  ProviderContext& operator=(const ProviderContext&) = delete;

  bool ok() const { return ok_; }
  OSSL_LIB_CTX* libctx() const { return libctx_; }
  // The DRBG behind RAND_priv_bytes, and its algorithm's name.
  EVP_RAND_CTX* priv() const { return RAND_get0_private(libctx_); }
  std::string priv_name() const {
    EVP_RAND_CTX* rand = priv();
    return rand == nullptr ? "" : EVP_RAND_get0_name(EVP_RAND_CTX_get0_rand(rand));
  }
  // One RAND_bytes (the public DRBG) of `out`; true on success.
  bool rand_bytes(Bytes& out) const {
    return RAND_bytes_ex(libctx_, out.data(), out.size(), 0) == 1;
  }

 private:
  OSSL_LIB_CTX* libctx_ = nullptr;
  OSSL_PROVIDER* default_ = nullptr;
  OSSL_PROVIDER* snapsafe_ = nullptr;
  bool ok_ = false;
};

class ProviderGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::use_fresh_counter_file();  // buffered mode: a thread state with a buffer
    ASSERT_TRUE(context_.ok());
    ASSERT_EQ(context_.priv_name(), "SNAPSAFE");
  }
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    provider_internal::g_provider_test_flags = {};
  }

  // The next `size` bytes of this thread's buffer, refilled first when it holds fewer:
  // what a buffered draw of `size` bytes returns, read from process memory beforehand.
  static Bytes predicted(size_t size) {
    uint8_t one;
    if (rng_internal::t_state == nullptr) fill(&one, 1);  // the thread's first draw
    if (rng_internal::t_state->remaining < size) {
      Bytes rest(rng_internal::t_state->remaining);
      fill(rest.data(), rest.size());  // the buffer is empty: the next draw refills
      fill(&one, 1);
    }
    const rng_internal::ThreadState* st = rng_internal::t_state;
    const uint8_t* next = st->buffer + (rng_internal::kBufferBytes - st->remaining);
    return Bytes(next, next + size);
  }

  // Of kTries 16-byte EVP_RAND_generate calls on the private DRBG, how many returned
  // exactly the bytes the buffer held for them. Every call must succeed.
  size_t predicted_generates(int prediction_resistance) {
    size_t hits = 0;
    testing::on_new_thread([&] {
      for (int i = 0; i < kTries; ++i) {
        const Bytes expected = predicted(16);
        Bytes out(16, 0);
        ASSERT_EQ(EVP_RAND_generate(context_.priv(), out.data(), out.size(), 0,
                                    prediction_resistance, nullptr, 0),
                  1);
        ASSERT_NE(out, Bytes(16, 0));
        if (out == expected) ++hits;
      }
    });
    return hits;
  }

  // Makes this thread's next draw refill (and so run a keystream step).
  static void empty_buffer() {
    fill(Bytes(16).data(), 16);
    while (rng_internal::t_state->remaining > 0) {
      const size_t take =
          rng_internal::t_state->remaining < 16 ? rng_internal::t_state->remaining : 16;
      fill(Bytes(16).data(), take);
    }
  }

  // One failing RAND_bytes (fail_keystream), then kLaterCalls with the cause gone. Returns
  // how many of those succeeded; EXPECTs the failure closed. `state_after`: the public
  // DRBG's state then (per thread in OpenSSL 3: this thread's).
  int successes_after_one_failure(int* state_after) {
    int successes = 0;
    testing::on_new_thread([&] {
      Bytes out(16);
      ASSERT_TRUE(context_.rand_bytes(out));
      empty_buffer();
      rng_internal::g_test_hooks.fail_keystream = true;
      for (int i = 0; i < 3; ++i) {  // while the cause lasts, every call fails closed
        Bytes failed(16, 0xAA);
        EXPECT_FALSE(context_.rand_bytes(failed)) << "an OpenSSL failure fails RAND_bytes";
        EXPECT_TRUE(failed == Bytes(16, 0) || failed == Bytes(16, 0xAA))
            << "no output: zeroed, or untouched";
        EXPECT_EQ(EVP_RAND_get_state(RAND_get0_public(context_.libctx())), EVP_RAND_STATE_ERROR);
      }
      rng_internal::g_test_hooks.fail_keystream = false;  // the cause is gone
      std::set<Bytes> seen;
      for (int i = 0; i < kLaterCalls; ++i) {
        Bytes later(16, 0);
        if (context_.rand_bytes(later)) {
          ++successes;
          seen.insert(later);
        }
      }
      EXPECT_EQ(seen.size(), static_cast<size_t>(successes)) << "no value twice";
      *state_after = EVP_RAND_get_state(RAND_get0_public(context_.libctx()));
    });
    return successes;
  }

  ProviderContext context_;
};

TEST_F(ProviderGenerate, TheTestPredictsBufferedOutput) {
  // The prediction is right: a request without prediction resistance is the buffer's.
  EXPECT_EQ(predicted_generates(/*prediction_resistance=*/0), static_cast<size_t>(kTries));
}

TEST_F(ProviderGenerate, PredictionResistantRequestsAreNotServedFromTheBuffer) {
  EXPECT_EQ(predicted_generates(/*prediction_resistance=*/1), 0u)
      << "prediction-resistant output was in process memory before the call";
}

TEST_F(ProviderGenerate, PredictionResistantRequestsLeaveTheBufferAlone) {
  testing::on_new_thread([&] {
    (void)predicted(16);
    const uint32_t before = rng_internal::t_state->remaining;
    Bytes out(4096, 0);  // above the buffered-draw size too
    ASSERT_EQ(EVP_RAND_generate(context_.priv(), out.data(), out.size(), 0, 1, nullptr, 0), 1);
    EXPECT_EQ(rng_internal::t_state->remaining, before) << "served by the kernel path";
  });
}

TEST_F(ProviderGenerate, NegativeControlIgnoringPredictionResistanceServesTheBuffer) {
  provider_internal::g_provider_test_flags.ignore_prediction_resistance = true;
  EXPECT_EQ(predicted_generates(/*prediction_resistance=*/1), static_cast<size_t>(kTries))
      << "without the guard every prediction-resistant request is the buffer's next bytes";
}

TEST_F(ProviderGenerate, ATransientFailureIsRecoveredFrom) {
  int state = 0;
  EXPECT_EQ(successes_after_one_failure(&state), kLaterCalls);
  EXPECT_EQ(state, EVP_RAND_STATE_READY);
}

TEST_F(ProviderGenerate, NegativeControlAStickyErrorStateFailsEveryLaterCall) {
  provider_internal::g_provider_test_flags.sticky_error = true;
  int state = 0;
  EXPECT_EQ(successes_after_one_failure(&state), 0)
      << "OpenSSL does not re-instantiate the provider's RAND: the error state is for good";
}

// In a forked child with getrandom refused, on a new thread (its state must seed from
// the kernel): kTries calls of each kind. Reports per call 1 = failed with the output
// zeroed, 0 = anything else.
TEST_F(ProviderGenerate, AnEntropyFailureStillFailsClosed) {
  const Bytes report = testing::run_in_child([&] {
    if (!testing::block_getrandom(EPERM)) _exit(6);
    Bytes results;
    testing::on_new_thread([&] {
      for (int i = 0; i < kTries; ++i) {
        for (int prediction_resistance : {0, 1}) {
          Bytes out(32, 0xAA);
          const int ok = EVP_RAND_generate(context_.priv(), out.data(), out.size(), 0,
                                           prediction_resistance, nullptr, 0);
          results.push_back(ok == 0 && out == Bytes(32, 0));
        }
        Bytes out(32, 0xAA);
        results.push_back(!context_.rand_bytes(out) && out == Bytes(32, 0));
      }
    });
    return results;
  });
  ASSERT_EQ(report.size(), static_cast<size_t>(3 * kTries));
  size_t closed = 0;
  for (uint8_t r : report) closed += r;
  EXPECT_EQ(closed, report.size()) << "every call, retries included, fails with no output";
}

// OpenSSL 3.5's provider-level random function (OSSL_FUNC_PROVIDER_RANDOM_BYTES, 1032),
// what `random_provider = snapsafe` calls for every RAND_bytes: taken from the provider's
// own dispatch table (the 3.0 this test links never calls it; tests/criu/run's OpenSSL 3.5
// part runs it for real).
using RandomBytes = int (*)(void*, int, void*, size_t, unsigned int);
constexpr int kProviderRandomBytes = 1032;

RandomBytes provider_random_bytes() {
  const OSSL_DISPATCH* out = nullptr;
  void* provctx = nullptr;
  if (OSSL_provider_init(nullptr, nullptr, &out, &provctx) != 1) return nullptr;
  for (; out != nullptr && out->function_id != 0; ++out) {
    if (out->function_id == kProviderRandomBytes) {
      return reinterpret_cast<RandomBytes>(out->function);
    }
  }
  return nullptr;
}

TEST(ProviderRandomBytes, ServesPublicAndPrivateRequests) {
  testing::use_fresh_counter_file();
  const RandomBytes random_bytes = provider_random_bytes();
  ASSERT_NE(random_bytes, nullptr) << "the dispatch table offers OSSL_FUNC_PROVIDER_RANDOM_BYTES";
  std::set<Bytes> seen;
  for (int which : {0, 1}) {  // OSSL_PROV_RANDOM_PUBLIC, OSSL_PROV_RANDOM_PRIVATE
    for (size_t size : {1u, 16u, 4096u, 100000u}) {
      Bytes out(size, 0);
      ASSERT_EQ(random_bytes(nullptr, which, out.data(), out.size(), 256), 1);
      EXPECT_TRUE(seen.insert(out).second);
      if (size >= 16) EXPECT_NE(out, Bytes(size, 0));
    }
  }
  Bytes out(32, 0xAA);
  EXPECT_EQ(random_bytes(nullptr, 0, out.data(), out.size(), 257), 0) << "no strength over 256";
  EXPECT_EQ(out, Bytes(32, 0));
}

TEST(ProviderRandomBytes, AnEntropyFailureFailsClosed) {
  const RandomBytes random_bytes = provider_random_bytes();
  ASSERT_NE(random_bytes, nullptr);
  const Bytes report = testing::run_in_child([&] {
    if (!testing::block_getrandom(EPERM)) _exit(6);
    Bytes results;
    testing::on_new_thread([&] {
      for (int i = 0; i < kTries; ++i) {
        Bytes out(32, 0xAA);
        const int ok = random_bytes(nullptr, i % 2, out.data(), out.size(), 0);
        results.push_back(ok == 0 && out == Bytes(32, 0));
      }
    });
    return results;
  });
  ASSERT_EQ(report.size(), static_cast<size_t>(kTries));
  size_t closed = 0;
  for (uint8_t r : report) closed += r;
  EXPECT_EQ(closed, report.size()) << "every call fails with no output";
}

}  // namespace
}  // namespace snapsafe
