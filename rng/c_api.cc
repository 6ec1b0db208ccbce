#include "rng/c_api.h"

#include <cerrno>
#include <cstring>

#include "genid/select.h"
#include "rng/ids.h"
#include "rng/internal/draw.h"

extern "C" {

int snapsafe_fill(void* data, size_t size) {
  if (data == nullptr) return size == 0 ? 0 : EINVAL;
  return snapsafe::rng_internal::draw(data, size);
}

int snapsafe_u64(uint64_t* out) {
  if (out == nullptr) return EINVAL;
  return snapsafe::rng_internal::draw(out, sizeof *out);
}

int snapsafe_uuid_v4(char* out, size_t out_size) {
  if (out == nullptr || out_size < 37) return EINVAL;
  snapsafe::Uuid uuid;
  try {
    uuid = snapsafe::uuid_v4();
  } catch (const snapsafe::entropy_error& e) {
    std::memset(out, 0, out_size);
    return e.code();
  }
  std::memcpy(out, snapsafe::uuid_to_string(uuid).c_str(), 37);
  return 0;
}

int snapsafe_source_name(char* out, size_t out_size) {
  if (out == nullptr || out_size == 0) return EINVAL;
  const char* name = snapsafe::genid::source_name(snapsafe::genid::init().active.kind);
  std::strncpy(out, name, out_size - 1);
  out[out_size - 1] = '\0';
  return 0;
}

}  // extern "C"
