// The draw's slow paths: see draw.h for the fast path and its orderings.
#include "rng/internal/draw.h"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>

#include "genid/select.h"
#include "rng/internal/kernel_output.h"
#include "rng/internal/keystream.h"
#include "rng/internal/seed.h"
#include "rng/internal/setup.h"
#include "rng/internal/state_keystream.h"

namespace snapsafe::rng_internal {
namespace {

// A draw restarts at most this often when the generation moves under it; after that
// (or with a generation that cannot be read) the draw is served by the kernel.
constexpr int kMaxAttempts = 3;

// produce()/reseed() result: a watched source was retired, the kernel serves the draw.
constexpr int kRetired = -1;

std::atomic<uint64_t> g_reseeds{0};
std::atomic<uint64_t> g_pool_seeds{0};

void release(ThreadState* st) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  st->in_use = 0;
}

// Nothing of this state is used again until a reseed: no key, no buffered byte.
// `remaining` is loaded once: a fork() from a signal handler may reset it between two loads.
void forget(ThreadState* st) {
  st->seeded = 0;
  explicit_bzero(st->key, sizeof st->key);
  const uint32_t remaining = st->remaining;
  explicit_bzero(st->buffer + (kBufferBytes - remaining), remaining);
  st->remaining = 0;
}

// Fails the draw closed: `out` zeroed, the state forgotten.
int fail(ThreadState* st, void* out, size_t size, int error) {
  forget(st);
  std::memset(out, 0, size);
  release(st);
  return error;
}

// Whether a generation change here may come from a process restore, which drops
// MADV_WIPEONFORK from every page: a watched source says so (genid/source.h; the counter
// file, whose hook announces CRIU and container restores). A VM snapshot keeps page
// flags: VMClock and SysGenID changes alone need no madvise call (~0.4-0.9 us measured
// per reseed).
bool restores_drop_page_flags() {
  for (const genid::OpenedSource& source : genid::init().watched) {
    if (source.traits.restores_drop_page_flags) return true;
  }
  return false;
}

// Seeds `st` for `generation` and makes a first, short refill: a fresh key from the kernel
// (derive_seed), nothing kept from before. The order of the generation and key stores
// is not load-bearing: a snapshot taken inside a reseed is restored under a generation
// that moved, and draw_slow_in_use()'s re-read after producing sends the clone back to
// reseed, whichever store it holds. Unread bytes of the old state are dropped and wiped.
// The first refill is only kFirstRefillBytes (draw.h): right after a
// restore every thread reseeds at once, and each pays for 64 bytes of keystream (what a
// draw of a UUID or a few words needs), the rest made by the next refill, when drawn.
// In line (as reseed() below), so the reseed's system call, in seed_and_step, has only that
// frame and its caller's pending across it (kernel_entropy.h: each costs ~10 ns after it).
[[gnu::always_inline]] inline int seed_state(ThreadState* st, EVP_CIPHER_CTX*& ctx,
                                             genid::Generation generation) {
  st->generation = generation;
  forget(st);
  if (restores_drop_page_flags()) thread_state_reflag(st, generation);
  if (!genid::sources_still_valid()) return kRetired;
  if (const int error =
          seed_and_step(generation, st, ctx, st->buffer + (kBufferBytes - kFirstRefillBytes),
                        kFirstRefillBytes)) {
    return error;
  }
  SNAPSAFE_TEST_HOOK(mid_reseed);
  st->remaining = kFirstRefillBytes;
  st->seeded = 1;
  return 0;
}

// After a state was seeded for `generation`: the process has adapted to it (every draw
// checks the generation first), which a SysGenID source acknowledges.
void acknowledge(genid::Generation generation) {
  const genid::OpenedSource& source = genid::init().active;
  if (source.acknowledge != nullptr) source.acknowledge(generation);
}

// A reseed of this thread's state.
[[gnu::always_inline]] inline int reseed(ThreadState* st, genid::Generation generation) {
  if (const int error = seed_state(st, thread_cipher_context(), generation)) return error;
  g_reseeds.fetch_add(1, std::memory_order_relaxed);
  acknowledge(generation);
  return 0;
}

// Makes the buffer full again: one step of the construction. The watched sources are
// re-validated here, every 8 KiB of output, never per draw.
int refill(ThreadState* st, EVP_CIPHER_CTX* ctx, uint32_t* remaining) {
  if (!genid::sources_still_valid()) return kRetired;
  if (!state_keystream_step(st, ctx, st->buffer, kBufferBytes)) return EIO;
  SNAPSAFE_TEST_HOOK(mid_refill);
  *remaining = kBufferBytes;
  st->remaining = kBufferBytes;
  return 0;
}

// Copies `size` bytes of output into `out`: from the buffer (refilling it as needed); a
// large request's whole blocks straight from the keystream in a bulk step whose next key
// is the buffer's next 32 unread bytes, and its last size mod 16 bytes from the buffer.
// `remaining` is kept in a local and only stored, as in the fast path: a fork() from a
// signal handler meanwhile resets the child's page (remaining 0), where a re-read
// `st->remaining -= n` would wrap and index far outside the buffer. Whatever the child
// makes here is not returned: draw_slow_in_use sees the stamp changed and redoes the draw.
int produce(ThreadState* st, uint8_t* out, size_t size) {
  EVP_CIPHER_CTX* const ctx = thread_cipher_context();
  uint32_t remaining = st->remaining;
  if (size > kMaxBufferedDraw) {
    if (!genid::sources_still_valid()) return kRetired;  // as at a refill
    const size_t whole = size & ~(kBlockBytes - 1);
    if (remaining < kKeyBytes + (size - whole)) {
      if (const int error = refill(st, ctx, &remaining)) return error;
    }
    uint8_t* const next_key = st->buffer + (kBufferBytes - remaining);
    const bool ok = state_keystream_bulk_step(st, ctx, out, whole, next_key);
    std::memset(next_key, 0, kKeyBytes);
    remaining -= kKeyBytes;
    st->remaining = remaining;
    if (!ok) return EIO;
    out += whole;
    size -= whole;
  }
  while (size > 0) {
    if (remaining == 0) {
      if (const int error = refill(st, ctx, &remaining)) return error;
    }
    const size_t take = size < remaining ? size : remaining;
    uint8_t* const bytes = st->buffer + (kBufferBytes - remaining);
    std::memcpy(out, bytes, take);
    std::memset(bytes, 0, take);
    remaining -= static_cast<uint32_t>(take);
    st->remaining = remaining;
    out += take;
    size -= take;
  }
  return 0;
}

// Whether a draw produced under `generation` may be returned: the generation did not move
// meanwhile (a snapshot would leave a clone holding these bytes), and the state still
// bears that stamp. A fork() from a signal handler that interrupted this draw (in a reseed,
// a refill, a bulk step, or after them) leaves the child's state stamped kGenerationNever
// by the fork handler (thread_state.cc) or zeroed by MADV_WIPEONFORK: the child then
// redoes the draw from a reseed instead of returning the bytes its parent returns, or
// zeros from its wiped page as success.
bool unchanged_since(const ThreadState* st, genid::Generation generation) {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the stamp is loaded after the draw
  if (SNAPSAFE_TEST_FLAG(disable_recheck)) return true;
  const bool stamped = st->generation == generation || SNAPSAFE_TEST_FLAG(disable_fork_recheck);
  return genid::read_generation() == generation && stamped;
}

}  // namespace

