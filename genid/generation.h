// File: genid/generation.h
//
// The per-draw generation check. A "generation" is a 64-bit number that changes whenever
// the memory of this process may have been duplicated (VM snapshot restored, container
// restored, explicit trigger). snapsafe only ever compares generations for inequality:
// VMClock's counter jumps to "another non-repeating value", SysGenID's u32 counts up and
// is zero-extended, and the shared counter file counts up.
//
// read_generation() is the whole cost of the check on the draw path: for the mapped
// sources (SysGenID page, counter file) it is one well-predicted branch and one load.
// Sources that cannot be read with one load (a read() per check, VMClock's seqlock) go
// through a function pointer. The reader is chosen once by genid::init() (select.h) and
// never changes afterwards, except through the test-only re-init hook.
#pragma once

#include <cstdint>

namespace snapsafe::genid {

using Generation = uint64_t;

// Returned when a source cannot tell the generation right now (a VMClock seqlock wedged
// odd, a failed read()). It never equals a generation a thread state was seeded under, so
// the draw treats it as "changed" and serves that draw from the kernel.
inline constexpr Generation kGenerationUnknown = ~Generation{0};

enum class ReaderKind : uint8_t {
  kWord64,  // one 64-bit load from a shared mapping
  kWord32,  // one 32-bit load from a shared mapping, zero-extended
  kCall,    // anything else: a function call
};

struct Reader {
  ReaderKind kind = ReaderKind::kCall;
  const uint64_t* word64 = nullptr;
  const uint32_t* word32 = nullptr;
  Generation (*call)() = nullptr;
};

// Written once by init() before any thread state exists; read-only afterwards.
extern Reader g_reader;

// The current generation. Acquire loads: nothing a draw reads after the check may be
// satisfied from before it.
inline Generation read_generation() {
  const Reader& r = g_reader;
  if (r.kind == ReaderKind::kWord64) return __atomic_load_n(r.word64, __ATOMIC_ACQUIRE);
  if (r.kind == ReaderKind::kWord32) return __atomic_load_n(r.word32, __ATOMIC_ACQUIRE);
  return r.call();
}

}  // namespace snapsafe::genid
