// File: bench/ids_bench.cc
//
// Identifiers: UUID version 4 and 7, request IDs, nonces, parsing, beside libuuid's
// uuid_generate_random (util-linux; Debian uuid-dev), which reads getrandom(2) for every
// UUID it makes. Named "<operation>/<implementation>"; every one timed in wall-clock time:
//   uuid_v4_text, uuid_v7_text: a std::string per UUID (what most callers do)
//   uuid_v4_chars, uuid_v7_chars: text into a caller's buffer, no allocation
//   uuid_v4_bytes, uuid_v7_bytes: the 16 bytes only
//     x snapsafe_counter_file (buffered: one load per draw checks the generation) |
//       snapsafe_kernel (no source: every draw from the kernel RNG XOR RDRAND) |
//       libuuid (uuid_generate_random [+ uuid_unparse_lower]; no v7 in Debian 12's 2.38)
//   request_id, nonce96, nonce_sequence (NonceSequence::next), parse_uuid: snapsafe only
//
// The counter file is simulated on tmpfs (/dev/shm, else $TMPDIR or /tmp); a benchmark's
// Setup() points the SNAPSAFE_* environment at it, or at kernel-backed mode, and selects
// again (genid::reinit_for_testing; only the main thread exists then). Each body runs on
// a fresh thread, so it owns a generator state made under the source it measures.
//
//   bazel run -c opt --config=bench //bench:ids_bench -- --benchmark_min_time=0.2
#include <unistd.h>
#include <uuid/uuid.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/select.h"
#include "ids/ids.h"

namespace {

std::string g_counter_path;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "ids_bench: %s\n", message.c_str());
  std::exit(1);
}

void make_counter_file() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir = "/dev/shm";
  if (access(dir.c_str(), W_OK) != 0) dir = tmpdir != nullptr ? tmpdir : "/tmp";
  g_counter_path = dir + "/snapsafe-ids-bench." + std::to_string(getpid());
  if (const std::string error = snapsafe::genid::counter_file_create(g_counter_path);
      !error.empty()) {
    die(error);
  }
}

enum class Source { kCounterFile, kKernel };

template <Source kSource>
void activate(const benchmark::State&) {
  unsetenv("SNAPSAFE_SYSGENID_PATH");
  unsetenv("SNAPSAFE_VMCLOCK_PATH");
  if (kSource == Source::kCounterFile) {
    setenv("SNAPSAFE_SOURCE", "counter-file", 1);
    setenv("SNAPSAFE_COUNTER_FILE", g_counter_path.c_str(), 1);
  } else {
    setenv("SNAPSAFE_SOURCE", "kernel", 1);
  }
  snapsafe::genid::reinit_for_testing();
  const auto want = kSource == Source::kCounterFile ? snapsafe::genid::SourceKind::kCounterFile
                                                    : snapsafe::genid::SourceKind::kKernel;
  if (snapsafe::genid::init().active.kind != want) die("could not select the source");
}

// Runs the body on a fresh thread (see top).
template <void (*kBody)(benchmark::State&)>
void on_fresh_thread(benchmark::State& state) {
  std::thread thread([&state] { kBody(state); });
  thread.join();
}

// ---- snapsafe ----

