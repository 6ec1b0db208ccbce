// Source selection: see select.h.
#include "genid/select.h"

#include <cstdlib>
#include <mutex>

#include "genid/counter_file.h"
#include "genid/sysgenid.h"
#include "genid/vmclock.h"

namespace snapsafe::genid {

Reader g_reader;

namespace {

const uint64_t kConstantGeneration = 0;

Selection* g_selection = nullptr;
std::once_flag g_once;

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

OpenedSource constant_source(SourceKind kind) {
  OpenedSource source;
  source.kind = kind;
  source.reader.word = &kConstantGeneration;
  return source;
}

// Tries `result`; on failure records why and returns false.
bool take(OpenResult result, Selection* selection) {
  if (result.ok) {
    selection->active = std::move(result.source);
    return true;
  }
  selection->notes.push_back(result.error);
  return false;
}

bool try_sysgenid(Selection* selection) {
  const std::string path = env_or("SNAPSAFE_SYSGENID_PATH", kDefaultSysgenidPath);
  const std::string mode = env_or("SNAPSAFE_SYSGENID_MODE", "mmap");
  if (mode == "syscall") return take(open_sysgenid_syscall(path), selection);
  if (mode != "mmap") {
    selection->notes.push_back("SNAPSAFE_SYSGENID_MODE=" + mode +
                               " is not one of: mmap, syscall");
    return false;
  }
  return take(open_sysgenid_mmap(path), selection);
}

bool try_vmclock(Selection* selection) {
  return take(open_vmclock(env_or("SNAPSAFE_VMCLOCK_PATH", kDefaultVmclockPath)), selection);
}

bool try_counter_file(Selection* selection) {
  return take(open_counter_file(env_or("SNAPSAFE_COUNTER_FILE", kDefaultCounterFilePath)),
              selection);
}

Selection select_from_environment() {
  Selection selection;
  selection.active = constant_source(SourceKind::kKernel);
  const std::string wanted = env_or("SNAPSAFE_SOURCE", "auto");
  bool found = false;
  if (wanted == "auto") {
    found = try_vmclock(&selection) || try_sysgenid(&selection) ||
            try_counter_file(&selection);
  } else if (wanted == "vmclock") {
    found = try_vmclock(&selection);
  } else if (wanted == "sysgenid") {
    found = try_sysgenid(&selection);
  } else if (wanted == "counter-file") {
    found = try_counter_file(&selection);
  } else if (wanted == "fork-only-unsafe") {
    selection.active = constant_source(SourceKind::kForkOnlyUnsafe);
    selection.notes.push_back(
        "SNAPSAFE_SOURCE=fork-only-unsafe: buffered output with no snapshot detection");
    found = true;
  } else if (wanted != "kernel") {
    selection.notes.push_back("SNAPSAFE_SOURCE=" + wanted +
                              " is not one of: auto, vmclock, sysgenid, counter-file, "
                              "kernel, fork-only-unsafe");
  }
  if (!found) selection.active = constant_source(SourceKind::kKernel);
  return selection;
}

void install(Selection selection) {
  delete g_selection;
  g_selection = new Selection(std::move(selection));
  g_reader = g_selection->active.reader;
}

}  // namespace

const char* source_name(SourceKind kind) {
  switch (kind) {
    case SourceKind::kVmclock: return "vmclock";
    case SourceKind::kSysgenidMmap: return "sysgenid-mmap";
    case SourceKind::kSysgenidSyscall: return "sysgenid-syscall";
    case SourceKind::kCounterFile: return "counter-file";
    case SourceKind::kKernel: return "kernel";
    case SourceKind::kForkOnlyUnsafe: return "fork-only-unsafe";
  }
  return "unknown";
}

const Selection& init() {
  std::call_once(g_once, [] { install(select_from_environment()); });
  return *g_selection;
}

void reinit_for_testing() {
  init();
  install(select_from_environment());
}

}  // namespace snapsafe::genid
