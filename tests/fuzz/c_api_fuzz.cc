// Fuzz target: the C API's arguments (snapsafe.h): pointers, sizes, bounds, expected
// versions and status buffer sizes, driven by the input.
//
// Design: the input (FuzzedDataProvider) is a sequence of up to 32 calls. Each picks a
// function, NULL or a buffer, and a size: near the interesting edges (0, 15..17, 32..37,
// the status report's own size - 1, + 0, + 1, chunk boundaries of the draw) or any size up
// to 128 KiB for snapsafe_fill. Every buffer is a heap block of exactly the size passed,
// filled with 0xa5 first, so ASan sees a write past out_size and the checks below see what
// was written. The generation source is a counter file the target creates (set through
// SNAPSAFE_SOURCE / SNAPSAFE_COUNTER_FILE before the first draw), so draws are buffered and
// snapshot-checked as in production, and one of the calls bumps it (a "restore": the next
// draws reseed). Properties, the contract of capi/c_api.h:
//  - the return value: 0, or EINVAL for exactly the NULL / too small / out-of-range
//    arguments it lists, ERANGE for a status buffer too small (the size needed reported);
//  - on failure the output (the 37, 33 or 16 bytes the function defines; the whole buffer
//    for the status report) is zeroed as far as out_size reaches; nothing past those bytes
//    is ever written, on success or failure;
//  - the values: uniform stays below its bound, UUID texts are canonical lower-case of the
//    right version and variant and NUL-terminated, request IDs are 32 lower-case hex
//    digits, snapsafe_uuid_parse agrees with parse_uuid, the status fits exactly when
//    out_size >= needed, the source name is NUL-terminated within out_size;
//  - no call aborts, throws or reads an argument it was not given.
#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "ids/uuid.h"
#include "snapsafe.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::string g_counter_file;

// A heap block of exactly `size` bytes, 0xa5 throughout (size 0: a block ASan lets no
// access into), or NULL.
struct Buffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  Buffer(bool null, size_t bytes) : size(bytes) {
    if (null) return;
    data = static_cast<uint8_t*>(std::malloc(bytes));
    FUZZ_CHECK(data != nullptr || bytes == 0, "malloc");
    if (bytes > 0) std::memset(data, 0xa5, bytes);
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  char* text() const { return reinterpret_cast<char*>(data); }
  // Whether bytes [from, to) within the block all hold `value` (true for NULL).
  bool all(uint8_t value, size_t from, size_t to) const {
    if (data == nullptr) return true;
    for (size_t i = from; i < to && i < size; ++i) {
      if (data[i] != value) return false;
    }
    return true;
  }
};

size_t pick_small_size(FuzzedDataProvider& provider) {
  static constexpr size_t kSizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 34, 35, 36, 37, 38, 64};
  if (provider.ConsumeBool()) return kSizes[provider.ConsumeIntegralInRange<size_t>(0, 13)];
  return provider.ConsumeIntegralInRange<size_t>(0, 80);
}

size_t pick_fill_size(FuzzedDataProvider& provider) {
  static constexpr size_t kSizes[] = {0,   1,   7,   8,    31,   32,   33,    63,    64,    65,
                                      255, 256, 257, 4095, 4096, 4097, 65535, 65536, 65537, 131072};
  if (provider.ConsumeBool()) return kSizes[provider.ConsumeIntegralInRange<size_t>(0, 19)];
  return provider.ConsumeIntegralInRange<size_t>(0, 131072);
}

