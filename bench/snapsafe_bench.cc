// File: bench/snapsafe_bench.cc
//
// snapsafe's benchmark suite (issue 4): per-draw cost and reseed latency, against the
// alternatives, in one binary so every ratio compares numbers from the same run.
//
// Benchmarks are named "<operation>/<implementation>" (Google Benchmark appends
// "/real_time" and "/threads:N"); every one is timed in wall-clock time (UseRealTime):
//   u64, fill16 (a UUID's bytes), fill32, fill4096 (bytes/s too), uuid_string
//     x snapsafe_sysgenid_mmap | snapsafe_sysgenid_syscall | snapsafe_counter_file |
//       snapsafe_kernel | snapsafe_nocheck (draw_with<false>: the same fast path with both
//       generation reads removed) | random_device | getrandom | vdso_getrandom |
//       arc4random | openssl_rand | absl_bitgen | mt19937_64
//   keystream/<cipher>_16k: OpenSSL EVP encrypting a 16 KiB buffer in place (the ceiling)
//   u64_threads/<impl>/threads:1|2: throughput scaling
//   u64/snapsafe_draw_sysgenid_{mmap,syscall}: draw_with<true>, shaped like the no-check
//     baseline, for check_{mmap,syscall}_ns
//   keystream/aes256ctr_4k: the same in 4096-byte calls (EVP's per-call cost)
//   component/*: the pieces of a reseed (seed derivation, re-key, buffer refill, wipe,
//     and the CPUID / RDSEED / RDRAND instructions the seed derivation runs), and a
//     4096-byte bulk step
//
// The generation sources are simulated with regular files on tmpfs (/dev/shm, else
// $TMPDIR or /tmp): a 4096-byte SysGenID page holding a u32 at offset 0 (in syscall mode
// the check is then a pread() at offset 0, standing in for the device's read()), and a
// counter file made by genid::counter_file_create. A benchmark's Setup() points the
// SNAPSAFE_* environment at one of them, calls genid::reinit_for_testing() (only the main
// thread exists then) and draws once so the thread state reseeds under it.
//
// After the benchmarks, plain code (clock_gettime) measures two latency distributions and
// writes them as JSON to --latency_out=FILE (else to stderr):
//   reseed: bump the simulated SysGenID page through a separate writable MAP_SHARED
//     mapping, time from the bump to the completion of the next u64 draw; --latency_bumps.
//   first_draw: the first u64 draw of a freshly spawned thread; --latency_threads.
// and, in "paired", the ratios of issue 15 timed drift-free: snapsafe and its anchor in
// alternating bursts on one thread (u64 against absl::BitGen, a 4096-byte fill against
// the raw keystream), and the reseed, one getrandom(32) system call and the reseed's
// floor (what holes 1, 2 and 4 leave no way around) in rotating blocks; the 4096-byte
// fill's floor is the bulk step alone (the draw path's: in the page, expand, keystream,
// wipe; under SNAPSAFE_KEYSTREAM=evp, re-key, keystream, park); and, on a machine with
// the vDSO getrandom and RDRAND, a kernel-backed 16-byte draw against the vDSO call, beside
// its floor (the vDSO call and two raw RDRAND words XORed over it).
//
// Usage (bench/run does all of this):
//   bazel build --config=bench //bench:snapsafe_bench
//   "$(bazel info --config=bench bazel-bin)"/bench/snapsafe_bench
//       --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.15
//       --benchmark_format=json --latency_out=latency.json
//       > benchmarks.json
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <mutex>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "absl/random/random.h"
#include "rng/internal/hardware_rng.h"
#include "rng/internal/vdso_getrandom.h"
#include "benchmark/benchmark.h"
#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/select.h"
#include "genid/sysgenid.h"
#include "rng/bit_gen.h"
#include "rng/fill.h"
#include "rng/ids.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/keystream.h"
#include "rng/internal/seed.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/thread_state.h"

