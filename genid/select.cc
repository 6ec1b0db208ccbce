// Source selection: see select.h.
#include "genid/select.h"

#include <unistd.h>
#include <atomic>

#include <cstdlib>
#include <mutex>
#include <sstream>

#include "genid/counter_file.h"
#include "genid/sysgenid.h"
#include "genid/vmclock.h"

namespace snapsafe::genid {

Reader g_reader;

namespace {

const uint64_t kConstantGeneration = 0;
const uint64_t kRetiredWord = kGenerationUnknown;
constexpr size_t kMaxWatched = 4;

Selection* g_selection = nullptr;
std::once_flag g_once;

// The composite reader's view of the watched sources (fixed at init).
Reader g_watched_readers[kMaxWatched];
size_t g_watched_count = 0;

std::atomic<bool> g_retired{false};
std::mutex g_retire_lock;
std::string g_retired_reason;

std::string env_or(const char* name, const char* fallback) {
  const char* value = secure_getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

bool env_set(const char* name) {
  const char* value = secure_getenv(name);
  return value != nullptr && *value != '\0';
}

OpenedSource constant_source(SourceKind kind) {
  OpenedSource source;
  source.kind = kind;
  source.traits = source_traits(kind);
  source.reader.word = &kConstantGeneration;
  return source;
}

// Tries `result`: watched on success, else a note. Returns whether it opened.
bool take(OpenResult result, Selection* selection) {
  if (result.ok) {
    selection->watched.push_back(std::move(result.source));
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
    selection->notes.push_back("SNAPSAFE_SYSGENID_MODE=" + mode + " is not one of: mmap, syscall");
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

// Several sources: one 64-bit value that changes whenever any of them does. Generations
// are compared for inequality only; h = h * M + g (M odd) cannot cancel for the small
// steps counters take, and a random VMClock jump cancels another source's step with
// probability 2^-64. Unknown if any source is unknown.
Generation read_composite() {
  constexpr Generation kMultiplier = 0x9e3779b97f4a7c15u;
  Generation h = 0;
  for (size_t i = 0; i < g_watched_count; ++i) {
    const Generation g = read_generation(g_watched_readers[i]);
    if (g == kGenerationUnknown) return kGenerationUnknown;
    h = h * kMultiplier + g;
  }
  return h >= kGenerationUnknown - 1 ? h - 2 : h;  // never a reserved value
}

// Each source acknowledges the value it shows now: the thread that calls this has just
// reseeded for the composite, which covers every value up to now.
void acknowledge_composite(Generation) {
  for (const OpenedSource& source : g_selection->watched) {
    if (source.acknowledge != nullptr) source.acknowledge(read_generation(source.reader));
  }
}

bool still_valid_composite() {
  for (const OpenedSource& source : g_selection->watched) {
    if (source.still_valid != nullptr && !source.still_valid()) return false;
  }
  return true;
}

// The composite covers what any of its sources covers (its name is the first one's).
SourceTraits composite_traits(const std::vector<OpenedSource>& watched) {
  SourceTraits traits = watched.front().traits;
  for (const OpenedSource& source : watched) {
    traits.moves_on_vm_clone |= source.traits.moves_on_vm_clone;
    traits.moves_on_process_restore |= source.traits.moves_on_process_restore;
    traits.restores_drop_page_flags |= source.traits.restores_drop_page_flags;
  }
  return traits;
}

// Which sources to watch, per SNAPSAFE_SOURCE.
void watch_requested(const std::string& wanted, Selection* selection) {
  if (wanted == "auto") {
    try_vmclock(selection);
    try_sysgenid(selection);
    const bool vm_source = !selection->watched.empty();
    if (env_set("SNAPSAFE_COUNTER_FILE") || vm_source) {
      try_counter_file(selection);
    } else if (access(kDefaultCounterFilePath, F_OK) == 0) {
      selection->notes.push_back(std::string(kDefaultCounterFilePath) +
                                 ": not relied on alone (nothing shows a restore hook "
                                 "bumps it); set SNAPSAFE_COUNTER_FILE to rely on it");
    }
    return;
  }
  std::stringstream list(wanted);
  std::string name;
  while (std::getline(list, name, ',')) {
    if (name == "vmclock") {
      try_vmclock(selection);
    } else if (name == "sysgenid") {
      try_sysgenid(selection);
    } else if (name == "counter-file") {
      try_counter_file(selection);
    } else {
      selection->notes.push_back("SNAPSAFE_SOURCE=" + wanted +
                                 " is not one of: auto, kernel, fork-only-unsafe, or a "
                                 "comma-separated list of vmclock, sysgenid, counter-file");
      selection->watched.clear();  // a typo must not leave a partial selection
      return;
    }
  }
}

Selection select_from_environment() {
  Selection selection;
  const std::string wanted = env_or("SNAPSAFE_SOURCE", "auto");
  if (wanted == "kernel") {
    selection.active = constant_source(SourceKind::kKernel);
    return selection;
  }
  if (wanted == "fork-only-unsafe") {
    selection.active = constant_source(SourceKind::kForkOnlyUnsafe);
    selection.notes.push_back(
        "SNAPSAFE_SOURCE=fork-only-unsafe: buffered output with no snapshot detection");
    return selection;
  }
  watch_requested(wanted, &selection);
  if (selection.watched.size() > kMaxWatched) selection.watched.resize(kMaxWatched);
  if (selection.watched.empty()) {
    selection.active = constant_source(SourceKind::kKernel);
  } else if (selection.watched.size() == 1) {
    selection.active = selection.watched.front();
  } else {
    selection.active.kind = selection.watched.front().kind;
    selection.active.traits = composite_traits(selection.watched);
    selection.active.reader.call = &read_composite;
    selection.active.acknowledge = &acknowledge_composite;
    selection.active.still_valid = &still_valid_composite;
  }
  return selection;
}

void install(Selection selection) {
  delete g_selection;
  g_selection = new Selection(std::move(selection));
  g_watched_count = g_selection->watched.size();
  for (size_t i = 0; i < g_watched_count; ++i)
    g_watched_readers[i] = g_selection->watched[i].reader;
  g_retired.store(false);
  g_retired_reason.clear();
  g_reader = g_selection->active.reader;
}

Generation read_retired() { return kGenerationUnknown; }

}  // namespace

void retire(const std::string& why) {
  std::lock_guard<std::mutex> lock(g_retire_lock);
  if (g_retired.load()) return;
  g_retired_reason = why;
  // One pointer each, stored atomically: a draw's copy of g_reader is always consistent.
  if (g_reader.word != nullptr) {
    __atomic_store_n(&g_reader.word, &kRetiredWord, __ATOMIC_RELEASE);
  } else {
    __atomic_store_n(&g_reader.call, &read_retired, __ATOMIC_RELEASE);
  }
  g_retired.store(true);
}

// Once installed, one acquire load: std::call_once's own check is a call into libc
// (pthread_once), and every reseed comes here three times, every refill and bulk draw
// once (measured: reseed p50 651 -> 641 ns).
namespace {
std::atomic<bool> g_installed{false};
}  // namespace

const Selection& init() {
  if (__builtin_expect(g_installed.load(std::memory_order_acquire), 1)) return *g_selection;
  std::call_once(g_once, [] { install(select_from_environment()); });
  g_installed.store(true, std::memory_order_release);
  return *g_selection;
}

bool sources_still_valid() {
  if (g_retired.load(std::memory_order_relaxed)) return false;
  const OpenedSource& active = init().active;
  if (active.still_valid == nullptr || active.still_valid()) return true;
  std::string why = "a watched source can no longer be trusted";
  for (const OpenedSource& source : g_selection->watched) {
    if (source.still_valid != nullptr && !source.still_valid()) {
      const std::string reason =
          source.invalid_reason != nullptr ? source.invalid_reason(source) : "";
      why = source.path + ": " + (reason.empty() ? "no longer trusted" : reason);
      break;
    }
  }
  retire(why + "; every draw is now served by the kernel");
  return false;
}

bool retired() { return g_retired.load(); }

std::string retired_reason() {
  std::lock_guard<std::mutex> lock(g_retire_lock);
  return g_retired_reason;
}

#ifdef SNAPSAFE_TESTING  // //genid:genid_testing only
void reinit_for_testing() {
  init();
  install(select_from_environment());
}
#endif

}  // namespace snapsafe::genid
