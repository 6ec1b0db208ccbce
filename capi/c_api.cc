// The C interface: see c_api.h. Every entry point catches everything (no exception may
// cross into C) and zeroes its output on failure.
#include "capi/c_api.h"

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "genid/select.h"
#include "ids/request_id.h"
#include "ids/uuid.h"
#include "rng/error.h"
#include "rng/internal/draw.h"
#include "rng/status.h"

namespace {

// Runs `body` (which returns 0 or an errno); any exception becomes an errno. On failure
// the first `size` bytes of `out` are zeroed (if out is not NULL).
template <typename Body>
int guarded(void* out, size_t size, Body body) noexcept {
  int error;
  try {
    error = body();
  } catch (const snapsafe::entropy_error& e) {
    error = e.code() > 0 ? e.code() : EIO;
  } catch (const std::bad_alloc&) {
    error = ENOMEM;
  } catch (...) {
    error = EIO;
  }
  if (error != 0 && out != nullptr && size != 0) std::memset(out, 0, size);
  return error;
}

// The draw of a run-time size (snapsafe_fill): out of line, one copy in the library.
[[gnu::noinline]] int draw(void* out, size_t size) noexcept {
  return snapsafe::rng_internal::draw(out, size);
}

// The fixed-size entry points take draw.h's inline fast path with a constant size: the
// copy and the zeroing become plain moves, where the run-time-size draw above calls memcpy
// and memset through the PLT (measured through the shared library, dlopen'd: a u64 cost
// ~3x the inline draw that way; bench/c_api_dlopen_bench.cc).
template <size_t kSize>
[[gnu::always_inline]] inline int draw_fixed(void* out) noexcept {
  return snapsafe::rng_internal::draw(out, kSize);
}

// draw_u64's slow half, out of line (and reached by a tail call): the fast half then needs
// no stack frame and saves no register (measured: with draw.h's draw_value inlined whole,
// snapsafe_u64 pushed and popped six registers on every call).
[[gnu::noinline]] int draw_u64_slow(uint64_t* value, snapsafe::rng_internal::Fast fast) noexcept {
  namespace ri = snapsafe::rng_internal;
  uint64_t slow_value;
  const int error = fast == ri::Fast::kNoState
                        ? ri::draw_slow(&slow_value, sizeof slow_value)
                        : ri::draw_slow_in_use(ri::t_state, &slow_value, sizeof slow_value);
  *value = slow_value;  // zero on failure
  return error;
}

// One 64-bit value: draw.h's inline fast path with the constant size 8, the value kept in a
// register (as draw.h's draw_value).
[[gnu::always_inline]] inline int draw_u64(uint64_t* value) noexcept {
  namespace ri = snapsafe::rng_internal;
  uint64_t fast_value;
  const ri::Fast fast = ri::draw_fast<true, /*kReadByCall=*/false>(&fast_value, sizeof fast_value);
  if (__builtin_expect(fast == ri::Fast::kServed, 1)) {
    *value = fast_value;
    return 0;
  }
  return draw_u64_slow(value, fast);
}

// Fixed-size outputs: NULL or too small is EINVAL, with what fits zeroed.
int check_buffer(void* out, size_t out_size, size_t needed) {
  if (out == nullptr) return EINVAL;
  if (out_size < needed) {
    std::memset(out, 0, out_size);
    return EINVAL;
  }
  return 0;
}

}  // namespace

