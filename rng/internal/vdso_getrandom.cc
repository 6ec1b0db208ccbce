// The vDSO getrandom caller: see vdso_getrandom.h.
//
// Lookup (after the kernel's tools/testing/selftests/vDSO/parse_vdso.c, own code): the
// vDSO is a complete ELF shared object mapped at getauxval(AT_SYSINFO_EHDR). Its first
// PT_LOAD gives the load bias, PT_DYNAMIC the dynamic table; from that the dynamic symbol
// table, its string table, the symbol count (DT_HASH's nchain, or a walk of DT_GNU_HASH)
// and, when present, DT_VERSYM/DT_VERDEF to check the symbol's version.
#include "rng/internal/vdso_getrandom.h"

#include "rng/internal/test_hooks.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace snapsafe::rng_internal {
namespace {

// The parameter block the vDSO fills when called with opaque_len == ~0UL (linux/random.h).
struct VgetrandomOpaqueParams {
  uint32_t size_of_opaque_state;
  uint32_t mmap_prot;
  uint32_t mmap_flags;
  uint32_t reserved[13];
};

using VgetrandomFn = ssize_t (*)(void* buffer, size_t len, unsigned int flags, void* opaque_state,
                                 size_t opaque_len);

struct Vdso {
  VgetrandomFn fn = nullptr;
  VgetrandomOpaqueParams params{};
  std::string reason;  // empty when fn is usable
};

// Number of entries in the dynamic symbol table, from a GNU hash table.
size_t gnu_hash_symbol_count(const uint32_t* gnu_hash) {
  const uint32_t nbuckets = gnu_hash[0];
  const uint32_t symoffset = gnu_hash[1];
  const uint32_t bloom_words = gnu_hash[2];
  const uint32_t* buckets = gnu_hash + 4 + bloom_words * (sizeof(ElfW(Addr)) / sizeof(uint32_t));
  const uint32_t* chain = buckets + nbuckets;
  uint32_t last = 0;
  for (uint32_t i = 0; i < nbuckets; ++i) {
    if (buckets[i] > last) last = buckets[i];
  }
  if (last < symoffset) return symoffset;
  while ((chain[last - symoffset] & 1u) == 0) ++last;  // the last chain ends with bit 0
  return static_cast<size_t>(last) + 1;
}

// The version name of symbol `index`, or nullptr if the vDSO carries no version info.
const char* symbol_version(size_t index, const ElfW(Versym)* versym, const ElfW(Verdef)* verdef,
                           const char* strtab) {
  if (versym == nullptr || verdef == nullptr) return nullptr;
  const unsigned ndx = versym[index] & 0x7fffu;
  for (const ElfW(Verdef)* def = verdef;; def = reinterpret_cast<const ElfW(Verdef)*>(
                                              reinterpret_cast<const char*>(def) + def->vd_next)) {
    if ((def->vd_flags & VER_FLG_BASE) == 0 && def->vd_ndx == ndx) {
      const auto* aux =
          reinterpret_cast<const ElfW(Verdaux)*>(reinterpret_cast<const char*>(def) + def->vd_aux);
      return strtab + aux->vda_name;
    }
    if (def->vd_next == 0) return "";
  }
}

void* find_vdso_symbol(const char* name, const char* version, std::string* reason) {
  const uintptr_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) {
    *reason = "no vDSO (AT_SYSINFO_EHDR is 0)";
    return nullptr;
  }
  const auto* ehdr = reinterpret_cast<const ElfW(Ehdr)*>(base);
  if (std::memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 ||
      ehdr->e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32)) {
    *reason = "vDSO is not an ELF image of this class";
    return nullptr;
  }
  const auto* phdr = reinterpret_cast<const ElfW(Phdr)*>(base + ehdr->e_phoff);
  uintptr_t bias = 0;
  bool have_load = false;
  const ElfW(Dyn)* dynamic = nullptr;
  for (int i = 0; i < ehdr->e_phnum; ++i) {
    if (phdr[i].p_type == PT_LOAD && !have_load) {
      bias = base + phdr[i].p_offset - phdr[i].p_vaddr;
      have_load = true;
    } else if (phdr[i].p_type == PT_DYNAMIC) {
      dynamic = reinterpret_cast<const ElfW(Dyn)*>(base + phdr[i].p_offset);
    }
  }
  if (!have_load || dynamic == nullptr) {
    *reason = "vDSO has no PT_LOAD or PT_DYNAMIC";
    return nullptr;
  }
  const char* strtab = nullptr;
  const ElfW(Sym)* symtab = nullptr;
  const uint32_t* hash = nullptr;
  const uint32_t* gnu_hash = nullptr;
  const ElfW(Versym)* versym = nullptr;
  const ElfW(Verdef)* verdef = nullptr;
  for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
    const uintptr_t address = bias + d->d_un.d_ptr;
    switch (d->d_tag) {
      case DT_STRTAB: strtab = reinterpret_cast<const char*>(address); break;
      case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(address); break;
      case DT_HASH: hash = reinterpret_cast<const uint32_t*>(address); break;
      case DT_GNU_HASH: gnu_hash = reinterpret_cast<const uint32_t*>(address); break;
      case DT_VERSYM: versym = reinterpret_cast<const ElfW(Versym)*>(address); break;
      case DT_VERDEF: verdef = reinterpret_cast<const ElfW(Verdef)*>(address); break;
      default: break;
    }
  }
  if (strtab == nullptr || symtab == nullptr || (hash == nullptr && gnu_hash == nullptr)) {
    *reason = "vDSO has no dynamic symbol table";
    return nullptr;
  }
  const size_t count = hash != nullptr ? hash[1] : gnu_hash_symbol_count(gnu_hash);
  for (size_t i = 0; i < count; ++i) {
    const ElfW(Sym)& sym = symtab[i];
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) continue;
    const unsigned binding = ELF64_ST_BIND(sym.st_info);
    if (binding != STB_GLOBAL && binding != STB_WEAK) continue;
    if (std::strcmp(strtab + sym.st_name, name) != 0) continue;
    const char* found_version = symbol_version(i, versym, verdef, strtab);
    if (found_version != nullptr && std::strcmp(found_version, version) != 0) continue;
    return reinterpret_cast<void*>(bias + sym.st_value);
  }
  *reason = std::string("vDSO does not export ") + name + "@" + version +
            " (kernel older than 6.11, or built without CONFIG_VDSO_GETRANDOM)";
  return nullptr;
}

