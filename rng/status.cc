#include "rng/status.h"

#include <sys/mman.h>

#include <sstream>

#include "genid/select.h"
#include "rng/internal/draw.h"
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

}  // namespace

Status status() {
  const genid::Selection& selection = genid::init();
  Status s;
  s.source = selection.active.kind;
  s.source_name = genid::source_name(s.source);
  s.path = selection.active.path;
  s.buffered = s.source != SourceKind::kKernel;
  s.kernel_interface =
      rng_internal::vdso_getrandom_available() ? "vDSO getrandom" : "getrandom syscall";
  s.snapshot_safe = s.source != SourceKind::kForkOnlyUnsafe;
  static const bool fork_detection = wipe_on_fork_works();  // a kernel property: probe once
  s.fork_detection = fork_detection;
  s.generation = genid::read_generation();
  s.reseeds = rng_internal::reseed_count();
  s.live_thread_states = rng_internal::live_thread_states();
  s.notes = selection.notes;
  return s;
}

std::string Status::to_string() const {
  std::ostringstream out;
  out << "source:         " << source_name << (path.empty() ? "" : " (" + path + ")") << "\n"
      << "mode:           "
      << (buffered ? "buffered per-thread AES-256-CTR, checked every draw"
                   : "kernel-backed: every draw from the kernel RNG")
      << "\n"
      << "kernel RNG:     " << kernel_interface << "\n"
      << "snapshot safe:  " << (snapshot_safe ? "yes" : "NO (explicit fork-only opt-in)") << "\n"
      << "fork detection: " << (fork_detection ? "MADV_WIPEONFORK" : "unavailable") << "\n"
      << "generation:     " << generation << "\n"
      << "reseeds:        " << reseeds << "\n";
  for (const std::string& note : notes) out << "skipped:        " << note << "\n";
  return out.str();
}

}  // namespace snapsafe