extern "C" {

int snapsafe_fill(void* data, size_t size) {
  if (data == nullptr) return size == 0 ? 0 : EINVAL;
  switch (size) {  // the small sizes callers ask for most, each with its constant size
    case 8: return draw_fixed<8>(data);
    case 16: return draw_fixed<16>(data);
    case 32: return draw_fixed<32>(data);
    default: return draw(data, size);  // noexcept, zeroes on failure
  }
}

int snapsafe_u64(uint64_t* out) {
  if (out == nullptr) return EINVAL;
  return draw_u64(out);  // zero on failure
}

int snapsafe_uniform(uint64_t bound, uint64_t* out) {
  if (out == nullptr) return EINVAL;
  *out = 0;
  if (bound == 0) return EINVAL;
  // Lemire, "Fast Random Integer Generation in an Interval" (2019): the high half of
  // x * bound is uniform in [0, bound) once the low half is at least 2^64 mod bound.
  uint64_t x;
  if (const int error = draw_u64(&x)) return error;
  unsigned __int128 product = static_cast<unsigned __int128>(x) * bound;
  if (static_cast<uint64_t>(product) < bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (static_cast<uint64_t>(product) < threshold) {
      if (const int error = draw_u64(&x)) return error;
      product = static_cast<unsigned __int128>(x) * bound;
    }
  }
  *out = static_cast<uint64_t>(product >> 64);
  return 0;
}

int snapsafe_uuid_v4(char* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 37)) return error;
  return guarded(out, 37, [&] {
    snapsafe::uuid_to_chars(snapsafe::uuid_v4(), out);
    out[36] = '\0';
    return 0;
  });
}

int snapsafe_uuid_v7(char* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 37)) return error;
  return guarded(out, 37, [&] {
    snapsafe::uuid_to_chars(snapsafe::uuid_v7(), out);
    out[36] = '\0';
    return 0;
  });
}

int snapsafe_uuid_v4_bytes(uint8_t* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 16)) return error;
  return guarded(out, 16, [&] {
    const snapsafe::Uuid uuid = snapsafe::uuid_v4();
    std::memcpy(out, uuid.data(), 16);
    return 0;
  });
}

int snapsafe_uuid_v7_bytes(uint8_t* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 16)) return error;
  return guarded(out, 16, [&] {
    const snapsafe::Uuid uuid = snapsafe::uuid_v7();
    std::memcpy(out, uuid.data(), 16);
    return 0;
  });
}

int snapsafe_uuid_parse(const char* text, size_t text_len, int expected_version, uint8_t* out,
                        size_t out_size) {
  if (const int error = check_buffer(out, out_size, 16)) return error;
  if (text == nullptr || expected_version < 0 || expected_version > 8) {
    std::memset(out, 0, 16);
    return EINVAL;
  }
  return guarded(out, 16, [&] {
    const std::string_view view(text, text_len);
    const snapsafe::UuidParseResult parsed = expected_version == 0
                                                 ? snapsafe::parse_uuid(view)
                                                 : snapsafe::parse_uuid(view, expected_version);
    if (!parsed) return EINVAL;
    std::memcpy(out, parsed.uuid.data(), 16);
    return 0;
  });
}

int snapsafe_uuid_format(const uint8_t* uuid, char* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 37)) return error;
  if (uuid == nullptr) {
    std::memset(out, 0, 37);
    return EINVAL;
  }
  snapsafe::Uuid value;
  std::memcpy(value.data(), uuid, 16);
  snapsafe::uuid_to_chars(value, out);
  out[36] = '\0';
  return 0;
}

int snapsafe_request_id(char* out, size_t out_size) {
  if (const int error = check_buffer(out, out_size, 33)) return error;
  return guarded(out, 33, [&] {
    snapsafe::request_id_to_chars(out);
    out[32] = '\0';
    return 0;
  });
}

int snapsafe_status(char* out, size_t out_size, size_t* needed) {
  if (out == nullptr && out_size != 0) return EINVAL;
  return guarded(out, out_size, [&] {
    const std::string report = snapsafe::status().to_string();
    if (needed != nullptr) *needed = report.size() + 1;
    if (out_size < report.size() + 1) return ERANGE;  // zeroed by guarded()
    std::memcpy(out, report.c_str(), report.size() + 1);
    return 0;
  });
}

int snapsafe_source_name(char* out, size_t out_size) {
  if (out == nullptr || out_size == 0) return EINVAL;
  return guarded(out, out_size, [&] {
    const char* name = snapsafe::genid::source_name(snapsafe::genid::init().active.kind);
    std::strncpy(out, name, out_size - 1);
    out[out_size - 1] = '\0';
    return 0;
  });
}

}  // extern "C"
