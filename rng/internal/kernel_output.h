// File: rng/internal/kernel_output.h
//
// Output served without the per-thread buffer: kernel-backed mode (no generation source),
// a signal handler that interrupted a draw, a generation that cannot be read, a retired
// source. Two rules, each from a measured failure:
//
//  1. Kernel-side state a restore can replay is never trusted alone. The vDSO getrandom
//     keeps its key and batch in ordinary process memory; CRIU restores it byte for byte
//     (without MAP_DROPPABLE) and the vDSO re-keys only when the kernel RNG's generation
//     moves, so restored processes returned the same values (61 of 100 restores).
//  2. A cloned kernel RNG (a VM clone with the same VMGenID GUID, or none) repeats even a
//     fresh getrandom(2); only the CPU's hardware RNG differs per clone.
//
// So: with a healthy hardware RNG, output = kernel RNG (the vDSO where the kernel has it)
// XOR hardware RNG, fresh per call: a replayed vDSO batch or a cloned kernel is masked by
// bytes no snapshot holds, and a bad hardware RNG is masked by the kernel's. The mask is
// one health-checked RDRAND word per 8 bytes up to 64 bytes; above, AES-256-CTR keyed by 4
// such words (hardware_rng_keyed_xor: the in-page AES with its schedule on the stack,
// wiped, registers cleared). No cipher context, no allocation, also in signal handlers
// (before, an OpenSSL context was allocated per call; then one word per 8 bytes at every
// size, ~31 ns each: a 4 KiB draw 9.5 -> 26 us CPU; keyed, 11 us). Under the evp keystream
// (no AES-NI, SNAPSAFE_KEYSTREAM=evp) every size is masked word by word. Without a hardware
// RNG: the getrandom system call alone, a fresh kernel read that no process restore can
// replay (a cloned kernel is then not covered: status() says so). Fails closed: any
// kernel error zeroes `out`.
//
// fork() from a signal handler that interrupted such a draw: the draw resumes in parent
// and child with the bytes made so far in both. A process-wide fork count (raised by a
// pthread_atfork child handler) is read before and after serving; a child that sees it
// move serves the draw again from its own, fresh reads (its vDSO state was wiped by the
// fork handlers), up to three times, then fails closed with EAGAIN. Not covered: children
// made without fork()'s handlers (_Fork(), raw clone()).
//
// Allocation-free and async-signal-safe once the thread's vDSO state exists (its first
// kernel-served draw maps it and registers a thread-exit destructor); with signal_safe,
// always (the system call, never the vDSO).
#pragma once

#include <cstddef>

namespace snapsafe::rng_internal {

// Fills `size` bytes as above; 0, or an errno with `out` zeroed.
// `signal_safe`: the caller may be a signal handler (no vDSO, no allocation).
int kernel_output(void* out, size_t size, bool signal_safe) noexcept;

// Whether kernel_output() masks with the hardware RNG on this machine now (for status()):
// the CPU has one and two fresh words pass the health checks the draws apply (a CPU that
// returns all ones, as in the AMD erratum, has RDRAND by CPUID but masks nothing).
bool kernel_output_uses_hardware_rng() noexcept;

}  // namespace snapsafe::rng_internal