template <snapsafe::Uuid (*kMake)()>
void bm_text(benchmark::State& state) {
  (void)kMake();  // seeds this thread's state
  for (auto _ : state) {
    std::string text = snapsafe::uuid_to_string(kMake());
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
}

template <snapsafe::Uuid (*kMake)()>
void bm_chars(benchmark::State& state) {
  (void)kMake();
  char text[36];
  for (auto _ : state) {
    snapsafe::uuid_to_chars(kMake(), text);
    benchmark::DoNotOptimize(text);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

template <snapsafe::Uuid (*kMake)()>
void bm_bytes(benchmark::State& state) {
  (void)kMake();
  for (auto _ : state) {
    snapsafe::Uuid uuid = kMake();
    benchmark::DoNotOptimize(uuid);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_request_id(benchmark::State& state) {
  (void)snapsafe::request_id();
  for (auto _ : state) {
    std::string id = snapsafe::request_id();
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_nonce96(benchmark::State& state) {
  (void)snapsafe::nonce96();
  for (auto _ : state) {
    snapsafe::Nonce96 n = snapsafe::nonce96();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_nonce_sequence(benchmark::State& state) {
  snapsafe::NonceSequence sequence;
  for (auto _ : state) {
    snapsafe::Nonce96 n = sequence.next();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_parse(benchmark::State& state) {
  const std::string text = snapsafe::uuid_v7_string();
  for (auto _ : state) {
    snapsafe::UuidParseResult parsed = snapsafe::parse_uuid(text, 7);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}

// ---- libuuid ----

void bm_libuuid_text(benchmark::State& state) {
  for (auto _ : state) {
    uuid_t uuid;
    uuid_generate_random(uuid);
    char buffer[37];
    uuid_unparse_lower(uuid, buffer);
    std::string text(buffer, 36);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_libuuid_chars(benchmark::State& state) {
  for (auto _ : state) {
    uuid_t uuid;
    uuid_generate_random(uuid);
    char buffer[37];
    uuid_unparse_lower(uuid, buffer);
    benchmark::DoNotOptimize(buffer);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_libuuid_bytes(benchmark::State& state) {
  for (auto _ : state) {
    uuid_t uuid;
    uuid_generate_random(uuid);
    benchmark::DoNotOptimize(uuid);
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_libuuid_parse(benchmark::State& state) {
  const std::string text = snapsafe::uuid_v7_string();
  for (auto _ : state) {
    uuid_t uuid;
    benchmark::DoNotOptimize(uuid_parse(text.c_str(), uuid));
    benchmark::DoNotOptimize(uuid);
  }
  state.SetItemsProcessed(state.iterations());
}

void add(const std::string& name, void (*body)(benchmark::State&),
         void (*setup)(const benchmark::State&)) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), body)->UseRealTime();
  if (setup != nullptr) b->Setup(setup);
}

template <Source kSource>
void add_snapsafe(const std::string& impl) {
  constexpr auto setup = &activate<kSource>;
  add("uuid_v4_text/" + impl, on_fresh_thread<bm_text<snapsafe::uuid_v4>>, setup);
  add("uuid_v7_text/" + impl, on_fresh_thread<bm_text<snapsafe::uuid_v7>>, setup);
  add("uuid_v4_chars/" + impl, on_fresh_thread<bm_chars<snapsafe::uuid_v4>>, setup);
  add("uuid_v7_chars/" + impl, on_fresh_thread<bm_chars<snapsafe::uuid_v7>>, setup);
  add("uuid_v4_bytes/" + impl, on_fresh_thread<bm_bytes<snapsafe::uuid_v4>>, setup);
  add("uuid_v7_bytes/" + impl, on_fresh_thread<bm_bytes<snapsafe::uuid_v7>>, setup);
  add("request_id/" + impl, on_fresh_thread<bm_request_id>, setup);
  add("nonce96/" + impl, on_fresh_thread<bm_nonce96>, setup);
  add("nonce_sequence/" + impl, on_fresh_thread<bm_nonce_sequence>, setup);
}

}  // namespace

int main(int argc, char** argv) {
  make_counter_file();
  add_snapsafe<Source::kCounterFile>("snapsafe_counter_file");
  add_snapsafe<Source::kKernel>("snapsafe_kernel");
  add("uuid_v4_text/libuuid", bm_libuuid_text, nullptr);
  add("uuid_v4_chars/libuuid", bm_libuuid_chars, nullptr);
  add("uuid_v4_bytes/libuuid", bm_libuuid_bytes, nullptr);
  add("parse_uuid/snapsafe", bm_parse, &activate<Source::kCounterFile>);
  add("parse_uuid/libuuid", bm_libuuid_parse, nullptr);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  unlink(g_counter_path.c_str());
  return 0;
}
