// Fuzz target: UUID text parsing, snapsafe::parse_uuid (ids/uuid.h) and the C API's
// snapsafe_uuid_parse / snapsafe_uuid_format (snapsafe.h).
//
// Design: the whole input is the text, handed over as a view of libFuzzer's own buffer
// (exactly `size` bytes on the heap, so ASan sees any read past it: "never reads past
// text"). An independent oracle in this file says which texts are canonical (36
// characters, '-' at offsets 8, 13, 18, 23, ASCII hex digits elsewhere) and what their 16
// bytes are. Properties:
//  - parse_uuid succeeds exactly on canonical texts, with the oracle's bytes, and its
//    text form is the input lower-cased (a success implies the text was canonical);
//    a failure leaves the nil UUID and a one-line message (with the offset when the
//    length was right);
//  - parse_uuid(text, v) for v in -1..9 succeeds exactly when v is 1..8 and the text
//    parses with the RFC 9562 variant and version v;
//  - snapsafe_uuid_parse agrees for every expected_version -1..9 (0: any), writes the
//    bytes on success and zeroes its 16-byte output on failure (the output buffer is
//    exactly 16 bytes: ASan sees any write past it);
//  - the first 16 input bytes as a UUID: to_string / uuid_to_chars / snapsafe_uuid_format
//    give the same canonical lower-case text, which parses back to the same UUID, and so
//    does its upper-case form (parse(format(x)) == x).
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "capi/c_api.h"
#include "ids/uuid.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using snapsafe::Uuid;

int oracle_hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The oracle: whether `text` is canonical, and its bytes if so.
bool oracle_parse(std::string_view text, Uuid* uuid) {
  *uuid = Uuid::nil();
  if (text.size() != 36) return false;
  size_t byte = 0;
  int high = -1;
  for (size_t i = 0; i < 36; ++i) {
    const bool hyphen_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (hyphen_here) {
      if (text[i] != '-') return false;
      continue;
    }
    const int v = oracle_hex(text[i]);
    if (v < 0) return false;
    if (high < 0) {
      high = v;
    } else {
      (*uuid)[byte++] = static_cast<uint8_t>(high << 4 | v);
      high = -1;
    }
  }
  return byte == 16;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool one_line(const std::string& message) {
  return !message.empty() && message.find('\n') == std::string::npos;
}

void check_text_form(const Uuid& uuid) {
  const std::string text = uuid.to_string();
  FUZZ_CHECK(text.size() == 36, "to_string gave %zu characters", text.size());
  Uuid reparsed;
  FUZZ_CHECK(oracle_parse(text, &reparsed) && reparsed == uuid && text == lower(text),
             "to_string is not the canonical lower-case text: %s", text.c_str());
  FUZZ_CHECK(snapsafe::uuid_to_string(uuid) == text, "uuid_to_string differs");
  // uuid_to_chars writes exactly 36 characters: a buffer of exactly 36 on the heap.
  auto chars = std::make_unique<char[]>(36);
  snapsafe::uuid_to_chars(uuid, chars.get());
  FUZZ_CHECK(std::string_view(chars.get(), 36) == text, "uuid_to_chars differs");
  // parse(format(x)) == x, in both cases.
  const snapsafe::UuidParseResult back = snapsafe::parse_uuid(text);
  FUZZ_CHECK(back.ok() && back.uuid == uuid, "parse(format(x)) != x for %s", text.c_str());
  const snapsafe::UuidParseResult back_upper = snapsafe::parse_uuid(upper(text));
  FUZZ_CHECK(back_upper.ok() && back_upper.uuid == uuid, "upper-case form does not parse back");
  // The C API's formatter: 36 characters and a NUL in exactly 37 bytes.
  auto c_text = std::make_unique<char[]>(SNAPSAFE_UUID_TEXT_SIZE);
  FUZZ_CHECK(snapsafe_uuid_format(uuid.data(), c_text.get(), SNAPSAFE_UUID_TEXT_SIZE) == 0,
             "snapsafe_uuid_format failed");
  FUZZ_CHECK(c_text[36] == '\0' && text == c_text.get(), "snapsafe_uuid_format differs");
  // The timestamp accessor agrees with the layout.
  const std::optional<uint64_t> ms = uuid.unix_ts_ms();
  const bool v7 = uuid.version() == 7 && uuid.variant() == snapsafe::UuidVariant::kRfc9562;
  FUZZ_CHECK(ms.has_value() == v7, "unix_ts_ms presence");
  if (ms) {
    uint64_t want = 0;
    for (int i = 0; i < 6; ++i) want = want << 8 | uuid[i];
    FUZZ_CHECK(*ms == want, "unix_ts_ms value");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Uuid expected;
  const bool canonical = oracle_parse(text, &expected);

  const snapsafe::UuidParseResult parsed = snapsafe::parse_uuid(text);
  FUZZ_CHECK(parsed.ok() == canonical, "parse_uuid ok=%d, oracle canonical=%d (error: %s)",
             parsed.ok(), canonical, parsed.error.c_str());
  if (canonical) {
    FUZZ_CHECK(parsed.uuid == expected, "parse_uuid bytes differ from the oracle's");
    FUZZ_CHECK(parsed.uuid.to_string() == lower(text), "a success whose text was not canonical");
  } else {
    FUZZ_CHECK(parsed.uuid.is_nil(), "a failed parse left bytes");
    FUZZ_CHECK(one_line(parsed.error), "message not one line: %s", parsed.error.c_str());
    if (size == 36) {
      FUZZ_CHECK(parsed.error.find("offset ") != std::string::npos,
                 "message without the offset: %s", parsed.error.c_str());
    }
  }

  for (int version = -1; version <= 9; ++version) {
    const bool want = version >= 1 && version <= 8 && canonical &&
                      expected.variant() == snapsafe::UuidVariant::kRfc9562 &&
                      expected.version() == version;
    const snapsafe::UuidParseResult typed = snapsafe::parse_uuid(text, version);
    FUZZ_CHECK(typed.ok() == want, "parse_uuid(text, %d) ok=%d, want %d (%s)", version, typed.ok(),
               want, typed.error.c_str());
    if (want) {
      FUZZ_CHECK(typed.uuid == expected, "parse_uuid(text, %d) bytes", version);
    } else {
      FUZZ_CHECK(typed.uuid.is_nil() && one_line(typed.error), "parse_uuid(text, %d) failure",
                 version);
    }

    // The C API, with an output of exactly 16 bytes that starts non-zero.
    auto out = std::make_unique<uint8_t[]>(SNAPSAFE_UUID_SIZE);
    std::memset(out.get(), 0xa5, SNAPSAFE_UUID_SIZE);
    const int rc = snapsafe_uuid_parse(text.data(), size, version, out.get(), SNAPSAFE_UUID_SIZE);
    const bool c_want = version == 0 ? canonical : want;
    FUZZ_CHECK(rc == (c_want ? 0 : EINVAL), "snapsafe_uuid_parse(v=%d) = %d, want %s", version, rc,
               c_want ? "0" : "EINVAL");
    const Uuid& c_expected = c_want ? expected : Uuid::nil();
    FUZZ_CHECK(std::memcmp(out.get(), c_expected.data(), 16) == 0,
               "snapsafe_uuid_parse(v=%d) output (rc %d): not the bytes / not zeroed", version, rc);
  }

  if (canonical) check_text_form(expected);
  if (size >= 16) {
    Uuid raw;
    std::memcpy(raw.data(), data, 16);
    check_text_form(raw);
  }
  return 0;
}
