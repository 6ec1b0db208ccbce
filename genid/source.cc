// What each kind of generation source covers: see source.h. The one place that answers it
// per kind, so that status() (rng/status.cc) and the draw path ask the traits instead of
// comparing kinds: a new kind is added here or the build fails (-Werror=switch on this
// library; tests/packaging/run proves it with SNAPSAFE_PROBE_FORGOTTEN_KIND).
#include "genid/source.h"

namespace snapsafe::genid {

SourceTraits source_traits(SourceKind kind) {
  switch (kind) {  // no default: -Werror=switch makes a forgotten kind a build error
    case SourceKind::kVmclock:
      return {"vmclock",
              /*buffers_output=*/true,
              /*detects_snapshots=*/true,
              /*moves_on_vm_clone=*/true,
              /*moves_on_process_restore=*/false,
              /*restores_drop_page_flags=*/false};
    case SourceKind::kSysgenidMmap:
      return {"sysgenid-mmap",
              true,
              true,
              /*moves_on_vm_clone=*/true,
              /*moves_on_process_restore=*/false,
              /*restores_drop_page_flags=*/false};
    case SourceKind::kSysgenidSyscall:
      return {"sysgenid-syscall",
              true,
              true,
              /*moves_on_vm_clone=*/true,
              /*moves_on_process_restore=*/false,
              /*restores_drop_page_flags=*/false};
    case SourceKind::kCounterFile:
      // Bumped by a restore hook (CRIU action script, SnapStart afterRestore, ...), whose
      // restores drop MADV_WIPEONFORK. A VM clone moves it only if the VM's restore also
      // bumps it: not counted.
      return {"counter-file",
              true,
              true,
              /*moves_on_vm_clone=*/false,
              /*moves_on_process_restore=*/true,
              /*restores_drop_page_flags=*/true};
    case SourceKind::kKernel:
      // Nothing buffered: every draw is fresh from the kernel, whatever was duplicated.
      return {"kernel",
              /*buffers_output=*/false,
              /*detects_snapshots=*/true,
              /*moves_on_vm_clone=*/false,
              /*moves_on_process_restore=*/false,
              /*restores_drop_page_flags=*/false};
    case SourceKind::kForkOnlyUnsafe:
      return {"fork-only-unsafe",
              /*buffers_output=*/true,
              /*detects_snapshots=*/false,
              /*moves_on_vm_clone=*/false,
              /*moves_on_process_restore=*/false,
              /*restores_drop_page_flags=*/false};
  }
  return {"unknown", false, true, false, false, false};  // not a SourceKind: kernel-backed
}

const char* source_name(SourceKind kind) { return source_traits(kind).name; }

}  // namespace snapsafe::genid