namespace {

namespace rng_internal = snapsafe::rng_internal;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "snapsafe_bench: %s\n", what.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------------------------------
// Simulated generation sources.

enum class Source { kSysgenidMmap, kSysgenidSyscall, kCounterFile, kKernel };

class SimulatedSources {
 public:
  SimulatedSources() {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string parent = access("/dev/shm", W_OK) == 0
                             ? "/dev/shm"
                             : (tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp");
    std::string templ = parent + "/snapsafe_bench.XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) die("mkdtemp " + templ + ": " + std::strerror(errno));
    dir_ = templ;
    sysgenid_path_ = dir_ + "/sysgenid";
    counter_path_ = dir_ + "/generation";
    const int fd = open(sysgenid_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) die("create " + sysgenid_path_);
    // The writer's side: a separate writable shared mapping of the same file, as the
    // device's backend would change the page the readers map read-only.
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (page == MAP_FAILED) die("mmap " + sysgenid_path_);
    sysgenid_page_ = static_cast<uint32_t*>(page);
    const std::string error = snapsafe::genid::counter_file_create(counter_path_);
    if (!error.empty()) die(error);
  }
  ~SimulatedSources() {
    unlink(sysgenid_path_.c_str());
    unlink(counter_path_.c_str());
    rmdir(dir_.c_str());
  }

  // Makes `source` the process's active source. Only the calling thread may be drawing.
  void activate(Source source) const {
    switch (source) {
      case Source::kSysgenidMmap:
      case Source::kSysgenidSyscall:
        snapsafe::genid::sysgenid_accept_regular_file_for_testing(true);  // a simulated page
        setenv("SNAPSAFE_SOURCE", "sysgenid", 1);
        setenv("SNAPSAFE_SYSGENID_PATH", sysgenid_path_.c_str(), 1);
        setenv("SNAPSAFE_SYSGENID_MODE", source == Source::kSysgenidMmap ? "mmap" : "syscall",
               1);
        break;
      case Source::kCounterFile:
        setenv("SNAPSAFE_SOURCE", "counter-file", 1);
        setenv("SNAPSAFE_COUNTER_FILE", counter_path_.c_str(), 1);
        break;
      case Source::kKernel:
        setenv("SNAPSAFE_SOURCE", "kernel", 1);
        break;
    }
    snapsafe::genid::reinit_for_testing();
    const snapsafe::genid::SourceKind want =
        source == Source::kSysgenidMmap      ? snapsafe::genid::SourceKind::kSysgenidMmap
        : source == Source::kSysgenidSyscall ? snapsafe::genid::SourceKind::kSysgenidSyscall
        : source == Source::kCounterFile     ? snapsafe::genid::SourceKind::kCounterFile
                                             : snapsafe::genid::SourceKind::kKernel;
    if (snapsafe::genid::init().active.kind != want) {
      std::string notes;
      for (const std::string& note : snapsafe::genid::init().notes) notes += " " + note;
      die(std::string("could not activate source ") + snapsafe::genid::source_name(want) +
          ":" + notes);
    }
    (void)snapsafe::random_u64();  // reseed this thread's state under the new source
  }

  // Changes the simulated SysGenID generation, as the device backend would.
  void bump_sysgenid() const { __atomic_add_fetch(sysgenid_page_, 1, __ATOMIC_SEQ_CST); }

 private:
  std::string dir_, sysgenid_path_, counter_path_;
  uint32_t* sysgenid_page_ = nullptr;
};

SimulatedSources* g_sources = nullptr;

template <Source kSource>
void setup_source(const benchmark::State&) {
  g_sources->activate(kSource);
}

// ---------------------------------------------------------------------------------------
// Implementations: each has u64() and fill(out, size); one instance per benchmark thread.
// The wrappers are forced inline so each loop calls the library exactly as a caller's own
// code would, with the size a compile-time constant; what the library itself inlines (or
// not) is left to the compiler, as it is for every application.
#define BENCH_INLINE [[gnu::always_inline]] inline

template <Source kSource>
struct Snapsafe {
  BENCH_INLINE uint64_t u64() { return snapsafe::random_u64(); }
  BENCH_INLINE void fill(void* out, size_t size) { snapsafe::fill(out, size); }
  BENCH_INLINE std::string uuid() { return snapsafe::uuid_v4_string(); }
};

// Generators that fill bytes: a u64 is an 8-byte fill.
template <class Self>
struct BytesU64 {
  BENCH_INLINE uint64_t u64() {
    uint64_t value;
    static_cast<Self*>(this)->fill(&value, sizeof value);
    return value;
  }
};

// rng_internal::draw_with<kCheck> called directly, so the check and no-check variants
// compile to the same shape. kCheck = false is the same fast path with both generation
// reads removed: never snapshot-safe, only the baseline for the check.
template <bool kCheck>
struct SnapsafeDraw : BytesU64<SnapsafeDraw<kCheck>> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (const int error = rng_internal::draw_with<kCheck>(out, size)) {
      rng_internal::throw_entropy_error(error);
    }
  }
};
using SnapsafeNoCheck = SnapsafeDraw<false>;

// Generators that produce words: a fill is a loop of u64 outputs.
template <class Self>
struct WordFill {
  BENCH_INLINE void fill(void* out, size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    while (size >= 8) {
      const uint64_t word = static_cast<Self*>(this)->u64();
      std::memcpy(bytes, &word, 8);
      bytes += 8;
      size -= 8;
    }
    if (size > 0) {
      const uint64_t word = static_cast<Self*>(this)->u64();
      std::memcpy(bytes, &word, size);
    }
  }
};

struct RandomDevice : WordFill<RandomDevice> {
  std::random_device device;  // libstdc++'s "default" token
  BENCH_INLINE uint64_t u64() { return (uint64_t{device()} << 32) | device(); }
};

struct Getrandom : BytesU64<Getrandom> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (rng_internal::kernel_fill(out, size) != 0) die("getrandom failed");  // the syscall
  }
};

struct VdsoGetrandom : BytesU64<VdsoGetrandom> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (snapsafe::rng_internal::vdso_getrandom(out, size) != 0) die("vDSO getrandom failed");
  }
};

struct Arc4random : BytesU64<Arc4random> {
  BENCH_INLINE void fill(void* out, size_t size) { arc4random_buf(out, size); }
};

struct OpensslRand : BytesU64<OpensslRand> {
  BENCH_INLINE void fill(void* out, size_t size) {
    if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(size)) != 1) {
      die("RAND_bytes failed");
    }
  }
};

struct AbslBitGen : WordFill<AbslBitGen> {
  absl::BitGen gen;
  BENCH_INLINE uint64_t u64() { return gen(); }
};

struct Mt19937 : WordFill<Mt19937> {
  std::mt19937_64 gen{std::random_device{}()};
  BENCH_INLINE uint64_t u64() { return gen(); }
};

