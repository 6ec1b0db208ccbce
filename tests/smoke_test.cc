#include <gtest/gtest.h>
#include <openssl/evp.h>
#include "absl/random/random.h"
TEST(Smoke, Links) { absl::BitGen g; EXPECT_LE(absl::Uniform(g, 0, 10), 10); EXPECT_NE(EVP_aes_256_ctr(), nullptr); }
