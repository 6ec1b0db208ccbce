// File: rng/internal/vdso_getrandom.h
//
// The Linux vDSO getrandom (6.11+): the kernel's RNG at ~30 ns per call instead of a
// ~400-550 ns system call, with per-thread state the kernel itself invalidates when it
// reseeds (including on a VM fork it is told about). glibc 2.36 does not use it, so we
// find `__vdso_getrandom` (version LINUX_2.6) in the vDSO image (getauxval
// AT_SYSINFO_EHDR), ask it for its state parameters and map one state per thread with
// exactly the protection and flags it asks for (MAP_DROPPABLE: wiped on fork, not dumped).
// It fails exactly like getrandom(2) (it falls back to the system call internally), so
// fail-closed behaviour is unchanged. Not async-signal-safe on a thread's first use (it
// registers a thread-exit destructor): signal paths use kernel_fill() instead.
#pragma once

#include <cstddef>
#include <string>

namespace snapsafe::rng_internal {

// Whether the vDSO exports a working getrandom (found, and its parameter query succeeded).
bool vdso_getrandom_available() noexcept;

// Why it is not available ("" when it is).
const std::string& vdso_getrandom_unavailable_reason();

// Fills `size` bytes through the vDSO with this thread's state (taken on first use from
// the states exited threads left wiped, or mapped; at thread exit wiped and kept for the
// next thread, up to 64, or unmapped). Returns 0, or an errno (ENOSYS if unavailable).
int vdso_getrandom(void* out, size_t size) noexcept;

// pthread_atfork child: wipes the forking thread's state. MAP_DROPPABLE already gives the
// child a zero page, but CRIU restores the mapping without that flag.
void vdso_getrandom_forget_after_fork() noexcept;

// Unmaps the pooled states of exited threads (tests: the next thread maps a fresh one).
void vdso_getrandom_pool_clear() noexcept;

// This thread's vDSO state mapping and its length (nullptr before first use): for the
// tests and the benchmarks, which look at or time it; the draw path never calls it.
void* vdso_getrandom_thread_state(size_t* length) noexcept;

}  // namespace snapsafe::rng_internal