// Whether the implementation can run here; skips the benchmark with the reason if not.
template <class Impl>
bool available(benchmark::State& state) {
  if constexpr (std::is_same_v<Impl, VdsoGetrandom>) {
    if (!snapsafe::rng_internal::vdso_getrandom_available()) {
      state.SkipWithError(snapsafe::rng_internal::vdso_getrandom_unavailable_reason().c_str());
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Benchmark bodies.

template <class Impl>
void bm_u64(benchmark::State& state) {
  if (!available<Impl>(state)) return;
  Impl impl;
  benchmark::DoNotOptimize(impl.u64());  // this thread's first draw (state creation)
  for (auto _ : state) {
    benchmark::DoNotOptimize(impl.u64());
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Impl, size_t kSize>
void bm_fill(benchmark::State& state) {
  if (!available<Impl>(state)) return;
  Impl impl;
  alignas(64) unsigned char buffer[kSize];
  unsigned char* p = buffer;
  impl.fill(buffer, kSize);
  for (auto _ : state) {
    impl.fill(buffer, kSize);
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kSize));
  state.SetItemsProcessed(state.iterations());
}

template <class Impl>
void bm_uuid_string(benchmark::State& state) {
  Impl impl;
  benchmark::DoNotOptimize(impl.uuid());
  for (auto _ : state) {
    benchmark::DoNotOptimize(impl.uuid());
  }
  state.SetItemsProcessed(state.iterations());
}

// Kernel-backed mode serves a thread that has no state: the benchmark body runs in a
// fresh thread (the main thread keeps the state it made under earlier sources, which a
// re-selection does not take away; see genid::reinit_for_testing).
template <void (*kBody)(benchmark::State&)>
void on_fresh_thread(benchmark::State& state) {
  std::thread thread([&state] { kBody(state); });
  thread.join();
}

// A range of kWords 64-bit integers: BitGen's bulk member (what C++26's
// std::ranges::generate_random calls) against a loop of single draws.
template <size_t kWords, bool kBulk>
void bm_generate_random(benchmark::State& state) {
  snapsafe::BitGen gen;
  static std::array<uint64_t, kWords> words;
  uint64_t* p = words.data();
  for (auto _ : state) {
    if constexpr (kBulk) {
      gen.generate_random(words);
    } else {
      for (uint64_t& w : words) w = gen();
    }
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kWords * 8);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kWords);
}

// The raw keystream ceiling: `cipher_name` encrypting a kBytes buffer in place, one EVP
// call per op(). Used by bm_keystream and, as the anchor of a pair, by measure_pairs.
template <int kBytes>
struct KeystreamOp {
  EVP_CIPHER* cipher;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  alignas(64) static inline uint8_t buffer[kBytes];
  bool ready = false;
  explicit KeystreamOp(const char* cipher_name = "AES-256-CTR")
      : cipher(EVP_CIPHER_fetch(nullptr, cipher_name, nullptr)) {
    uint8_t key[32];
    const uint8_t iv[16] = {};
    RAND_bytes(key, sizeof key);
    ready = cipher != nullptr && ctx != nullptr &&
            EVP_EncryptInit_ex2(ctx, cipher, key, iv, nullptr) == 1;
  }
  ~KeystreamOp() {
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
  }
  BENCH_INLINE void op() {
    int written = 0;
    if (EVP_EncryptUpdate(ctx, buffer, &written, buffer, kBytes) != 1) die("EVP_EncryptUpdate");
    uint8_t* p = buffer;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

template <int kBytes>
void bm_keystream(benchmark::State& state, const char* cipher_name) {
  KeystreamOp<kBytes> keystream(cipher_name);
  if (!keystream.ready) {
    state.SkipWithError("cipher unavailable");
    return;
  }
  for (auto _ : state) keystream.op();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBytes);
}

// Pieces of a reseed, to explain the reseed latency.
void bm_component_derive_seed(benchmark::State& state) {
  uint8_t key[32];
  for (auto _ : state) {
    if (rng_internal::derive_seed(1, key) != 0) die("derive_seed");
    benchmark::DoNotOptimize(key);
  }
}

// A thread state of the bench's own (not the thread's) and the cipher context the
// keystream in use needs (state_keystream.h: none in the page, an EVP context under
// SNAPSAFE_KEYSTREAM=evp), to time the steps the draw path makes, through its seam.
struct StepState {
  rng_internal::ThreadState* st = new rng_internal::ThreadState{};
  EVP_CIPHER_CTX* ctx = nullptr;
  explicit StepState(uint8_t key_byte) {
    st->key[0] = key_byte;
    if (rng_internal::state_keystream_in_page()) return;
    ctx = rng_internal::keystream_new();
    if (ctx == nullptr) die("keystream_new");
  }
  ~StepState() {
    rng_internal::keystream_free(ctx);
    delete st;
  }
};

// A step's fixed cost: the next key alone (in the page: expand, 2 blocks, wipe the
// schedule, clear the registers; evp: key the context, 2 blocks, park on the zero key).
void bm_component_step_fixed(benchmark::State& state) {
  StepState s(1);
  uint8_t none[16];
  for (auto _ : state) {
    if (!rng_internal::state_keystream_step(s.st, s.ctx, none, 0)) die("keystream_step");
    benchmark::DoNotOptimize(s.st->key);
  }
}

// One refill of the thread buffer: a step over kBufferBytes (a key step included).
void bm_component_refill(benchmark::State& state) {
  StepState s(2);
  alignas(64) static uint8_t buffer[rng_internal::kBufferBytes];
  uint8_t* p = buffer;
  for (auto _ : state) {
    if (!rng_internal::state_keystream_step(s.st, s.ctx, buffer, sizeof buffer)) {
      die("keystream_step");
    }
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(sizeof buffer));
}

// A 4096-byte fill's bulk step alone, as the draw path makes it (in the page: expand,
// 4096 bytes of keystream straight to the output, wipe; evp: re-key, keystream, park); the
// next key is handed in, as produce() takes it from the buffer. What a 4096-byte fill
// cannot go below (component/bulk_step_4096, and the bound of the fill's paired ratio).
struct BulkStep4096Op {
  StepState s{3};
  const uint8_t next_key[32] = {4};
  alignas(64) static inline uint8_t out[4096];
  BENCH_INLINE void op() {
    if (!rng_internal::state_keystream_bulk_step(s.st, s.ctx, out, sizeof out, next_key)) {
      die("keystream_bulk_step");
    }
    uint8_t* p = out;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

void bm_component_bulk_step_4096(benchmark::State& state) {
  BulkStep4096Op step;
  for (auto _ : state) step.op();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(sizeof step.out));
}

#if defined(__x86_64__)
// The instructions a reseed's seed derivation runs: CPUID (a VM exit under a hypervisor),
// RDSEED and RDRAND.
void bm_component_cpuid(benchmark::State& state) {
  for (auto _ : state) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    benchmark::DoNotOptimize(__get_cpuid(1, &eax, &ebx, &ecx, &edx));
    benchmark::DoNotOptimize(ecx);
  }
}

__attribute__((target("rdseed"))) void bm_component_rdseed64(benchmark::State& state) {
  for (auto _ : state) {
    unsigned long long value = 0;
    benchmark::DoNotOptimize(_rdseed64_step(&value));
    benchmark::DoNotOptimize(value);
  }
}

__attribute__((target("rdrnd"))) void bm_component_rdrand64(benchmark::State& state) {
  for (auto _ : state) {
    unsigned long long value = 0;
    benchmark::DoNotOptimize(_rdrand64_step(&value));
    benchmark::DoNotOptimize(value);
  }
}

bool cpu_has_rdseed_rdrand() {
  unsigned int eax, ebx, ecx, edx;
  const bool rdrand = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_RDRND);
  const bool rdseed = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & bit_RDSEED);
  return rdrand && rdseed;
}
#endif

// The wipe of an unread buffer that a reseed does first.
void bm_component_cleanse(benchmark::State& state) {
  alignas(64) static uint8_t buffer[rng_internal::kBufferBytes];
  uint8_t* p = buffer;
  for (auto _ : state) {
    OPENSSL_cleanse(buffer, sizeof buffer);
    benchmark::DoNotOptimize(p);
  }
}

// ---------------------------------------------------------------------------------------
// Registration.

using Body = void (*)(benchmark::State&);
using Setup = void (*)(const benchmark::State&);

benchmark::internal::Benchmark* add(const std::string& name, Body body, Setup setup = nullptr) {
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(name.c_str(), body);
  b->UseRealTime()->Unit(benchmark::kNanosecond);
  if (setup != nullptr) b->Setup(setup);
  return b;
}

template <class Impl>
void add_ops(const std::string& impl, Setup setup, bool with_fresh_thread = false) {
  if (with_fresh_thread) {
    add("u64/" + impl, on_fresh_thread<bm_u64<Impl>>, setup);
    add("fill16/" + impl, on_fresh_thread<bm_fill<Impl, 16>>, setup);
    add("fill32/" + impl, on_fresh_thread<bm_fill<Impl, 32>>, setup);
    add("fill4096/" + impl, on_fresh_thread<bm_fill<Impl, 4096>>, setup);
  } else {
    add("u64/" + impl, bm_u64<Impl>, setup);
    add("fill16/" + impl, bm_fill<Impl, 16>, setup);
    add("fill32/" + impl, bm_fill<Impl, 32>, setup);
    add("fill4096/" + impl, bm_fill<Impl, 4096>, setup);
  }
}

void register_benchmarks() {
  constexpr Source kMmap = Source::kSysgenidMmap;
  constexpr Source kSyscall = Source::kSysgenidSyscall;
  constexpr Source kCounter = Source::kCounterFile;
  constexpr Source kKernel = Source::kKernel;

  // snapsafe, per generation source, and the no-check baseline.
  add_ops<Snapsafe<kMmap>>("snapsafe_sysgenid_mmap", setup_source<kMmap>);
  add("uuid_string/snapsafe_sysgenid_mmap", bm_uuid_string<Snapsafe<kMmap>>, setup_source<kMmap>);
  add_ops<SnapsafeNoCheck>("snapsafe_nocheck", setup_source<kMmap>);
  // The check's cost: draw_with<true> against draw_with<false>, identical call shape.
  add("u64/snapsafe_draw_sysgenid_mmap", bm_u64<SnapsafeDraw<true>>, setup_source<kMmap>);
  add("u64/snapsafe_draw_sysgenid_syscall", bm_u64<SnapsafeDraw<true>>,
      setup_source<kSyscall>);
  add_ops<Snapsafe<kSyscall>>("snapsafe_sysgenid_syscall", setup_source<kSyscall>);
  add("uuid_string/snapsafe_sysgenid_syscall", bm_uuid_string<Snapsafe<kSyscall>>,
      setup_source<kSyscall>);
  add_ops<Snapsafe<kCounter>>("snapsafe_counter_file", setup_source<kCounter>);
  add("uuid_string/snapsafe_counter_file", bm_uuid_string<Snapsafe<kCounter>>,
      setup_source<kCounter>);
  add_ops<Snapsafe<kKernel>>("snapsafe_kernel", setup_source<kKernel>, true);
  add("uuid_string/snapsafe_kernel", on_fresh_thread<bm_uuid_string<Snapsafe<kKernel>>>,
      setup_source<kKernel>);

  // The alternatives.
  add("u64/random_device", bm_u64<RandomDevice>);
  add("fill16/random_device", bm_fill<RandomDevice, 16>);
  add_ops<Getrandom>("getrandom", nullptr);
  add_ops<VdsoGetrandom>("vdso_getrandom", nullptr);
  add_ops<Arc4random>("arc4random", nullptr);
  add_ops<OpensslRand>("openssl_rand", nullptr);
  add_ops<AbslBitGen>("absl_bitgen", nullptr);
  add_ops<Mt19937>("mt19937_64", nullptr);

  // The raw keystream ceiling.
  benchmark::RegisterBenchmark("keystream/aes256ctr_16k", bm_keystream<16384>, "AES-256-CTR")
      ->UseRealTime();
  // The same cipher in calls of a 4096-byte fill's size: the per-call cost of EVP.
  benchmark::RegisterBenchmark("keystream/aes256ctr_4k", bm_keystream<4096>, "AES-256-CTR")
      ->UseRealTime();
  benchmark::RegisterBenchmark("keystream/aes128ctr_16k", bm_keystream<16384>, "AES-128-CTR")
      ->UseRealTime();
  benchmark::RegisterBenchmark("keystream/chacha20_16k", bm_keystream<16384>, "ChaCha20")
      ->UseRealTime();

  // Thread scaling (each thread has its own state or generator).
  add("u64_threads/snapsafe_sysgenid_mmap", bm_u64<Snapsafe<kMmap>>, setup_source<kMmap>)
      ->Threads(1)
      ->Threads(2);
  add("u64_threads/openssl_rand", bm_u64<OpensslRand>)->Threads(1)->Threads(2);
  add("u64_threads/absl_bitgen", bm_u64<AbslBitGen>)->Threads(1)->Threads(2);

  // What a reseed is made of.
  add("generate_random/bulk_128", bm_generate_random<128, true>, setup_source<kMmap>);
  add("generate_random/loop_128", bm_generate_random<128, false>, setup_source<kMmap>);
  add("generate_random/bulk_1024", bm_generate_random<1024, true>, setup_source<kMmap>);
  add("generate_random/loop_1024", bm_generate_random<1024, false>, setup_source<kMmap>);

  add("component/derive_seed", bm_component_derive_seed);
  add("component/step_fixed", bm_component_step_fixed);
  add("component/refill_8128", bm_component_refill);
  add("component/bulk_step_4096", bm_component_bulk_step_4096);
  add("component/cleanse_8128", bm_component_cleanse);
#if defined(__x86_64__)
  add("component/cpuid", bm_component_cpuid);
  if (cpu_has_rdseed_rdrand()) {
    add("component/rdseed64", bm_component_rdseed64);
    add("component/rdrand64", bm_component_rdrand64);
  }
#endif
}

// ---------------------------------------------------------------------------------------
// Latency distributions, in plain code.

uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

struct Summary {
  size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, min = 0, mean = 0;
};

// The q-quantile (nearest rank) of a sorted, non-empty vector.
template <class T>
double nearest_rank(const std::vector<T>& sorted, double q) {
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

Summary summarize_us(std::vector<uint64_t> ns) {
  Summary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto at = [&ns](double q) { return nearest_rank(ns, q) / 1000.0; };
  s.n = ns.size();
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.min = static_cast<double>(ns.front()) / 1000.0;
  s.max = static_cast<double>(ns.back()) / 1000.0;
  double total = 0;
  for (uint64_t v : ns) total += static_cast<double>(v);
  s.mean = total / static_cast<double>(ns.size()) / 1000.0;
  return s;
}

std::string json(const Summary& s) {
  char out[512];
  std::snprintf(out, sizeof out,
                "{\"n\": %zu, \"p50_us\": %.4f, \"p90_us\": %.4f, \"p99_us\": %.4f, "
                "\"p999_us\": %.4f, \"max_us\": %.4f, \"min_us\": %.4f, \"mean_us\": %.4f}",
                s.n, s.p50, s.p90, s.p99, s.p999, s.max, s.min, s.mean);
  return out;
}

// N threads, each with a seeded state, wait at a barrier; the main thread bumps the
// generation and releases them; each times its own next u64 draw (which must reseed),
// so the wake-up is not counted but the contention of N reseeds at once is (2 cores
// here: N > 2 also counts being preempted by the other reseeding threads). The round
// time is from the bump until the last thread is done (wake-ups included). Control: the
// same per-thread draw in a round without a bump.
std::string measure_parallel_reseed(int n, int rounds) {
  std::vector<uint64_t> per_thread, control, round;
  std::mutex lock;
  std::barrier start(n + 1), done(n + 1);
  std::atomic<bool> bump_round{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&] {
      benchmark::DoNotOptimize(snapsafe::random_u64());  // seeded before the first round
      std::vector<uint64_t> mine, mine_control;
      for (int r = 0; r < 2 * rounds; ++r) {
        start.arrive_and_wait();
        const uint64_t t0 = now_ns();
        benchmark::DoNotOptimize(snapsafe::random_u64());
        const uint64_t t1 = now_ns();
        (bump_round.load() ? mine : mine_control).push_back(t1 - t0);
        done.arrive_and_wait();
      }
      std::lock_guard<std::mutex> guard(lock);
      per_thread.insert(per_thread.end(), mine.begin(), mine.end());
      control.insert(control.end(), mine_control.begin(), mine_control.end());
    });
  }
  const uint64_t reseeds_before = rng_internal::reseed_count();
  for (int r = 0; r < 2 * rounds; ++r) {
    const bool bump = r % 2 == 0;
    bump_round.store(bump);
    const uint64_t t0 = now_ns();
    if (bump) g_sources->bump_sysgenid();
    start.arrive_and_wait();
    done.arrive_and_wait();
    if (bump) round.push_back(now_ns() - t0);
  }
  for (std::thread& thread : threads) thread.join();
  const uint64_t reseeds = rng_internal::reseed_count() - reseeds_before;
  return "{\"threads\": " + std::to_string(n) + ", \"rounds\": " + std::to_string(rounds) +
         ", \"reseeds_observed\": " + std::to_string(reseeds) +
         ", \"per_thread\": " + json(summarize_us(per_thread)) +
         ", \"control_no_bump\": " + json(summarize_us(control)) +
         ", \"round_bump_to_last_done\": " + json(summarize_us(round)) + "}";
}

// What one thread costs in memory: its state mapping (key, buffer, bookkeeping), the
// vDSO getrandom state it maps when a draw is served by the kernel (kernel-backed mode,
// a signal handler's draw), and the OpenSSL cipher context it keys (heap bytes, from
// mallinfo2 around creating one).
std::string measure_memory_per_thread() {
  size_t vdso_buffered = 0, vdso_kernel = 0;
  std::thread buffered([&vdso_buffered] {
    benchmark::DoNotOptimize(snapsafe::random_u64());
    rng_internal::vdso_getrandom_state_for_testing(&vdso_buffered);
  });
  buffered.join();
  // Many at once: malloc's per-thread cache (tcache) counts as in use in mallinfo2, so a
  // single allocation it serves shows no change.
  constexpr int kContexts = 256;
  std::vector<EVP_CIPHER_CTX*> contexts;
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < kContexts; ++i) contexts.push_back(rng_internal::keystream_new());
  const size_t evp_bytes = (mallinfo2().uordblks - before) / kContexts;
  for (EVP_CIPHER_CTX* ctx : contexts) rng_internal::keystream_free(ctx);
  uint8_t ignored[16];
  std::thread kernel([&vdso_kernel, &ignored] {
    if (snapsafe::rng_internal::vdso_getrandom(ignored, sizeof ignored) == 0) {
      rng_internal::vdso_getrandom_state_for_testing(&vdso_kernel);
    }
  });
  kernel.join();
  return "{\"state_mapping_bytes\": " + std::to_string(rng_internal::kStateBytes) +
         ", \"evp_cipher_ctx_heap_bytes\": " + std::to_string(evp_bytes) +
         ", \"vdso_state_bytes_buffered_thread\": " + std::to_string(vdso_buffered) +
         ", \"vdso_state_bytes_kernel_served_thread\": " + std::to_string(vdso_kernel) + "}";
}

