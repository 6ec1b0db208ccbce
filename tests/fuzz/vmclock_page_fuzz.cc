// Fuzz target: the VMClock page (genid/vmclock.h) as the library parses and reads it.
//
// Design: the input is a writer script (from its end, FuzzedDataProvider: up to 16 steps)
// and the page's contents (the rest, at most 4096 bytes). Three parts:
//  1. vmclock_page_problem(), the validation open_vmclock() applies, on a heap buffer of
//     exactly 112 bytes (ASan sees any read at or past offset 112: the header promises
//     none): it accepts exactly the pages an independent oracle accepts (magic "VCLK",
//     version 1, size field >= 112, flag bit 8).
//  2. vmclock_read_generation() on the same buffer while a hypervisor writer, driven by
//     the script through the test seam g_vmclock_between_loads_for_testing, writes the
//     page between the seqlock's loads. The writer is honest (every change of the
//     generation changes seq_count; a write in progress leaves it odd with a torn value in
//     the generation). Per call it does nothing, a whole update (seq += 2, a new value),
//     or starts an update and never finishes it (seq odd, garbage). The seqlock's contract,
//     as the oracle: with seq_count odd at the start, unknown without calling the writer;
//     else the first call that changes nothing ends the read with the value the page then
//     holds, a call that leaves the write open makes it unknown, and 64 whole updates in a
//     row make it unknown (bounded retries). So a torn or stale value is never returned.
//  3. open_vmclock() on a regular file holding the contents (the stand-in the tests use;
//     SNAPSAFE_VMCLOCK_PATH points the library at such a file): it opens exactly when the
//     file has at least 112 bytes and the oracle accepts them, and its reader returns the
//     generation, or unknown while seq_count is odd. The library maps the page once per
//     process and never unmaps it (by design: the selection is made once); this target
//     opens one per input, so it unmaps each page itself afterwards (found by path in
//     /proc/self/maps) and never calls that reader again.
#include <sys/mman.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "genid/generation.h"
#include "genid/vmclock.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace genid = snapsafe::genid;
using genid::Generation;
using genid::kGenerationUnknown;

constexpr size_t kHeaderEnd = genid::kVmclockOffsetGeneration + 8;  // 112

template <typename T>
T get(const uint8_t* page, size_t offset) {
  T value;
  std::memcpy(&value, page + offset, sizeof value);
  return value;
}

template <typename T>
void put(uint8_t* page, size_t offset, T value) {
  std::memcpy(page + offset, &value, sizeof value);
}

const char* oracle_problem(const uint8_t* page) {
  if (get<uint32_t>(page, genid::kVmclockOffsetMagic) != genid::kVmclockMagic) return "magic";
  if (get<uint16_t>(page, genid::kVmclockOffsetVersion) != 1) return "version";
  if (get<uint32_t>(page, genid::kVmclockOffsetSize) < kHeaderEnd) return "size";
  if (!(get<uint64_t>(page, genid::kVmclockOffsetFlags) & genid::kVmclockFlagGenCounterPresent)) {
    return "flags";
  }
  return nullptr;
}

// ---- The scripted writer (part 2).

enum Action : uint8_t { kIdle, kUpdate, kStartAndStall, kActions };
struct WriterStep {
  Action action;
  uint64_t value;
};

struct Writer {
  uint8_t* page = nullptr;
  const std::vector<WriterStep>* steps = nullptr;
  int calls = 0;
};
Writer g_writer;

void write_between_loads() {
  Writer& w = g_writer;
  const WriterStep step =
      w.steps->empty() ? WriterStep{kIdle, 0} : (*w.steps)[w.calls % w.steps->size()];
  ++w.calls;
  const uint32_t seq = get<uint32_t>(w.page, genid::kVmclockOffsetSeqCount);
  switch (step.action) {
    case kUpdate:  // odd, the new value, even again: the whole write between the loads
      put<uint32_t>(w.page, genid::kVmclockOffsetSeqCount, seq + 1);
      put<uint64_t>(w.page, genid::kVmclockOffsetGeneration, ~step.value);  // torn meanwhile
      put<uint64_t>(w.page, genid::kVmclockOffsetGeneration, step.value);
      put<uint32_t>(w.page, genid::kVmclockOffsetSeqCount, seq + 2);
      break;
    case kStartAndStall:  // odd, and a torn value that no reader may ever return
      put<uint32_t>(w.page, genid::kVmclockOffsetSeqCount, seq + 1);
      put<uint64_t>(w.page, genid::kVmclockOffsetGeneration, ~step.value);
      break;
    case kIdle:
    case kActions: break;
  }
}

