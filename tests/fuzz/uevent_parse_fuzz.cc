// Fuzz target: one uevent datagram as `snapsafe genid follow` parses it (tools/uevent.h).
//
// Design: the whole input is the datagram, copied into a heap buffer of exactly its size
// (ASan sees any read past it). Checked against an independent oracle written here:
//  - more than kMaxUeventSize bytes, or none: an error, never a change;
//  - ok: the header (up to the first NUL) holds '@' with a non-empty action before it;
//  - a vmgenid change is reported exactly when the parse is ok, the header's action is
//    "change", and a field (bytes between NULs after the header, or after the last NUL up
//    to the end) is exactly "NEW_VMGENID=1".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tools/uevent.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "uevent_parse_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<unsigned char> exact(data, data + size);
  const snapsafe::tools::Uevent event =
      snapsafe::tools::parse_uevent(exact.empty() ? nullptr : exact.data(), exact.size());
  if (size == 0 || size > snapsafe::tools::kMaxUeventSize) {
    if (event.ok || event.new_vmgenid) fail("accepted an empty or oversized message");
    return 0;
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string header = text.substr(0, text.find('\0'));
  const size_t at = header.find('@');
  if (event.ok && (at == std::string::npos || at == 0)) fail("ok without ACTION@DEVPATH");
  if (!event.ok && event.new_vmgenid) fail("a change reported for a malformed message");
  if (!event.ok && event.error.empty()) fail("an error without a message");
  bool field = false;
  for (size_t start = header.size() + 1; start <= text.size();) {
    size_t stop = text.find('\0', start);
    if (stop == std::string::npos) stop = text.size();
    if (text.compare(start, stop - start, "NEW_VMGENID=1") == 0 && stop - start == 13) field = true;
    start = stop + 1;
  }
  const bool expected =
      event.ok && at != std::string::npos && header.substr(0, at) == "change" && field;
  if (event.new_vmgenid != expected) fail("new_vmgenid differs from the oracle");
  return 0;
}
