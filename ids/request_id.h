// File: ids/request_id.h
//
// Request IDs from the snapshot-safe generator: values for tracing and logs that never
// repeat across VM or container clones (every draw checks the generation, see rng/fill.h).
//
// Example:
//   std::string rid = snapsafe::request_id();  // "9f86d081884c7d659a2feaa0c55ad015"
#pragma once

#include <string>

namespace snapsafe {

// A request identifier: 128 random bits as 32 lower-case hex digits.
//
// Hex rather than base64url (22 characters): it is safe in URLs, headers, file names and
// log fields without escaping; it survives case-folding (case-insensitive header values,
// some log pipelines lower-case); it has no '-' or '_' that double-click selection and
// some tokenisers split on; and it is what this function always returned. The cost is 10
// characters.
std::string request_id();

// Writes a request ID into out[0..31]: exactly 32 characters, no NUL.
void request_id_to_chars(char* out);

}  // namespace snapsafe
