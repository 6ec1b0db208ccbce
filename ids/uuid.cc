// UUIDs version 4 and 7, text and parsing: see uuid.h for the layout and the design.
#include "ids/uuid.h"

#include <time.h>

#include <cstring>

#include "genid/select.h"
#include "ids/internal/epoch.h"
#include "rng/fill.h"

namespace snapsafe {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Where byte i's two hex digits go in the 36-character text.
constexpr size_t kTextOffset[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

// Every byte's two lower-case hex digits.
constexpr auto kHexPairs = [] {
  std::array<std::array<char, 2>, 256> pairs{};
  for (size_t i = 0; i < 256; ++i) pairs[i] = {kHex[i >> 4], kHex[i & 0xf]};
  return pairs;
}();

// Every character's hex value, or -1.
constexpr auto kHexValue = [] {
  std::array<int8_t, 256> values{};
  for (int c = 0; c < 256; ++c) {
    values[c] = c >= '0' && c <= '9'   ? static_cast<int8_t>(c - '0')
                : c >= 'a' && c <= 'f' ? static_cast<int8_t>(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10)
                                       : int8_t{-1};
  }
  return values;
}();

constexpr uint64_t kTimestampMask = (uint64_t{1} << 48) - 1;
constexpr uint32_t kCounterBits = 22;
constexpr uint32_t kCounterMax = (uint32_t{1} << kCounterBits) - 1;
constexpr uint32_t kCounterSeedMask = (uint32_t{1} << (kCounterBits - 1)) - 1;  // top bit 0
constexpr uint64_t kTailMask = (uint64_t{1} << 52) - 1;

// The v7 state of one thread: the timestamp and counter of its last UUID, and the epoch
// (generation, fork token) the counter was drawn in. Trivial, so no TLS guard and
// nothing to destroy at thread exit.
struct V7State {
  uint64_t last_ms;
  uint32_t counter;
  uint32_t seeded;
  ids_internal::Epoch epoch;
};
constinit thread_local V7State t_v7{};

uint64_t clock_unix_ms() {
#ifdef SNAPSAFE_TESTING
  if (ids_testing::g_hooks.unix_ms != nullptr) return ids_testing::g_hooks.unix_ms();
#endif
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec < 0) return 0;  // a clock before 1970: the earliest timestamp
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint32_t random_counter_start() { return random_u32() & kCounterSeedMask; }

void store_be64(uint8_t* out, uint64_t value) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

int hex_value(char c) { return kHexValue[static_cast<unsigned char>(c)]; }

bool is_hyphen_offset(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

// `c` as the error message shows it: 'x', or \xNN when not printable.
std::string shown(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
  return std::string("\\x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

UuidParseResult parse_error(std::string message) {
  UuidParseResult result;
  result.error = std::move(message);
  return result;
}

}  // namespace

std::optional<uint64_t> Uuid::unix_ts_ms() const {
  if (version() != 7 || variant() != UuidVariant::kRfc9562) return std::nullopt;
  uint64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = ms << 8 | bytes[i];
  return ms;
}

std::string Uuid::to_string() const { return uuid_to_string(*this); }

Uuid uuid_v4() {
  Uuid uuid;
  fill(uuid.data(), uuid.size());
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // version 4
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // variant 10
  return uuid;
}

Uuid uuid_v7() {
  V7State& state = t_v7;
  if (__builtin_expect(!state.seeded, 0)) genid::init();  // installs the generation reader
  uint64_t ms = 0, tail = 0;
  uint32_t counter = 0;
  // Normally one pass. Another only if the generation or the process changed while the
  // random bits were drawn: the clones then re-randomise from the new epoch.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const ids_internal::Epoch epoch = ids_internal::current_epoch();
    const uint64_t now = clock_unix_ms() & kTimestampMask;
    tail = random_u64() & kTailMask;  // may throw: nothing of the state changed yet
    if (!state.seeded) {
      ms = now;
      counter = random_counter_start();
    } else if (!ids_internal::same_epoch(state.epoch, epoch)) {
      // A clone or a fork child: a new tick past the last one, as if the counter had
      // overflowed, so this thread's UUIDs stay increasing and the copies diverge.
      ms = now > state.last_ms ? now : (state.last_ms + 1) & kTimestampMask;
      counter = random_counter_start();
    } else if (now > state.last_ms) {
      ms = now;  // a new millisecond
      counter = random_counter_start();
    } else if (state.counter < kCounterMax) {
      ms = state.last_ms;  // the same millisecond, or the clock went backwards
      counter = state.counter + 1;
    } else {
      ms = (state.last_ms + 1) & kTimestampMask;  // counter overflow: borrow the next tick
      counter = random_counter_start();
    }
    state.last_ms = ms;
    state.counter = counter;
    // An unreadable generation is no evidence: keep the last one known, so a change that
    // happens while it is unreadable is still seen once it reads again.
    if (epoch.generation != genid::kGenerationUnknown || !state.seeded) {
      state.epoch.generation = epoch.generation;
    }
    state.epoch.fork_token = epoch.fork_token;
    state.seeded = 1;
    if (ids_internal::same_epoch(epoch, ids_internal::current_epoch())) break;
  }
  Uuid uuid;
  // unix_ts_ms | ver | counter high 12 bits
  store_be64(uuid.data(), ms << 16 | uint64_t{0x7} << 12 | counter >> 10);
  // var | counter low 10 bits | 52 random bits
  store_be64(uuid.data() + 8,
             uint64_t{0x2} << 62 | static_cast<uint64_t>(counter & 0x3ff) << 52 | tail);
  return uuid;
}

void uuid_to_chars(const Uuid& uuid, char* out) {
  for (size_t i = 0; i < 16; ++i) std::memcpy(out + kTextOffset[i], kHexPairs[uuid[i]].data(), 2);
  out[8] = out[13] = out[18] = out[23] = '-';
}

std::string uuid_to_string(const Uuid& uuid) {
  std::string out(36, '\0');
  uuid_to_chars(uuid, out.data());
  return out;
}

std::string uuid_v4_string() { return uuid_to_string(uuid_v4()); }
std::string uuid_v7_string() { return uuid_to_string(uuid_v7()); }

UuidParseResult parse_uuid(std::string_view text) {
  if (text.size() != 36) {
    return parse_error("a UUID is 36 characters (8-4-4-4-12 hex digits), got " +
                       std::to_string(text.size()));
  }
  UuidParseResult result;
  // The fast path: four hyphens and 32 hex digits (any invalid digit makes `bad` negative).
  if (text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-') {
    int bad = 0;
    for (size_t i = 0; i < 16; ++i) {
      const int high = hex_value(text[kTextOffset[i]]);
      const int low = hex_value(text[kTextOffset[i] + 1]);
      bad |= high | low;
      result.uuid[i] = static_cast<uint8_t>((high & 0xf) << 4 | (low & 0xf));
    }
    if (bad >= 0) return result;
  }
  // Something is wrong: find the first offending character, for the message.
  size_t byte = 0;
  bool high_nibble = true;
  for (size_t i = 0; i < 36; ++i) {
    const char c = text[i];
    if (is_hyphen_offset(i)) {
      if (c != '-') {
        return parse_error("expected '-' at offset " + std::to_string(i) + ", got " + shown(c));
      }
      continue;
    }
    const int value = hex_value(c);
    if (value < 0) {
      if (c == '-') {
        return parse_error("misplaced '-' at offset " + std::to_string(i) +
                           " (hyphens go at offsets 8, 13, 18 and 23)");
      }
      return parse_error("not a hex digit at offset " + std::to_string(i) + ": " + shown(c));
    }
    if (high_nibble) {
      result.uuid[byte] = static_cast<uint8_t>(value << 4);
    } else {
      result.uuid[byte++] |= static_cast<uint8_t>(value);
    }
    high_nibble = !high_nibble;
  }
  return result;
}

UuidParseResult parse_uuid(std::string_view text, int expected_version) {
  if (expected_version < 1 || expected_version > 8) {
    return parse_error("expected version must be 1..8, got " + std::to_string(expected_version));
  }
  UuidParseResult result = parse_uuid(text);
  if (!result) return result;
  if (result.uuid.variant() != UuidVariant::kRfc9562) {
    return parse_error("not the RFC 9562 variant: offset 19 must be 8, 9, a or b, got " +
                       shown(text[19]));
  }
  if (result.uuid.version() != expected_version) {
    return parse_error("expected a version " + std::to_string(expected_version) +
                       " UUID, got version " + std::to_string(result.uuid.version()) +
                       " (offset 14)");
  }
  return result;
}

#ifdef SNAPSAFE_TESTING
namespace ids_testing {
uint64_t v7_last_ms_for_testing() { return t_v7.last_ms; }
uint32_t v7_counter_for_testing() { return t_v7.counter; }
}  // namespace ids_testing
#endif

}  // namespace snapsafe

size_t std::hash<snapsafe::Uuid>::operator()(const snapsafe::Uuid& uuid) const noexcept {
  uint64_t high = 0, low = 0;
  for (int i = 0; i < 8; ++i) high = high << 8 | uuid[i];
  for (int i = 8; i < 16; ++i) low = low << 8 | uuid[i];
  // A bijective 64-bit finaliser (splitmix64) on each half, one half folded into the
  // other: no pair of UUIDs collides except by chance.
  const auto mix = [](uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  return static_cast<size_t>(mix(high ^ mix(low)));
}
