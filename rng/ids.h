// File: rng/ids.h
//
// Identifiers and nonces: the values that must never repeat across VM or container
// clones, drawn from the snapshot-safe generator.
//
// Example:
//   std::string id = snapsafe::uuid_v4_string();  // "3f2c...-...-4...-[89ab]...-..."
//   auto iv = snapsafe::nonce<12>();               // an AES-GCM nonce
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "rng/fill.h"

namespace snapsafe {

// A UUID's 16 bytes, in RFC 9562 order.
using Uuid = std::array<uint8_t, 16>;

// A random (version 4, variant 10) UUID: 122 random bits.
Uuid uuid_v4();

// The canonical 36-character lower-case form of `uuid` (8-4-4-4-12 hex digits).
std::string uuid_to_string(const Uuid& uuid);

// uuid_to_string(uuid_v4()).
std::string uuid_v4_string();

// A 128-bit random request identifier as 32 lower-case hex digits.
std::string request_id();

// N random bytes for use as a nonce (an IV, a salt, a challenge).
template <size_t N>
std::array<uint8_t, N> nonce() {
  std::array<uint8_t, N> bytes;
  fill(bytes.data(), bytes.size());
  return bytes;
}

}  // namespace snapsafe