// The symbol and its version node, per architecture, as each kernel's vDSO linker script
// exports it (arch/*/vdso*.lds.S). Elsewhere, or with a version that does not match, no
// symbol is found and every kernel-served draw uses the system call: slower, never unsafe.
struct VdsoSymbol {
  const char* name;
  const char* version;
};
#if defined(__aarch64__)
constexpr VdsoSymbol kVdsoGetrandom = {"__kernel_getrandom", "LINUX_2.6.39"};
#elif defined(__powerpc64__)
constexpr VdsoSymbol kVdsoGetrandom = {"__kernel_getrandom", "LINUX_2.6.15"};
#elif defined(__s390x__)
constexpr VdsoSymbol kVdsoGetrandom = {"__kernel_getrandom", "LINUX_2.6.29"};
#elif defined(__loongarch__)
constexpr VdsoSymbol kVdsoGetrandom = {"__vdso_getrandom", "LINUX_5.10"};
#else  // x86-64 (and the guess elsewhere)
constexpr VdsoSymbol kVdsoGetrandom = {"__vdso_getrandom", "LINUX_2.6"};
#endif

const Vdso& vdso() {
  static const Vdso instance = [] {
    Vdso v;
    void* symbol = find_vdso_symbol(kVdsoGetrandom.name, kVdsoGetrandom.version, &v.reason);
    if (symbol == nullptr) return v;
    auto fn = reinterpret_cast<VgetrandomFn>(symbol);
    if (fn(nullptr, 0, 0, &v.params, ~size_t{0}) != 0 || v.params.size_of_opaque_state == 0) {
      v.reason = std::string(kVdsoGetrandom.name) + " parameter query failed";
      return v;
    }
    v.fn = fn;
    return v;
  }();
  return instance;
}

// The length of one state's mapping: whole pages, the same for every state.
size_t state_length() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (vdso().params.size_of_opaque_state + page - 1) / page * page;
}

// States of exited threads, wiped, for the next new threads: a thread's first vDSO call
// then costs no mmap, no page fault and, at its exit, no munmap with its TLB shootdown
// (measured: a new thread's first kernel-backed draw 14.4 us p50 with a fresh mapping).
// A zeroed state is a fresh one: the vDSO sees a generation mismatch and re-keys it from
// the kernel, so it carries nothing of its previous owner. Slots are taken and filled
// with atomic exchanges: no lock for a fork, a signal or a thread exit to leave held.
constexpr size_t kPooledStates = 64;
std::atomic<void*> g_pooled_states[kPooledStates];

