// UUIDs, request IDs, nonces and the C API's versions of them.
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "capi/c_api.h"
#include "ids/ids.h"

namespace snapsafe {
namespace {

TEST(Ids, UuidV4HasVersionAndVariantBits) {
  for (int i = 0; i < 1000; ++i) {
    const Uuid uuid = uuid_v4();
    ASSERT_EQ(uuid[6] >> 4, 4);
    ASSERT_EQ(uuid[8] >> 6, 2);
  }
}

TEST(Ids, UuidStringIsCanonical) {
  const std::regex canonical(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(std::regex_match(uuid_v4_string(), canonical));
  const Uuid known = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x42, 0xd3,
                      0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
  EXPECT_EQ(uuid_to_string(known), "123e4567-e89b-42d3-a456-426614174000");
}

TEST(Ids, TenThousandUuidsAreDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(uuid_v4_string());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Ids, RequestIdIs32HexDigits) {
  const std::regex hex32("^[0-9a-f]{32}$");
  EXPECT_TRUE(std::regex_match(request_id(), hex32));
  EXPECT_NE(request_id(), request_id());
}

TEST(Ids, NonceHasTheRequestedSize) {
  EXPECT_EQ(nonce<12>().size(), 12u);
  EXPECT_EQ(nonce<24>().size(), 24u);
  EXPECT_NE(nonce<16>(), nonce<16>());
}

TEST(Ids, CApi) {
  char uuid[37];
  ASSERT_EQ(snapsafe_uuid_v4(uuid, sizeof uuid), 0);
  EXPECT_TRUE(std::regex_match(
      std::string(uuid),
      std::regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")));
  uint64_t a = 0, b = 0;
  ASSERT_EQ(snapsafe_u64(&a), 0);
  ASSERT_EQ(snapsafe_u64(&b), 0);
  EXPECT_NE(a, b);
  char name[32];
  ASSERT_EQ(snapsafe_source_name(name, sizeof name), 0);
  EXPECT_GT(std::string(name).size(), 0u);
  char tiny[3];
  ASSERT_EQ(snapsafe_source_name(tiny, sizeof tiny), 0);
  EXPECT_EQ(std::string(tiny).size(), 2u);  // truncated, still terminated
}

}  // namespace
}  // namespace snapsafe