// Times the first and second 16-byte fill of `threads` threads, created one after
// another; with `empty_pool`, the state pools (thread states and vDSO states) are emptied
// before each.
void time_new_threads_first_fills(int threads, bool empty_pool, std::vector<uint64_t>* first,
                                  std::vector<uint64_t>* second) {
  first->reserve(static_cast<size_t>(threads));
  second->reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    if (empty_pool) {
      rng_internal::thread_state_pool_clear();
      rng_internal::vdso_getrandom_pool_clear();
    }
    std::thread thread([first, second] {
      alignas(16) unsigned char bytes[16];
      unsigned char* p = bytes;
      const uint64_t t0 = now_ns();
      snapsafe::fill(bytes, sizeof bytes);
      benchmark::DoNotOptimize(p);
      const uint64_t t1 = now_ns();
      snapsafe::fill(bytes, sizeof bytes);
      benchmark::DoNotOptimize(p);
      const uint64_t t2 = now_ns();
      first->push_back(t1 - t0);
      second->push_back(t2 - t1);
    });
    thread.join();
  }
}

// ---------------------------------------------------------------------------------------
// Paired ratios. Each target ratio compares snapsafe with an anchor. Google Benchmark
// times the two in separate 0.15 s repetitions, seconds apart, and this host's speed moves
// within seconds (absl's u64 took 2.8 ns in one run and 4.6 ns in the next). Here the two
// sides run in alternating bursts of ~10-50 us on one thread, A first in even pairs and B
// first in odd ones, and the ratio is the median of the per-pair ratios: a drift slower
// than a pair hits both sides alike.

