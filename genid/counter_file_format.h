// File: genid/counter_file_format.h
//
// The shared counter file's format (design: counter_file.h), shared by the three rooms
// that handle it: the read-side source (counter_file.cc), the mappings and their SIGBUS
// guard (counter_file_guard.h) and the writer the tools link (counter_file_writer.h).
//
// Layout (16 bytes, host byte order):
//   0..7   magic "SSGENv1\n"
//   8..15  generation, uint64_t, 8-byte aligned, only ever changed atomically (a
//          compare-and-swap or an exchange of the whole word)
// A tombstone (a retired or truncated file's page) has magic 0 and generation
// kGenerationUnknown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "genid/generation.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultCounterFilePath = "/run/snapsafe/generation";
inline constexpr char kCounterFileMagic[8] = {'S', 'S', 'G', 'E', 'N', 'v', '1', '\n'};
inline constexpr size_t kCounterFileSize = 16;

// How often still_valid() looks at the path (lstat); between two looks it only compares
// the magic (one load).
inline constexpr int64_t kCounterFileCheckIntervalNs = 1'000'000;

// Internal to genid's counter-file rooms: not API.
namespace counter_file_internal {

// The magic as the 64-bit word the file starts with.
inline uint64_t magic_word() {
  uint64_t word;
  std::memcpy(&word, kCounterFileMagic, sizeof word);
  return word;
}

inline const uint64_t* magic_of(const void* map) { return static_cast<const uint64_t*>(map); }
inline uint64_t* generation_word(void* map) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(map) + 8);
}

// The magic still there (an acquire load of its word).
inline bool magic_intact(const void* map) {
  return __atomic_load_n(magic_of(map), __ATOMIC_ACQUIRE) == magic_word();
}

}  // namespace counter_file_internal
}  // namespace snapsafe::genid
