// What protects this process: see status.h. The coverage verdicts restate the threat
// model of docs/DESIGN.md for the sources actually watched.
#include "rng/status.h"

#include <sys/mman.h>

#include <sstream>

#include "genid/select.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/kernel_output.h"
#include "rng/internal/thread_state.h"
#include "rng/internal/vdso_getrandom.h"

namespace snapsafe {
namespace {

bool wipe_on_fork_works() {
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return false;
  const bool ok = madvise(map, 4096, MADV_WIPEONFORK) == 0;
  munmap(map, 4096);
  return ok;
}

// The coverage verdicts, from what the watched sources' traits (genid/source.h) say they
// cover: no kind or name is compared here, so a new kind of source needs no change.
void judge(const genid::Selection& selection, Status* s) {
  const bool hardware = s->hardware_rng;
  if (!selection.active.traits.detects_snapshots) {
    s->fork = {true, "MADV_WIPEONFORK and the fork handler"};
    s->vm_clone = s->process_restore =
        s->cloned_kernel_rng = {false, "NO: SNAPSAFE_SOURCE=fork-only-unsafe watches nothing"};
    return;
  }
  if (!s->buffered) {
    const std::string fresh = hardware
                                  ? "every draw: kernel RNG XOR the CPU's RDRAND, fresh per call"
                                  : "every draw: a getrandom(2) system call, fresh per call";
    s->fork = {true, fresh};
    s->process_restore = {true, fresh};
    s->vm_clone = {true, hardware ? fresh : fresh + " (the guest kernel reseeds on VMGenID)"};
    s->cloned_kernel_rng = {hardware,
                            hardware ? fresh
                            : s->hardware_rng_failed
                                ? "NO: RDRAND fails its health checks; a cloned kernel RNG repeats"
                                : "NO: no hardware RNG; a cloned kernel RNG repeats"};
    return;
  }
  bool vm = false, counter = false;
  std::string counter_path;  // the (last) source a restore hook moves
  for (const genid::OpenedSource& w : selection.watched) {
    vm |= w.traits.moves_on_vm_clone;
    if (w.traits.moves_on_process_restore) {
      counter = true;
      counter_path = w.path;
    }
  }
  s->fork = {true, "MADV_WIPEONFORK and the fork handler (reseed in the child)"};
  s->vm_clone = vm ? Coverage{true, "the VM generation source moves; every thread reseeds"}
                   : Coverage{false,
                              "NO: no VM source watched (only if the VM restore also "
                              "bumps " +
                                  counter_path + ")"};
  s->process_restore =
      counter ? Coverage{true, "the restore hook bumps " + counter_path}
              : Coverage{false,
                         "NO: a process restore moves no VM generation; bump a counter "
                         "file (SNAPSAFE_COUNTER_FILE) from the restore hook, or use "
                         "SNAPSAFE_SOURCE=kernel"};
  s->cloned_kernel_rng = {false, "NO: buffered output reseeds only when a watched source moves"};
}

// The keystream the thread states run on (rng/internal/state_keystream.h).
std::string keystream_in_use() {
  const rng_internal::AesVariant variant = rng_internal::aes_ctr_variant();
  if (variant == rng_internal::AesVariant::kEvp) return "AES-256-CTR (OpenSSL EVP)";
  return std::string("AES-256-CTR in the state page (") +
         rng_internal::aes_ctr_variant_name(variant) + ")";
}

std::string line(const char* label, const Coverage& c) {
  return std::string(label) + (c.covered ? "yes" : "no") + " - " + c.how + "\n";
}

}  // namespace

Status status() {
  const genid::Selection& selection = genid::init();
  // Asked here too, not only at a draw's refill: a counter file truncated mid-run reads
  // "unknown" from then on, so every draw is served by the kernel and no refill ever
  // comes to ask; without this, status() kept saying "buffered" (found by
  // tests/fault_injection_test). A source found untrustworthy is retired now.
  (void)genid::sources_still_valid();
  Status s;
  s.source = selection.active.kind;
  s.source_name = genid::source_name(s.source);
  s.path = selection.active.path;
  for (const genid::OpenedSource& w : selection.watched) {
    s.watched.push_back({genid::source_name(w.kind), w.path, genid::read_generation(w.reader)});
  }
  s.retired = genid::retired_reason();
  s.buffered = selection.active.traits.buffers_output && s.retired.empty() &&
               !rng_internal::thread_states_unavailable();
  s.keystream = keystream_in_use();
  s.kernel_interface =
      rng_internal::vdso_getrandom_available() ? "vDSO getrandom" : "getrandom syscall";
  s.hardware_rng = rng_internal::kernel_output_uses_hardware_rng();  // health-checked now
  s.hardware_rng_failed = !s.hardware_rng && rng_internal::hardware_rng_present();
  s.snapshot_safe = selection.active.traits.detects_snapshots;
  static const bool fork_detection = wipe_on_fork_works();  // a kernel property: probe once
  s.fork_detection = fork_detection;
  judge(selection, &s);
  s.generation = genid::read_generation();
  s.reseeds = rng_internal::reseed_count();
  s.live_thread_states = rng_internal::live_thread_states();
  s.notes = selection.notes;
  return s;
}

std::string Status::to_string() const {
  std::ostringstream out;
  out << "source:         " << source_name << (path.empty() ? "" : " (" + path + ")") << "\n";
  for (const WatchedSource& w : watched) {
    // A SysGenID counter at U32_MAX never moves again (genid/sysgenid.h: saturation).
    const bool saturated = w.name.rfind("sysgenid", 0) == 0 && w.generation == 0xffffffffu;
    out << "watching:       " << w.name << " " << w.path << " (generation " << w.generation
        << (saturated ? ", SATURATED: can no longer signal a VM clone" : "") << ")\n";
  }
  out << "mode:           "
      << (buffered ? "buffered per-thread AES-256-CTR, checked every draw"
                   : "kernel-backed: every draw from the kernel RNG")
      << "\n"
      << "keystream:      " << keystream << "\n"
      << "kernel RNG:     " << kernel_interface
      << (hardware_rng          ? ", XORed with RDRAND"
          : hardware_rng_failed ? ", RDRAND fails its health checks: not used"
                                : ", no hardware RNG")
      << "\n"
      << "snapshot safe:  " << (snapshot_safe ? "yes" : "NO (explicit fork-only opt-in)") << "\n"
      << "fork detection: " << (fork_detection ? "MADV_WIPEONFORK" : "unavailable") << "\n"
      << line("covers fork:            ", fork) << line("covers VM clone:        ", vm_clone)
      << line("covers process restore: ", process_restore)
      << line("covers cloned kernel:   ", cloned_kernel_rng);
  if (!retired.empty()) out << "retired:        " << retired << "\n";
  out << "generation:     " << generation << "\n"
      << "reseeds:        " << reseeds << "\n";
  for (const std::string& note : notes) out << "skipped:        " << note << "\n";
  return out.str();
}

}  // namespace snapsafe