// The sides of the pairs, each with op() (the anchors KeystreamOp and BulkStep4096Op are
// defined with their benchmarks above): one u64 of an implementation (snapsafe's draw,
// with and without both generation reads for the check's cost, and absl's), and one
// 16-byte fill (kernel-backed snapsafe, the vDSO alone).
template <class Impl>
struct U64Op {
  Impl impl;
  BENCH_INLINE void op() { benchmark::DoNotOptimize(impl.u64()); }
};
template <class Impl>
struct Fill16Op {
  Impl impl;
  uint8_t out[16];
  BENCH_INLINE void op() {
    impl.fill(out, sizeof out);
    benchmark::DoNotOptimize(out);
  }
};
struct SnapsafeFill4096Op {
  alignas(64) static inline uint8_t out[4096];
  BENCH_INLINE void op() {
    snapsafe::fill(out, sizeof out);
    uint8_t* p = out;
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
};

// The floor of a kernel-backed 16-byte draw (SNAPSAFE_SOURCE=kernel): the vDSO and the
// two raw RDRAND words of the mask that a replayed vDSO state needs (kernel_output.h),
// with no health check, call or wipe around them.
__attribute__((target("rdrnd"), noinline)) void raw_rdrand_mask16(uint8_t out[16]) {
  unsigned long long words[2];
  if (!(_rdrand64_step(&words[0]) & _rdrand64_step(&words[1]))) die("RDRAND failed");
  uint64_t mixed[2];
  std::memcpy(mixed, out, sizeof mixed);
  mixed[0] ^= words[0];
  mixed[1] ^= words[1];
  std::memcpy(out, mixed, sizeof mixed);
}
struct MaskedVdso {
  VdsoGetrandom vdso;
  BENCH_INLINE void fill(void* out, size_t size) {
    vdso.fill(out, size);
    raw_rdrand_mask16(static_cast<uint8_t*>(out));
  }
};

// ns per op of `n` back-to-back op() calls.
template <class Op>
BENCH_INLINE double burst_ns_per_op(Op& op, int n) {
  const uint64_t t0 = now_ns();
  for (int i = 0; i < n; ++i) op.op();
  return static_cast<double>(now_ns() - t0) / n;
}

// ns per op of A and of B, p50 of each side, the per-pair ratios A/B and the per-pair
// differences A - B in ns per op (what A adds to B, for the generation check's cost).
std::string paired_json(std::vector<double> a, std::vector<double> b, const char* a_name,
                        const char* b_name) {
  std::vector<double> ratios(a.size()), diffs(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ratios[i] = a[i] / b[i];
    diffs[i] = a[i] - b[i];
  }
  for (std::vector<double>* v : {&a, &b, &ratios, &diffs}) std::sort(v->begin(), v->end());
  char out[512];
  std::snprintf(out, sizeof out,
                "{\"pairs\": %zu, \"%s_p50\": %.4f, \"%s_p50\": %.4f, \"ratio_p10\": %.4f, "
                "\"ratio_p50\": %.4f, \"ratio_p90\": %.4f, \"diff_p50_ns\": %.4f}",
                a.size(), a_name, nearest_rank(a, 0.5), b_name, nearest_rank(b, 0.5),
                nearest_rank(ratios, 0.1), nearest_rank(ratios, 0.5), nearest_rank(ratios, 0.9),
                nearest_rank(diffs, 0.5));
  return out;
}

template <class A, class B>
std::string measure_pairs(int pairs, int burst_a, int burst_b, const char* a_name,
                          const char* b_name) {
  // Locals whose address never escapes, as in bm_u64: the compiler may keep a
  // generator's index in a register across its burst (measured: absl::BitGen on the heap
  // took longer per u64 than in bm_u64).
  A a;
  B b;
  std::vector<double> ta, tb;
  ta.reserve(static_cast<size_t>(pairs));
  tb.reserve(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs / 10; ++i) {  // warm-up, not recorded
    burst_ns_per_op(a, burst_a);
    burst_ns_per_op(b, burst_b);
  }
  for (int i = 0; i < pairs; ++i) {
    if (i % 2 == 0) {
      ta.push_back(burst_ns_per_op(a, burst_a));
      tb.push_back(burst_ns_per_op(b, burst_b));
    } else {
      tb.push_back(burst_ns_per_op(b, burst_b));
      ta.push_back(burst_ns_per_op(a, burst_a));
    }
  }
  return paired_json(ta, tb, a_name, b_name);
}

// The reseed against one getrandom(32) system call, and against the part of a reseed no
// implementation can skip while holes 1, 2 and 4 are closed (the floor): derive_seed (the
// system call, never the vDSO; RDRAND; the clocks; SHA-256) and a reseed step that
// makes only a 16-byte draw's output (the draw path's: in the page, expand, next key,
// wipe; evp: key and IV schedule, next key, park). Each round
// times a block of kBlock of each, back to back as Google Benchmark's loops do (each
// operation after one of its kind; the first of a block is not recorded), the blocks in
// rotating order: a round takes ~0.2 ms, far shorter than the host's drift.
std::string measure_reseed_rounds(int rounds) {
  constexpr int kBlock = 33;
  std::vector<double> syscall_ns, reseed_ns, floor_ns;
  uint8_t seed[32], out[16];
  StepState s(5);
  auto time_syscall = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      if (rng_internal::kernel_fill(seed, sizeof seed) != 0) die("getrandom failed");
      if (k > 0) syscall_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  auto time_reseed = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      g_sources->bump_sysgenid();
      benchmark::DoNotOptimize(snapsafe::random_u64());
      if (k > 0) reseed_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  auto time_floor = [&] {
    for (int k = 0; k < kBlock; ++k) {
      const uint64_t t0 = now_ns();
      if (rng_internal::derive_seed(1, s.st->key) != 0 ||
          !rng_internal::state_keystream_reseed_step(s.st, s.ctx, out, sizeof out)) {
        die("derive_seed / keystream_reseed_step");
      }
      benchmark::DoNotOptimize(out);
      if (k > 0) floor_ns.push_back(static_cast<double>(now_ns() - t0));
    }
  };
  for (int i = 0; i < rounds; ++i) {
    switch (i % 3) {
      case 0: time_syscall(); time_reseed(); time_floor(); break;
      case 1: time_reseed(); time_floor(); time_syscall(); break;
      default: time_floor(); time_syscall(); time_reseed(); break;
    }
  }
  for (std::vector<double>* v : {&syscall_ns, &reseed_ns, &floor_ns}) {
    std::sort(v->begin(), v->end());
  }
  const double syscall_p50 = nearest_rank(syscall_ns, 0.5);
  const double reseed_p50 = nearest_rank(reseed_ns, 0.5), reseed_p99 = nearest_rank(reseed_ns, 0.99);
  const double floor_p50 = nearest_rank(floor_ns, 0.5), floor_p99 = nearest_rank(floor_ns, 0.99);
  char text[640];
  std::snprintf(text, sizeof text,
                "{\"rounds\": %d, \"reseed_p50_ns\": %.1f, \"reseed_p99_ns\": %.1f, "
                "\"getrandom32_p50_ns\": %.1f, \"getrandom32_p99_ns\": %.1f, "
                "\"floor_p50_ns\": %.1f, \"floor_p99_ns\": %.1f, "
                "\"p50_ratio\": %.4f, \"p99_ratio\": %.4f, "
                "\"floor_p50_ratio\": %.4f, \"floor_p99_ratio\": %.4f}",
                rounds, reseed_p50, reseed_p99, syscall_p50, nearest_rank(syscall_ns, 0.99),
                floor_p50, floor_p99, reseed_p50 / syscall_p50, reseed_p99 / syscall_p50,
                floor_p50 / syscall_p50, floor_p99 / syscall_p50);
  return text;
}

std::string measure_paired() {
  g_sources->activate(Source::kSysgenidMmap);
  if (!KeystreamOp<16384>().ready) die("AES-256-CTR unavailable");
  std::string out = "{\n";
  out += "    \"u64_vs_absl\": " +
         measure_pairs<U64Op<Snapsafe<Source::kSysgenidMmap>>, U64Op<AbslBitGen>>(
             4000, 4096, 4096, "snapsafe_ns", "absl_ns") +
         ",\n";
  out += "    \"check_mmap\": " +
         measure_pairs<U64Op<SnapsafeDraw<true>>, U64Op<SnapsafeDraw<false>>>(
             4000, 4096, 4096, "checked_ns", "unchecked_ns") +
         ",\n";
  out += "    \"fill4096_vs_keystream16k\": " +
         measure_pairs<SnapsafeFill4096Op, KeystreamOp<16384>>(4000, 16, 4, "fill4096_ns",
                                                        "keystream16k_ns") +
         ",\n";
  out += "    \"bulk_step4096_vs_keystream16k\": " +
         measure_pairs<BulkStep4096Op, KeystreamOp<16384>>(4000, 16, 4, "bulk_step4096_ns",
                                                    "keystream16k_ns") +
         ",\n";
  if (rng_internal::vdso_getrandom_available() && rng_internal::hardware_rng_present()) {
    g_sources->activate(Source::kKernel);
    // On a new thread: this one keeps the state it made under the mmap source.
    std::thread([&out] {
      out += "    \"kernel_fill16_vs_vdso16\": " +
             measure_pairs<Fill16Op<Snapsafe<Source::kKernel>>, Fill16Op<VdsoGetrandom>>(
                 4000, 64, 64, "kernel_fill16_ns", "vdso16_ns") +
             ",\n";
      out += "    \"masked_floor16_vs_vdso16\": " +
             measure_pairs<Fill16Op<MaskedVdso>, Fill16Op<VdsoGetrandom>>(
                 4000, 64, 64, "floor16_ns", "vdso16_ns") +
             ",\n";
    }).join();
    g_sources->activate(Source::kSysgenidMmap);
  }
  out += "    \"reseed_vs_getrandom32\": " + measure_reseed_rounds(600) + "\n  }";
  return out;
}

std::string measure_latency(int bumps, int threads) {
  g_sources->activate(Source::kSysgenidMmap);
  // Control: the same timed draw without a bump (timer overhead + one buffered draw).
  std::vector<uint64_t> control;
  control.reserve(static_cast<size_t>(bumps));
  for (int i = 0; i < bumps; ++i) {
    const uint64_t t0 = now_ns();
    benchmark::DoNotOptimize(snapsafe::random_u64());
    control.push_back(now_ns() - t0);
  }
  // Reseed: bump, then the next draw must reseed before it returns.
  std::vector<uint64_t> reseed;
  reseed.reserve(static_cast<size_t>(bumps));
  for (int i = 0; i < 200; ++i) {  // warm-up, not recorded
    g_sources->bump_sysgenid();
    benchmark::DoNotOptimize(snapsafe::random_u64());
  }
  const uint64_t reseeds_before = rng_internal::reseed_count();
  for (int i = 0; i < bumps; ++i) {
    const uint64_t t0 = now_ns();
    g_sources->bump_sysgenid();
    benchmark::DoNotOptimize(snapsafe::random_u64());
    reseed.push_back(now_ns() - t0);
  }
  const uint64_t reseeds = rng_internal::reseed_count() - reseeds_before;
  // First draw in a new thread. Threads come one after another, so each takes the state
  // the one before pooled and seeded at its exit (thread_state.h). Then the same with the
  // pool emptied before each thread: a new mapping, madvise calls, page faults, a new
  // cipher context, a reseed.
  std::vector<uint64_t> first, second, first_empty_pool, second_empty_pool;
  time_new_threads_first_fills(threads, /*empty_pool=*/true, &first_empty_pool,
                               &second_empty_pool);
  time_new_threads_first_fills(threads, /*empty_pool=*/false, &first, &second);
  // The same in kernel-backed mode (no thread state, no buffer): the new thread's vDSO
  // getrandom state, taken from those exited threads left, or with the pool emptied mapped.
  std::vector<uint64_t> first_kernel, first_kernel_empty_pool, unused;
  g_sources->activate(Source::kKernel);
  time_new_threads_first_fills(threads, /*empty_pool=*/true, &first_kernel_empty_pool, &unused);
  time_new_threads_first_fills(threads, /*empty_pool=*/false, &first_kernel, &unused);
  g_sources->activate(Source::kSysgenidMmap);
  std::string out = "{\n";
  out += "  \"source\": \"sysgenid-mmap (simulated page on a regular file)\",\n";
  out += "  \"clock\": \"CLOCK_MONOTONIC\",\n";
  out += "  \"reseed\": " + json(summarize_us(reseed)) + ",\n";
  out += "  \"reseeds_observed\": " + std::to_string(reseeds) + ",\n";
  out += "  \"reseeds_expected\": " + std::to_string(bumps) + ",\n";
  out += "  \"control_no_bump\": " + json(summarize_us(control)) + ",\n";
  out += "  \"first_draw_new_thread\": " + json(summarize_us(first)) + ",\n";
  out += "  \"first_draw_new_thread_empty_pool\": " + json(summarize_us(first_empty_pool)) + ",\n";
  out += "  \"first_draw_new_thread_kernel\": " + json(summarize_us(first_kernel)) + ",\n";
  out += "  \"first_draw_new_thread_kernel_empty_pool\": " +
         json(summarize_us(first_kernel_empty_pool)) + ",\n";
  out += "  \"first_draw_bytes\": 16,\n";
  for (const int n : {1, 2, 8, 64}) {
    out += "  \"parallel_reseed_threads_" + std::to_string(n) +
           "\": " + measure_parallel_reseed(n, n == 64 ? 100 : 300) + ",\n";
  }
  out += std::string("  \"keystream\": \"") +
         rng_internal::aes_ctr_variant_name(rng_internal::aes_ctr_variant()) + "\",\n";
  out += "  \"memory_per_thread\": " + measure_memory_per_thread() + ",\n";
  out += "  \"paired\": " + measure_paired() + ",\n";
  out += "  \"second_draw_new_thread\": " + json(summarize_us(second)) + ",\n";
  out += "  \"vdso_getrandom\": " +
         std::string(snapsafe::rng_internal::vdso_getrandom_available()
                         ? "\"available\""
                         : "\"" + snapsafe::rng_internal::vdso_getrandom_unavailable_reason() + "\"") +
         "\n}\n";
  return out;
}

// Takes --NAME=VALUE out of argv (Google Benchmark rejects flags it does not know).
bool take_flag(int* argc, char** argv, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      *value = argv[i] + prefix.size();
      for (int j = i; j + 1 < *argc; ++j) argv[j] = argv[j + 1];
      --*argc;
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string latency_out, bumps = "20000", threads = "500";
  take_flag(&argc, argv, "latency_out", &latency_out);
  take_flag(&argc, argv, "latency_bumps", &bumps);
  take_flag(&argc, argv, "latency_threads", &threads);

  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    listing = listing || std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0;
  }
  SimulatedSources sources;
  g_sources = &sources;
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  const int n_bumps = std::atoi(bumps.c_str());
  const int n_threads = std::atoi(threads.c_str());
  if (!listing && (n_bumps > 0 || n_threads > 0)) {
    const std::string latency = measure_latency(std::max(n_bumps, 1), std::max(n_threads, 1));
    if (latency_out.empty()) {
      std::fputs(latency.c_str(), stderr);
    } else {
      FILE* f = std::fopen(latency_out.c_str(), "w");
      if (f == nullptr || std::fputs(latency.c_str(), f) < 0 || std::fclose(f) != 0) {
        die("cannot write " + latency_out);
      }
    }
  }
  g_sources = nullptr;
  return 0;
}
