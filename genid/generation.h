// File: genid/generation.h
//
// The per-draw generation check. A "generation" is a 64-bit number that changes whenever
// the memory of this process may have been duplicated (VM snapshot restored, container
// restored, explicit trigger). snapsafe only ever compares generations for inequality:
// VMClock's counter jumps to "another non-repeating value", SysGenID's u32 counts up and
// is zero-extended, and the shared counter file takes a fresh random value per bump.
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

// How the per-draw check reads the generation: one 64-bit load from a shared mapping
// when the source has one (`word` set), else a function call.
struct Reader {
  // An 8-byte-aligned word in a mapping. A 32-bit counter at the start of a page (SysGenID)
  // is read as the whole aligned 64-bit word holding it: generations are only compared for
  // inequality, so the neighbouring bytes (zero, and never written) change nothing; were
  // they ever to change, the cost would be one spurious reseed, never a missed one.
  const uint64_t* word = nullptr;
  Generation (*call)() = nullptr;  // used when `word` is null
};

// Written by init() before any thread state exists; afterwards only retire() changes it,
// one pointer at a time (select.h). Read it through current_reader().
extern Reader g_reader;

// A consistent copy of g_reader (each field one atomic load; plain moves on x86-64).
inline Reader current_reader() {
  Reader r;
  r.word = __atomic_load_n(&g_reader.word, __ATOMIC_RELAXED);
  r.call = __atomic_load_n(&g_reader.call, __ATOMIC_RELAXED);
  return r;
}

// The current generation. An acquire load: nothing a draw reads after the check may be
// satisfied from before it.
inline Generation read_generation(const Reader& r) {
  if (__builtin_expect(r.word != nullptr, 1)) return __atomic_load_n(r.word, __ATOMIC_ACQUIRE);
  return r.call();
}
inline Generation read_generation() { return read_generation(current_reader()); }

}  // namespace snapsafe::genid
