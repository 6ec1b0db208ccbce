// File: ids/uuid.h
//
// UUIDs (RFC 9562) whose random bits come from the snapshot-safe generator: version 4
// (122 random bits) and version 7 (a Unix millisecond timestamp, a per-thread monotonic
// counter and fresh random bits), their canonical text form, and a strict parser.
//
// Example:
//   snapsafe::Uuid id = snapsafe::uuid_v7();       // sorts by creation time
//   std::string text = id.to_string();             // "0190f4e2-7c1a-7a3b-9d2e-..."
//   snapsafe::UuidParseResult parsed = snapsafe::parse_uuid(text, 7);
//   if (!parsed) std::cerr << parsed.error;         // says what is wrong, and where
//
// ## Version 7, as this library makes it
//
//   bits    0..47   unix_ts_ms: milliseconds since 1970-01-01 UTC (CLOCK_REALTIME)
//          48..51   version (0111)
//          52..63   counter, high 12 bits (rand_a)
//          64..65   variant (10)
//          66..75   counter, low 10 bits (top of rand_b)
//          76..127  52 random bits, fresh for every UUID
//
// Monotonicity (RFC 9562 section 6.2, Method 1: a fixed-length dedicated counter): each
// thread keeps the timestamp and the 22-bit counter of its last UUID. On a new
// millisecond the counter restarts at a random value below 2^21 (its top bit zero, so at
// least 2^21 UUIDs fit in one millisecond); within the same millisecond it counts up by
// one. UUIDs from one thread therefore compare strictly increasing (as 16 bytes, and as
// text). UUIDs of different threads are unique but not ordered within a millisecond.
//
// No duplicate, ever, from one thread (section 6.1): if the clock goes backwards, the
// last timestamp is kept and the counter keeps counting; if the counter overflows, the
// timestamp moves one millisecond ahead of the clock and the counter restarts at random
// (the clock catches up later; a clock stepped far back leaves the timestamps pinned
// until it does, by design).
//
// Snapshots and forks: two clones restored from one snapshot hold the same per-thread
// state and, on a VM restored with its clock frozen, read the same time. So the state
// remembers the generation it was made under (genid/generation.h: one load per UUID) and
// the process it was made in (a fork token: one load, changed in every fork child by a
// MADV_WIPEONFORK page and by a pthread_atfork handler). When either differs, the state
// is re-randomised as on a new tick, one millisecond past the last timestamp (so the
// thread's UUIDs stay increasing): the clones continue from independent random counters
// and with independent random tails, and never from a shared counter. Limits:
//  - in kernel-backed mode (no generation source) and after a source was retired, a VM
//    clone cannot be seen; the clones' counters then repeat and only the 52 fresh random
//    bits per UUID (drawn from the kernel after the restore) separate them;
//  - a UUID still being made while the snapshot is taken is in both clones (the
//    generation is re-read after the random bits are drawn, which narrows the window to
//    the return itself, as for every draw: docs/DESIGN.md);
//  - not async-signal-safe (the per-thread state is not guarded against re-entry).
//
// Cost: one clock_gettime (vDSO), two loads, one 8-byte draw; a new millisecond adds a
// 4-byte draw.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace snapsafe {

// The variant field (byte 8, top bits), RFC 9562 section 4.1.
enum class UuidVariant {
  kNcs,        // 0xxx: reserved, NCS backward compatibility (includes the nil UUID)
  kRfc9562,    // 10xx: the variant of every UUID this library makes
  kMicrosoft,  // 110x: reserved, Microsoft backward compatibility
  kFuture,     // 111x: reserved for future definition (includes the max UUID)
};

// A UUID's 16 bytes, in RFC 9562 (network, big-endian) order. An aggregate: brace
// initialisation with 16 values works, and so do indexing and iteration. Comparison is
// byte-wise (unsigned, lexicographic), which for version 7 is creation order.
struct Uuid {
  std::array<uint8_t, 16> bytes;

