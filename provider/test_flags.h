// File: provider/test_flags.h
//
// Test-only switches of the provider's guards, for negative controls
// (tests/provider_generate_test.cc). They exist only in the `//provider:provider_testing`
// build (SNAPSAFE_TESTING, set by //rng:snapsafe_testing); in the shipped module every
// flag is a compile-time `false`.
#pragma once

#ifdef SNAPSAFE_TESTING
namespace snapsafe::provider_internal {

struct ProviderTestFlags {
  bool ignore_prediction_resistance = false;  // negative control: a prediction-resistant
                                              // request is served like any other (buffer)
  bool sticky_error = false;  // negative control: one failed generate leaves the context
                              // in the error state for good
};
extern ProviderTestFlags g_provider_test_flags;

}  // namespace snapsafe::provider_internal
#define SNAPSAFE_PROVIDER_TEST_FLAG(name) \
  (::snapsafe::provider_internal::g_provider_test_flags.name)
#else
#define SNAPSAFE_PROVIDER_TEST_FLAG(name) false
#endif