void* take_pooled_state() {
  if (SNAPSAFE_TEST_FLAG(disable_state_pool)) return nullptr;
  for (std::atomic<void*>& slot : g_pooled_states) {
    if (slot.load(std::memory_order_relaxed) == nullptr) continue;
    if (void* const map = slot.exchange(nullptr, std::memory_order_acquire)) return map;
  }
  return nullptr;
}

// Keeps a wiped state for the next thread; false when the pool is full.
bool pool_state(void* map) {
  if (SNAPSAFE_TEST_FLAG(disable_state_pool)) return false;
  for (std::atomic<void*>& slot : g_pooled_states) {
    void* empty = nullptr;
    if (slot.load(std::memory_order_relaxed) == nullptr &&
        slot.compare_exchange_strong(empty, map, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

// One opaque state per thread, in its own mapping (a state must not straddle a page).
// At thread exit the state is wiped and pooled (or unmapped), and the thread never takes
// another: a draw from a later thread-local or static destructor goes to the system call
// (measured before: such draws used the unmapped state, crashed, or shared a state that
// another thread's mapping had since reused).
struct ThreadVdsoState {
  void* map = nullptr;
  size_t length = 0;
  bool exited = false;
  bool in_call = false;  // a vDSO call runs on this thread (the fork handler must wait)
  ~ThreadVdsoState() {
    if (SNAPSAFE_TEST_FLAG(disable_teardown_guard)) {
      munmap(map, length);  // as before the fix: `map` still points at the old mapping
      return;
    }
    exited = true;
    void* const old = map;
    map = nullptr;
    if (old != nullptr) {
      if (!SNAPSAFE_TEST_FLAG(pool_without_wipe)) explicit_bzero(old, length);
      if (!pool_state(old)) munmap(old, length);
    }
  }
};
thread_local ThreadVdsoState t_vdso_state;

void* thread_state() {
  if (t_vdso_state.map != nullptr) return t_vdso_state.map;
  if (t_vdso_state.exited) return nullptr;
  const size_t length = state_length();
  void* map = take_pooled_state();
  if (map == nullptr) {
    map = mmap(nullptr, length, static_cast<int>(vdso().params.mmap_prot),
               static_cast<int>(vdso().params.mmap_flags), -1, 0);
    if (map == MAP_FAILED) return nullptr;
  }
  t_vdso_state.map = map;
  t_vdso_state.length = length;
  return map;
}

}  // namespace

bool vdso_getrandom_available() noexcept { return vdso().fn != nullptr; }

const std::string& vdso_getrandom_unavailable_reason() { return vdso().reason; }

int vdso_getrandom(void* out, size_t size) noexcept {
  const Vdso& v = vdso();
  if (v.fn == nullptr) return ENOSYS;
  void* state = thread_state();
  if (state == nullptr) return ENOMEM;
  auto* bytes = static_cast<unsigned char*>(out);
  while (size > 0) {
    t_vdso_state.in_call = true;
    const ssize_t n = v.fn(bytes, size, 0, state, v.params.size_of_opaque_state);
    t_vdso_state.in_call = false;
    if (n < 0 && n == -EINTR) continue;
    if (n <= 0) {
      std::memset(out, 0, size + static_cast<size_t>(bytes - static_cast<unsigned char*>(out)));
      return n < 0 ? static_cast<int>(-n) : EIO;
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

void vdso_getrandom_forget_after_fork() noexcept {
  // A zeroed state is a fresh one: the vDSO sees a generation mismatch and re-keys from
  // the system call. Interrupted mid-call (fork from a signal handler): left alone.
  if (t_vdso_state.map != nullptr && !t_vdso_state.in_call) {
    explicit_bzero(t_vdso_state.map, t_vdso_state.length);
  }
}

void vdso_getrandom_pool_clear() noexcept {
  while (void* const map = take_pooled_state()) munmap(map, state_length());
}

void* vdso_getrandom_thread_state(size_t* length) noexcept {
  *length = t_vdso_state.length;
  return t_vdso_state.map;
}

}  // namespace snapsafe::rng_internal
