// Request IDs: see request_id.h.
#include "ids/request_id.h"

#include <cstddef>
#include <cstdint>

#include "rng/fill.h"

namespace snapsafe {

namespace {
constexpr char kHex[] = "0123456789abcdef";
}  // namespace

void request_id_to_chars(char* out) {
  uint8_t bytes[16];
  fill(bytes, sizeof bytes);
  for (size_t i = 0; i < sizeof bytes; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
}

std::string request_id() {
  std::string out(32, '\0');
  request_id_to_chars(out.data());
  return out;
}

}  // namespace snapsafe
