#include "rng/ids.h"

namespace snapsafe {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string* out, const uint8_t* bytes, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    out->push_back(kHex[bytes[i] >> 4]);
    out->push_back(kHex[bytes[i] & 0xf]);
  }
}

}  // namespace

Uuid uuid_v4() {
  Uuid uuid = nonce<16>();
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // version 4
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // variant 10
  return uuid;
}

std::string uuid_to_string(const Uuid& uuid) {
  std::string out;
  out.reserve(36);
  append_hex(&out, uuid.data(), 4);
  for (size_t start : {4, 6, 8, 10}) {
    out.push_back('-');
    append_hex(&out, uuid.data() + start, start == 10 ? 6 : 2);
  }
  return out;
}

std::string uuid_v4_string() { return uuid_to_string(uuid_v4()); }

std::string request_id() {
  const auto bytes = nonce<16>();
  std::string out;
  out.reserve(32);
  append_hex(&out, bytes.data(), bytes.size());
  return out;
}

}  // namespace snapsafe