bool lower_hex(const char* text, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const char c = text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A fixed-size output's failure: EINVAL, the output (its first `defined` bytes, as far as
// out_size reaches) zeroed, and nothing past it touched.
void check_failed(int rc, const Buffer& out, size_t defined, const char* what) {
  FUZZ_CHECK(rc == EINVAL, "%s: %d, want EINVAL", what, rc);
  FUZZ_CHECK(out.all(0, 0, defined), "%s: output not zeroed on failure", what);
  FUZZ_CHECK(out.all(0xa5, defined, out.size), "%s: wrote past its %zu bytes", what, defined);
}

void check_uuid_text(const Buffer& out, int version, const char* what) {
  const std::string_view text(out.text(), 36);
  FUZZ_CHECK(out.data[36] == '\0', "%s: no NUL at 36", what);
  const snapsafe::UuidParseResult parsed = snapsafe::parse_uuid(text, version);
  FUZZ_CHECK(parsed.ok() && parsed.uuid.to_string() == text, "%s: not a canonical v%d UUID: %.*s",
             what, version, 36, out.text());
  FUZZ_CHECK(out.all(0xa5, 37, out.size), "%s: wrote past 37 bytes", what);
}

void check_uuid_bytes(const Buffer& out, int version, const char* what) {
  snapsafe::Uuid uuid;
  std::memcpy(uuid.data(), out.data, 16);
  FUZZ_CHECK(uuid.version() == version && uuid.variant() == snapsafe::UuidVariant::kRfc9562,
             "%s: version %d variant %d", what, uuid.version(), static_cast<int>(uuid.variant()));
  FUZZ_CHECK(out.all(0xa5, 16, out.size), "%s: wrote past 16 bytes", what);
}

enum Call : uint8_t {
  kFill,
  kU64,
  kUniform,
  kUuidV4,
  kUuidV7,
  kUuidV4Bytes,
  kUuidV7Bytes,
  kUuidParse,
  kUuidFormat,
  kRequestId,
  kStatus,
  kSourceName,
  kBump,
  kCalls
};

void one_call(FuzzedDataProvider& provider) {
  const Call call = static_cast<Call>(provider.ConsumeIntegralInRange<uint8_t>(0, kCalls - 1));
  const bool null = provider.ConsumeIntegralInRange<uint8_t>(0, 7) == 0;  // 1 in 8
  switch (call) {
    case kFill: {
      Buffer out(null, pick_fill_size(provider));
      const int rc = snapsafe_fill(out.data, out.size);
      FUZZ_CHECK(rc == (null && out.size > 0 ? EINVAL : 0), "fill(%s, %zu) = %d",
                 null ? "NULL" : "buf", out.size, rc);
      if (!null && out.size >= 32) {
        FUZZ_CHECK(!out.all(0, 0, out.size) && !out.all(0xa5, 0, out.size),
                   "fill of %zu bytes left them constant", out.size);
      }
      break;
    }
    case kU64: {
      Buffer out(null, 8);
      const int rc = snapsafe_u64(reinterpret_cast<uint64_t*>(out.data));
      FUZZ_CHECK(rc == (null ? EINVAL : 0), "u64 = %d", rc);
      break;
    }
    case kUniform: {
      uint64_t bound = provider.ConsumeIntegral<uint64_t>();
      if (provider.ConsumeBool()) bound = provider.ConsumeIntegralInRange<uint64_t>(0, 3);
      Buffer out(null, 8);
      auto* value = reinterpret_cast<uint64_t*>(out.data);
      const int rc = snapsafe_uniform(bound, value);
      if (null || bound == 0) {
        FUZZ_CHECK(rc == EINVAL, "uniform(%llu) = %d", static_cast<unsigned long long>(bound), rc);
        if (!null) FUZZ_CHECK(*value == 0, "uniform(0): *out not 0");
      } else {
        FUZZ_CHECK(rc == 0 && *value < bound, "uniform(%llu) = %d, value %llu",
                   static_cast<unsigned long long>(bound), rc,
                   static_cast<unsigned long long>(*value));
      }
      break;
    }
    case kUuidV4:
    case kUuidV7: {
      Buffer out(null, pick_small_size(provider));
      const int version = call == kUuidV4 ? 4 : 7;
      const int rc = version == 4 ? snapsafe_uuid_v4(out.text(), out.size)
                                  : snapsafe_uuid_v7(out.text(), out.size);
      if (null || out.size < SNAPSAFE_UUID_TEXT_SIZE) {
        check_failed(rc, out, SNAPSAFE_UUID_TEXT_SIZE, "uuid text");
      } else {
        FUZZ_CHECK(rc == 0, "uuid text: %d", rc);
        check_uuid_text(out, version, "uuid text");
      }
      break;
    }
    case kUuidV4Bytes:
    case kUuidV7Bytes: {
      Buffer out(null, pick_small_size(provider));
      const int version = call == kUuidV4Bytes ? 4 : 7;
      const int rc = version == 4 ? snapsafe_uuid_v4_bytes(out.data, out.size)
                                  : snapsafe_uuid_v7_bytes(out.data, out.size);
      if (null || out.size < SNAPSAFE_UUID_SIZE) {
        check_failed(rc, out, SNAPSAFE_UUID_SIZE, "uuid bytes");
      } else {
        FUZZ_CHECK(rc == 0, "uuid bytes: %d", rc);
        check_uuid_bytes(out, version, "uuid bytes");
      }
      break;
    }
    case kUuidParse: {
      const int version = provider.ConsumeIntegralInRange<int>(-2, 10);
      const bool null_text = provider.ConsumeIntegralInRange<uint8_t>(0, 7) == 0;
      Buffer out(null, pick_small_size(provider));
      const std::string source = provider.ConsumeRandomLengthString(48);
      Buffer text(null_text, source.size());  // exactly the text, no NUL after it
      if (!null_text && !source.empty()) std::memcpy(text.data, source.data(), source.size());
      const int rc = snapsafe_uuid_parse(text.text(), text.size, version, out.data, out.size);
      const snapsafe::UuidParseResult parsed =
          version == 0 ? snapsafe::parse_uuid(source) : snapsafe::parse_uuid(source, version);
      const bool ok =
          !null && out.size >= 16 && !null_text && version >= 0 && version <= 8 && parsed.ok();
      if (!ok) {
        FUZZ_CHECK(rc == EINVAL, "uuid_parse: %d, want EINVAL", rc);
        FUZZ_CHECK(out.all(0, 0, std::min<size_t>(out.size, 16)), "uuid_parse: not zeroed");
      } else {
        FUZZ_CHECK(rc == 0 && std::memcmp(out.data, parsed.uuid.data(), 16) == 0,
                   "uuid_parse: %d or other bytes than parse_uuid", rc);
      }
      if (!null) FUZZ_CHECK(out.all(0xa5, 16, out.size), "uuid_parse: wrote past 16 bytes");
      break;
    }
    case kUuidFormat: {
      const bool null_uuid = provider.ConsumeIntegralInRange<uint8_t>(0, 7) == 0;
      Buffer uuid(null_uuid, 16);
      if (!null_uuid) {
        for (size_t i = 0; i < 16; ++i) uuid.data[i] = provider.ConsumeIntegral<uint8_t>();
      }
      Buffer out(null, pick_small_size(provider));
      const int rc = snapsafe_uuid_format(uuid.data, out.text(), out.size);
      if (null || null_uuid || out.size < SNAPSAFE_UUID_TEXT_SIZE) {
        check_failed(rc, out, SNAPSAFE_UUID_TEXT_SIZE, "uuid_format");
      } else {
        snapsafe::Uuid value;
        std::memcpy(value.data(), uuid.data, 16);
        FUZZ_CHECK(rc == 0 && out.data[36] == '\0' && value.to_string() == out.text(),
                   "uuid_format: %d", rc);
        FUZZ_CHECK(out.all(0xa5, 37, out.size), "uuid_format: wrote past 37 bytes");
      }
      break;
    }
    case kRequestId: {
      Buffer out(null, pick_small_size(provider));
      const int rc = snapsafe_request_id(out.text(), out.size);
      if (null || out.size < SNAPSAFE_REQUEST_ID_TEXT_SIZE) {
        check_failed(rc, out, SNAPSAFE_REQUEST_ID_TEXT_SIZE, "request_id");
      } else {
        FUZZ_CHECK(rc == 0 && lower_hex(out.text(), 32) && out.data[32] == '\0', "request_id: %d",
                   rc);
        FUZZ_CHECK(out.all(0xa5, 33, out.size), "request_id: wrote past 33 bytes");
      }
      break;
    }
    case kStatus: {
      size_t needed = 0;
      FUZZ_CHECK(snapsafe_status(nullptr, 0, &needed) == ERANGE && needed > 1, "size query");
      size_t size = 0;
      switch (provider.ConsumeIntegralInRange<int>(0, 4)) {
        case 0: size = needed - 1; break;
        case 1: size = needed; break;
        case 2: size = needed + 64; break;  // "leave some room": counters may grow
        case 3: size = provider.ConsumeIntegralInRange<size_t>(0, 64); break;
        default: size = provider.ConsumeIntegralInRange<size_t>(0, 2 * needed); break;
      }
      const bool with_needed = provider.ConsumeBool();
      Buffer out(null, size);
      size_t reported = 12345;
      const int rc = snapsafe_status(out.text(), out.size, with_needed ? &reported : nullptr);
      if (null && size > 0) {
        FUZZ_CHECK(rc == EINVAL, "status(NULL, %zu) = %d", size, rc);
        break;
      }
      FUZZ_CHECK(rc == 0 || rc == ERANGE, "status: %d", rc);
      if (with_needed) {
        FUZZ_CHECK(reported != 12345 && (rc == 0) == (size >= reported),
                   "status: rc %d with out_size %zu, needed %zu", rc, size, reported);
      }
      if (rc == 0) {
        FUZZ_CHECK(std::memchr(out.data, '\0', size) != nullptr, "status: no NUL");
        const size_t length = std::strlen(out.text());
        FUZZ_CHECK(!with_needed || length + 1 == reported, "status: length vs needed");
        FUZZ_CHECK(std::string_view(out.text(), length).find("source: ") != std::string::npos,
                   "status: not the report");
      } else {
        FUZZ_CHECK(out.all(0, 0, size), "status: ERANGE but not zeroed");
      }
      break;
    }
    case kSourceName: {
      Buffer out(null, pick_small_size(provider));
      const int rc = snapsafe_source_name(out.text(), out.size);
      if (null || out.size == 0) {
        FUZZ_CHECK(rc == EINVAL, "source_name: %d", rc);
      } else {
        FUZZ_CHECK(rc == 0 && std::memchr(out.data, '\0', out.size) != nullptr, "source_name");
        FUZZ_CHECK(std::string("counter-file").rfind(out.text(), 0) == 0,
                   "source_name '%s' is not the counter file's", out.text());
      }
      break;
    }
    case kBump: {
      snapsafe::genid::Generation g = 0;
      const std::string error = snapsafe::genid::counter_file_bump(g_counter_file, &g);
      FUZZ_CHECK(error.empty(), "bump: %s", error.c_str());
      break;
    }
    case kCalls: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Before the first draw: the library selects its source once per process.
  g_counter_file = snapsafe::fuzz::private_dir() + "/generation";
  const std::string error = snapsafe::genid::counter_file_create(g_counter_file);
  FUZZ_CHECK(error.empty(), "create counter file: %s", error.c_str());
  setenv("SNAPSAFE_SOURCE", "counter-file", 1);
  setenv("SNAPSAFE_COUNTER_FILE", g_counter_file.c_str(), 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  for (int i = 0; i < 32 && provider.remaining_bytes() > 0; ++i) one_call(provider);
  return 0;
}