void check_seqlock(const uint8_t* contents, const std::vector<WriterStep>& steps) {
  auto page = std::make_unique<uint8_t[]>(kHeaderEnd);
  std::memcpy(page.get(), contents, kHeaderEnd);
  const bool start_odd = get<uint32_t>(page.get(), genid::kVmclockOffsetSeqCount) & 1;

  // The oracle: walk the writer's calls as the seqlock's contract says they end.
  bool want_value = false;  // else unknown
  int want_calls = 0;
  if (!start_odd) {
    for (int call = 0; call < genid::kVmclockSeqlockRetries; ++call) {
      const Action action = steps.empty() ? kIdle : steps[call % steps.size()].action;
      ++want_calls;
      if (action == kStartAndStall) break;  // odd from now on: unknown
      if (action != kUpdate) {
        want_value = true;  // the value the page holds then (and at the end)
        break;
      }
    }
  }

  g_writer = Writer{page.get(), &steps, 0};
  genid::g_vmclock_between_loads_for_testing = &write_between_loads;
  const Generation got = genid::vmclock_read_generation(page.get());
  genid::g_vmclock_between_loads_for_testing = nullptr;

  FUZZ_CHECK(g_writer.calls == want_calls, "writer called %d times, the protocol says %d",
             g_writer.calls, want_calls);
  if (!want_value) {
    FUZZ_CHECK(got == kGenerationUnknown, "read %" PRIx64 " where only unknown is right", got);
  } else {
    const uint32_t seq_now = get<uint32_t>(page.get(), genid::kVmclockOffsetSeqCount);
    const Generation now = get<uint64_t>(page.get(), genid::kVmclockOffsetGeneration);
    FUZZ_CHECK(got == now && !(seq_now & 1),
               "read %" PRIx64 ", the page holds %" PRIx64 " (seq %u): torn or stale", got, now,
               seq_now);
  }
}

// ---- The file stand-in (part 3).

// Unmaps every mapping of `path` (the page open_vmclock left mapped).
void unmap_file(const std::string& path) {
  FILE* maps = std::fopen("/proc/self/maps", "re");
  FUZZ_CHECK(maps != nullptr, "/proc/self/maps");
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  char line[4096];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    std::string text(line);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.size() < path.size() || text.compare(text.size() - path.size(), path.size(), path)) {
      continue;
    }
    uintptr_t start = 0, end = 0;
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2) {
      ranges.emplace_back(start, end);
    }
  }
  std::fclose(maps);
  FUZZ_CHECK(ranges.size() == 1, "expected the one page of %s mapped, found %zu", path.c_str(),
             ranges.size());
  for (const auto& [start, end] : ranges) munmap(reinterpret_cast<void*>(start), end - start);
}

void check_file(const std::string& path, const std::string& contents) {
  snapsafe::fuzz::write_file(path, contents);
  uint8_t header[kHeaderEnd] = {};
  std::memcpy(header, contents.data(), std::min(contents.size(), kHeaderEnd));
  const bool want = contents.size() >= kHeaderEnd && oracle_problem(header) == nullptr;
  const genid::OpenResult opened = genid::open_vmclock(path);
  FUZZ_CHECK(opened.ok == want, "open_vmclock ok=%d, oracle %d: %s", opened.ok, want,
             opened.error.c_str());
  if (!opened.ok) {
    FUZZ_CHECK(
        opened.error.rfind(path + ": ", 0) == 0 && opened.error.find('\n') == std::string::npos,
        "error: %s", opened.error.c_str());
    return;
  }
  FUZZ_CHECK(opened.source.kind == genid::SourceKind::kVmclock && opened.source.reader.call,
             "a VMClock source without its reader");
  const Generation got = opened.source.reader.call();
  const bool odd = get<uint32_t>(header, genid::kVmclockOffsetSeqCount) & 1;
  const Generation expected =
      odd ? kGenerationUnknown : get<uint64_t>(header, genid::kVmclockOffsetGeneration);
  FUZZ_CHECK(got == expected, "file reader %" PRIx64 ", want %" PRIx64, got, expected);
  unmap_file(path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  std::vector<WriterStep> steps(provider.ConsumeIntegralInRange<size_t>(0, 16));
  for (WriterStep& step : steps) {
    step.action = static_cast<Action>(provider.ConsumeIntegralInRange<uint8_t>(0, kActions - 1));
    step.value = provider.ConsumeIntegral<uint64_t>();
  }
  std::string contents = provider.ConsumeRemainingBytesAsString();
  if (contents.size() > 4096) contents.resize(4096);

  // Part 1: the validation, on exactly the 112 bytes it may read.
  auto header = std::make_unique<uint8_t[]>(kHeaderEnd);
  std::memset(header.get(), 0, kHeaderEnd);
  std::memcpy(header.get(), contents.data(), std::min(contents.size(), kHeaderEnd));
  const char* problem = genid::vmclock_page_problem(header.get());
  const char* want = oracle_problem(header.get());
  FUZZ_CHECK((problem == nullptr) == (want == nullptr),
             "vmclock_page_problem says '%s', oracle '%s'", problem ? problem : "usable",
             want ? want : "usable");

  check_seqlock(header.get(), steps);                                // part 2
  check_file(snapsafe::fuzz::private_dir() + "/vmclock", contents);  // part 3
  return 0;
}
