// File: genid/vmclock.h
//
// VMClock (/dev/vmclock0, Linux 6.13+ driver ptp_vmclock; the generation field is 7.0+):
// the upstream descendant of SysGenID's mmap'd counter. We map the page read-only and read
// `vm_generation_counter` (offset 104) under the device's seqlock (`seq_count`, offset 12,
// odd while the hypervisor writes). See ../shared/VMCLOCK.md.
//
// Validated once at open: magic "VCLK", version 1, size covering offset 112, and flag bit 8
// (VM_GEN_COUNTER_PRESENT). Anything else: the source is unavailable. Per check the seqlock
// is retried a bounded number of times; a wedged (always odd, or always moving) seqlock
// yields kGenerationUnknown, which the draw serves from the kernel, never as "unchanged".
// A regular file with the same layout stands in for the device in tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "genid/source.h"

namespace snapsafe::genid {

inline constexpr const char* kDefaultVmclockPath = "/dev/vmclock0";

// The fields we use, by offset (little-endian, as the UAPI header defines them).
inline constexpr uint32_t kVmclockMagic = 0x4b4c4356;  // "VCLK"
inline constexpr size_t kVmclockOffsetMagic = 0;
inline constexpr size_t kVmclockOffsetSize = 4;
inline constexpr size_t kVmclockOffsetVersion = 8;
inline constexpr size_t kVmclockOffsetSeqCount = 12;
inline constexpr size_t kVmclockOffsetFlags = 24;
inline constexpr size_t kVmclockOffsetGeneration = 104;
inline constexpr uint64_t kVmclockFlagGenCounterPresent = uint64_t{1} << 8;
inline constexpr int kVmclockSeqlockRetries = 64;

OpenResult open_vmclock(const std::string& path);

// The validation open_vmclock() applies to a mapped page (magic, version, size field,
// VM_GEN_COUNTER_PRESENT): nullptr if the page is usable, else why not ("bad magic (not a
// VMClock page)", ...). Reads only offsets below kVmclockOffsetGeneration + 8 of `page`.
const char* vmclock_page_problem(const unsigned char* page);

// The seqlock read itself, on a mapped page (exposed for tests).
// Test seam: when set, called between the seqlock's loads of the generation and of the
// sequence count (a deterministic writer landing exactly there). Defined only in
// //genid:genid_testing (SNAPSAFE_TESTING): the production read has no hook at all.
extern void (*g_vmclock_between_loads_for_testing)();

Generation vmclock_read_generation(const unsigned char* page);

}  // namespace snapsafe::genid