  // The nil UUID (all zero) and the max UUID (all 0xff), RFC 9562 sections 5.9, 5.10.
  static constexpr Uuid nil() { return Uuid{}; }
  static constexpr Uuid max() {
    Uuid uuid{};
    for (uint8_t& byte : uuid.bytes) byte = 0xff;
    return uuid;
  }

  // The version field: the high 4 bits of byte 6 (meaningful for the RFC 9562 variant).
  constexpr int version() const { return bytes[6] >> 4; }
  constexpr UuidVariant variant() const {
    if ((bytes[8] & 0x80) == 0) return UuidVariant::kNcs;
    if ((bytes[8] & 0x40) == 0) return UuidVariant::kRfc9562;
    if ((bytes[8] & 0x20) == 0) return UuidVariant::kMicrosoft;
    return UuidVariant::kFuture;
  }
  // For a version 7 UUID of the RFC 9562 variant, its timestamp in milliseconds since
  // the Unix epoch; nullopt for any other UUID.
  std::optional<uint64_t> unix_ts_ms() const;

  // The canonical form: 36 characters, lower-case hex, hyphens at offsets 8, 13, 18, 23.
  std::string to_string() const;

  constexpr bool is_nil() const { return *this == nil(); }
  constexpr bool is_max() const { return *this == max(); }

  constexpr uint8_t& operator[](size_t i) { return bytes[i]; }
  constexpr const uint8_t& operator[](size_t i) const { return bytes[i]; }
  constexpr uint8_t* data() { return bytes.data(); }
  constexpr const uint8_t* data() const { return bytes.data(); }
  static constexpr size_t size() { return 16; }
  constexpr auto begin() { return bytes.begin(); }
  constexpr auto end() { return bytes.end(); }
  constexpr auto begin() const { return bytes.begin(); }
  constexpr auto end() const { return bytes.end(); }

  friend constexpr bool operator==(const Uuid&, const Uuid&) = default;
  friend constexpr std::strong_ordering operator<=>(const Uuid&, const Uuid&) = default;
};
static_assert(sizeof(Uuid) == 16);

// A random (version 4, variant 10) UUID: 122 random bits.
Uuid uuid_v4();

// A time-ordered (version 7, variant 10) UUID: see the top of this file. Throws
// snapsafe::entropy_error if the kernel refuses entropy (nothing of the state changes).
Uuid uuid_v7();

// The canonical text of `uuid` (== uuid.to_string()).
std::string uuid_to_string(const Uuid& uuid);

// Writes the canonical text of `uuid` into out[0..35]: exactly 36 characters, no NUL.
void uuid_to_chars(const Uuid& uuid, char* out);

// uuid_to_string(uuid_v4()), uuid_to_string(uuid_v7()).
std::string uuid_v4_string();
std::string uuid_v7_string();

// The outcome of parse_uuid: `uuid` when `error` is empty, else the nil UUID and a
// one-line message saying what is wrong and at which offset.
struct UuidParseResult {
  Uuid uuid{};
  std::string error;

  bool ok() const { return error.empty(); }
  explicit operator bool() const { return ok(); }
};

// Parses the canonical 36-character form (hex digits in either case, hyphens at offsets
// 8, 13, 18 and 23; nothing else: no braces, no "urn:uuid:", no spaces). Never throws
// (except std::bad_alloc for the message), never reads past `text`.
UuidParseResult parse_uuid(std::string_view text);

// As above, and also requires the RFC 9562 variant and version `expected_version`
// (1..8; any other value is itself reported as an error).
UuidParseResult parse_uuid(std::string_view text, int expected_version);

}  // namespace snapsafe

// Hashes the 16 bytes (both halves mixed: version 7 UUIDs share their leading bytes).
template <>
struct std::hash<snapsafe::Uuid> {
  size_t operator()(const snapsafe::Uuid& uuid) const noexcept;
};
