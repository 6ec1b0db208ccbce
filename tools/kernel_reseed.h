// File: tools/kernel_reseed.h
//
// `snapsafe genid bump --reseed-kernel`: before the new generation is stored, push it into
// the guest kernel's RNG, so that a kernel whose CRNG is a clone (a VM restored with the
// same VMGenID GUID, a hypervisor without VMGenID, or the window before the kernel handles
// the notification) stops handing every clone the same bytes, for every program, not only
// for snapsafe's.
//
// What is done, in order, on /dev/urandom:
//  1. RNDADDENTROPY with a struct rand_pool_info holding the new generation, healthy
//     RDRAND words (rng/internal/hardware_rng.h; none if the CPU has none or they fail the
//     health checks) and the cycle counter. entropy_count is 0: this mixes, it credits
//     nothing (the generation may be known to whoever handed it in).
//  2. RNDRESEEDCRNG: the CRNG takes a new key from the input pool now. A plain write() to
//     /dev/urandom mixes into the pool but does not re-key the CRNG, so without this the
//     clone's CRNG would go on with its cloned key until its next scheduled reseed.
// Both need CAP_SYS_ADMIN. Each outcome is reported on its own: a step that failed says
// why (EPERM: needs CAP_SYS_ADMIN; RNDRESEEDCRNG before Linux 4.17: not supported).
// Step 2 is tried even if step 1 failed (the pool may still hold fresh input).
//
// Whether the CRNG really changed cannot be seen from user space: the tests check the
// calls and their arguments through the ioctl seam below (tests/kernel_reseed_test.cc);
// the VM suite (tests/vm) is where a same-GUID clone shows it.
#pragma once

#include <cstdint>
#include <string>

namespace snapsafe::tools {

struct KernelReseedReport {
  bool mixed = false;     // RNDADDENTROPY succeeded
  int mix_errno = 0;      // else why (or the open's errno)
  bool reseeded = false;  // RNDRESEEDCRNG succeeded
  int reseed_errno = 0;
  int hardware_words = 0;  // RDRAND words mixed in (0: none healthy)
  bool done() const { return mixed && reseeded; }
  // One line: "mixed into the pool: yes (generation, 4 RDRAND words, cycle counter);
  // CRNG reseeded: yes", or "mixed into the pool: no (EPERM: needs CAP_SYS_ADMIN); CRNG
  // reseeded: no (EPERM: needs CAP_SYS_ADMIN)".
  std::string describe() const;
};

// Mixes `generation` (and the rest, see top) into the kernel's pool and reseeds the CRNG.
// Never throws; errno is left alone.
KernelReseedReport reseed_kernel(uint64_t generation);

// The seam every ioctl of reseed_kernel() goes through (default: ioctl(2)). A test swaps
// it to see the requests and their arguments, or to fail them.
using KernelIoctl = int (*)(int fd, unsigned long request, void* argument);
extern KernelIoctl g_kernel_ioctl;

}  // namespace snapsafe::tools
