// Parsing one kernel uevent datagram: see uevent.h.
#include "tools/uevent.h"

#include <cstring>

namespace snapsafe::tools {
namespace {

constexpr char kUdevMagic[] = "libudev";  // udev's own messages start "libudev\0"

Uevent failed(const char* why) {
  Uevent event;
  event.error = why;
  return event;
}

}  // namespace

Uevent parse_uevent(const unsigned char* data, size_t size) {
  if (data == nullptr || size == 0) return failed("empty message");
  if (size > kMaxUeventSize) return failed("message longer than 8192 bytes");
  if (size >= sizeof kUdevMagic && std::memcmp(data, kUdevMagic, sizeof kUdevMagic) == 0) {
    return failed("a udev message, not the kernel's");
  }
  const char* const text = reinterpret_cast<const char*>(data);
  const char* const end = text + size;
  // Each field ends at a NUL byte or at the end of the message (the kernel always ends
  // the last one with a NUL; a message that does not is accepted as far as it goes).
  auto field_end = [end](const char* from) {
    const void* nul = std::memchr(from, '\0', static_cast<size_t>(end - from));
    return nul != nullptr ? static_cast<const char*>(nul) : end;
  };
  const char* header_end = field_end(text);
  const char* at =
      static_cast<const char*>(std::memchr(text, '@', static_cast<size_t>(header_end - text)));
  if (at == nullptr) return failed("no ACTION@DEVPATH header");
  if (at == text) return failed("empty action in the header");
  Uevent event;
  event.action.assign(text, at);
  event.devpath.assign(at + 1, header_end);
  bool vmgenid_field = false;
  for (const char* field = header_end + 1; field < end;) {
    const char* stop = field_end(field);
    const size_t length = static_cast<size_t>(stop - field);
    if (length != 0) {  // an empty field (two NULs in a row) is padding
      const void* equals = std::memchr(field, '=', length);
      if (equals == nullptr || equals == field) return failed("a field that is not KEY=VALUE");
      const size_t key_length = static_cast<size_t>(static_cast<const char*>(equals) - field);
      if (key_length == 6 && std::memcmp(field, "ACTION", 6) == 0 &&
          std::string(field + 7, stop) != event.action) {
        return failed("ACTION= differs from the header's action");
      }
      if (length == 13 && std::memcmp(field, "NEW_VMGENID=1", 13) == 0) vmgenid_field = true;
    }
    field = stop + 1;
  }
  event.ok = true;
  event.new_vmgenid = vmgenid_field && event.action == "change";
  return event;
}

}  // namespace snapsafe::tools