int draw_slow(void* out, size_t size) noexcept {
  library_setup();  // one load once done; see setup.h (fork-safe one-time setup)
  ThreadState* st = t_state;
  // Re-entered from a signal handler (mid-draw, or mid-creation): the kernel serves it.
  if ((st != nullptr && st->in_use) || thread_state_creating()) {
    return kernel_output(out, size, /*signal_safe=*/true);
  }
  if (st == nullptr) {
    if (!genid::init().active.traits.buffers_output || genid::retired()) {
      return kernel_output(out, size, /*signal_safe=*/false);
    }
    st = thread_state_create();
    if (st == nullptr) return kernel_output(out, size, /*signal_safe=*/false);
  }
  st->in_use = 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return draw_slow_in_use(st, out, size);
}

int draw_slow_in_use(ThreadState* st, void* out, size_t size) noexcept {
  auto* const bytes = static_cast<uint8_t*>(out);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const genid::Generation generation = genid::read_generation();
    if (generation == genid::kGenerationUnknown) {
      if (genid::retired()) forget(st);  // for good: nothing buffered is used again
      break;
    }
    if (openssl_exiting()) {  // exit handlers run: OpenSSL is (about to be) cleaned up
      forget(st);
      break;
    }
    int result = 0;
    if (!st->seeded || generation != st->generation) result = reseed(st, generation);
    if (result == 0) result = produce(st, bytes, size);
    if (result == kRetired) {
      forget(st);
      break;
    }
    if (result != 0) return fail(st, out, size, result);  // nothing of this state is reused
    SNAPSAFE_TEST_HOOK(after_slow_produce);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (unchanged_since(st, generation)) {
      release(st);
      return 0;
    }
    // The generation moved while we produced (a clone may return these same bytes), or
    // this is a child forked meanwhile: redone from a reseed.
  }
  // Retired: every draw comes here, so the fast kernel path. Otherwise this is rare and
  // may be a signal handler's draw: the async-signal-safe one.
  const int error = kernel_output(out, size, /*signal_safe=*/!genid::retired());
  release(st);
  return error;
}

bool seed_for_next_thread(ThreadState* st, EVP_CIPHER_CTX*& ctx) noexcept {
  if (SNAPSAFE_TEST_FLAG(disable_pool_seeding) || openssl_exiting()) return false;
  const genid::Generation generation = genid::read_generation();
  if (generation == genid::kGenerationUnknown) return false;
  if (seed_state(st, ctx, generation) != 0) {
    forget(st);
    return false;
  }
  g_pool_seeds.fetch_add(1, std::memory_order_relaxed);
  acknowledge(generation);  // threads served from the pool alone still acknowledge
  return true;
}

uint64_t reseed_count() noexcept { return g_reseeds.load(std::memory_order_relaxed); }

uint64_t pool_seed_count() noexcept { return g_pool_seeds.load(std::memory_order_relaxed); }

}  // namespace snapsafe::rng_internal
