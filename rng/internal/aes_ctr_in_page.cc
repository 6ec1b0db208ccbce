// AES-256-CTR with the key schedule in the caller's page: see aes_ctr_in_page.h.
//
// The construction, per variant (AES-NI: 8 xmm registers of one block; VAES: 4 ymm
// registers of two blocks):
//   expand:  FIPS-197's AES-256 key expansion with AESKEYGENASSIST (Intel's AES-NI white
//            paper, "AES-256 key expansion"), each round key stored into the schedule.
//   ctr:     8 counter blocks at a time (VAES: 16 while the low half of the counter does
//            not wrap): block i = big-endian(counter + i), whitened with
//            round key 0, 13 AESENC, 1 AESENCLAST; stored to `out`. A last group of fewer
//            than 8 blocks is computed whole and only its first blocks are stored (the
//            others never leave the registers, which are cleared). When the low 64 bits of
//            the counter do not wrap inside a group the 8 blocks are made by vector adds
//            and a byte shuffle; otherwise each is made with the carry into the high half.
//   every public call ends by zeroing the vector registers (clear_*), and the steps wipe
//   the schedule.
// Where the secrets are: the key and the schedule in the caller's page; the round keys are
// loaded from the schedule at every group through a pointer the compiler cannot see
// through (opaque()), so it never hoists 15 round keys out of the loop into registers it
// would spill to the stack; the blocks live in registers until stored. This file is built
// with -O2 whatever the compilation mode (rng/BUILD.bazel): at -O0 every intrinsic's value
// goes through the stack.
#include "rng/internal/aes_ctr_in_page.h"

#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>

#include <atomic>
#include <cstring>

#include "rng/internal/wipe.h"

#define SNAPSAFE_AESNI __attribute__((target("aes,sse4.1")))
#define SNAPSAFE_AESNI_INLINE __attribute__((target("aes,sse4.1"), always_inline)) inline
#define SNAPSAFE_VAES __attribute__((target("aes,vaes,avx2")))

namespace snapsafe::rng_internal {

#ifdef SNAPSAFE_TESTING
AesCtrTestFlags g_aes_ctr_test_flags;
#define SNAPSAFE_AES_TEST_FLAG(name) (g_aes_ctr_test_flags.name)
#else
#define SNAPSAFE_AES_TEST_FLAG(name) false
#endif

namespace {

// --- the counter: a 128-bit big-endian integer, as OpenSSL's CTR mode counts -----------

struct Counter {
  uint64_t hi;  // bytes 0..7 of the counter block
  uint64_t lo;  // bytes 8..15
};

Counter load_counter(const uint8_t block[kAesBlockBytes]) {
  uint64_t hi, lo;
  std::memcpy(&hi, block, 8);
  std::memcpy(&lo, block + 8, 8);
  return {__builtin_bswap64(hi), __builtin_bswap64(lo)};
}

void store_counter(Counter c, uint8_t block[kAesBlockBytes]) {
  const uint64_t hi = __builtin_bswap64(c.hi), lo = __builtin_bswap64(c.lo);
  std::memcpy(block, &hi, 8);
  std::memcpy(block + 8, &lo, 8);
}

// c + n mod 2^128: the low half's carry goes into the high half.
Counter advance(Counter c, uint64_t n) {
  Counter next{c.hi, c.lo + n};
  if (next.lo < c.lo) ++next.hi;
  return next;
}

// Whether c, c + 1, .., c + 7 share the high half (the vector path adds to the low only).
bool group_without_carry(Counter c) { return c.lo <= UINT64_MAX - 7; }

// The counter block of c as a register: big-endian bytes.
SNAPSAFE_AESNI_INLINE __m128i counter_block(Counter c) {
  return _mm_set_epi64x(static_cast<long long>(__builtin_bswap64(c.lo)),
                        static_cast<long long>(__builtin_bswap64(c.hi)));
}

// Reverses the bytes of each 64-bit half: (hi, lo) as little-endian words -> the block.
SNAPSAFE_AESNI_INLINE __m128i bswap64_mask() {
  return _mm_set_epi8(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}

// The schedule's round keys through a pointer the optimizer must assume changed: each use
// is a load from the page, never a copy kept (and spilled) across the loop.
SNAPSAFE_AESNI_INLINE const __m128i* opaque(const AesSchedule* schedule) {
  const __m128i* keys = reinterpret_cast<const __m128i*>(schedule->round_keys);
  __asm__ volatile("" : "+r"(keys));
  return keys;
}

// --- key expansion (shared by both variants; VEX-encoded when inlined into VAES code) ---

// The next round key from k and the AESKEYGENASSIST word t (broadcast): word i of the
// result is t ^ k0 ^ .. ^ ki. The prefix XOR in two shift-and-XOR steps (by one word, then
// by two), not three: the expansion is one serial chain (measured 29 -> 26 ns a schedule).
SNAPSAFE_AESNI_INLINE __m128i expand_word(__m128i k, __m128i t) {
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 8));
  return _mm_xor_si128(k, t);
}

// The whole AES-256 schedule of `key` into `rk` (15 round keys), as one serial chain: round
// keys 0 and 1 are the key, then 2i and 2i + 1 come from 2i - 2 and 2i - 1. Each round key
// is stored into the schedule and handed at once to the caller's code for its round
// (FIRST(k): round 0, the whitening; MIDDLE(k): rounds 1..13; LAST(k): round 14), so work
// that needs the round keys in order can run in the chain's shadow (the reseed's MAC block,
// vaes-avx2's first keystream group). Declares `even` and `odd`: the round keys live there
// and in the schedule only.
#define SNAPSAFE_EXPAND_PAIR(rk, rcon, i, MIDDLE)                                            \
  do {                                                                                       \
    even = expand_word(even, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(odd, rcon), 0xff)); \
    _mm_store_si128((rk) + 2 * (i), even);                                                   \
    MIDDLE(even);                                                                            \
    odd = expand_word(odd, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(even, 0), 0xaa));     \
    _mm_store_si128((rk) + 2 * (i) + 1, odd);                                                \
    MIDDLE(odd);                                                                             \
  } while (0)
#define SNAPSAFE_EXPAND_SCHEDULE(rk, key, FIRST, MIDDLE, LAST)                             \
  __m128i even = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));                   \
  __m128i odd = _mm_loadu_si128(reinterpret_cast<const __m128i*>((key) + 16));             \
  _mm_store_si128(rk, even);                                                               \
  _mm_store_si128((rk) + 1, odd);                                                          \
  FIRST(even);                                                                             \
  MIDDLE(odd);                                                                             \
  SNAPSAFE_EXPAND_PAIR(rk, 0x01, 1, MIDDLE);                                               \
  SNAPSAFE_EXPAND_PAIR(rk, 0x02, 2, MIDDLE);                                               \
  SNAPSAFE_EXPAND_PAIR(rk, 0x04, 3, MIDDLE);                                               \
  SNAPSAFE_EXPAND_PAIR(rk, 0x08, 4, MIDDLE);                                               \
  SNAPSAFE_EXPAND_PAIR(rk, 0x10, 5, MIDDLE);                                               \
  SNAPSAFE_EXPAND_PAIR(rk, 0x20, 6, MIDDLE);                                               \
  even = expand_word(even, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(odd, 0x40), 0xff)); \
  _mm_store_si128((rk) + kAesRounds, even);                                                \
  LAST(even)
#define SNAPSAFE_NO_ROUND(k) \
  do {                       \
  } while (0)

SNAPSAFE_AESNI_INLINE void expand_into(AesSchedule* schedule, const uint8_t key[kAesKeyBytes]) {
  __m128i* rk = reinterpret_cast<__m128i*>(schedule->round_keys);
  SNAPSAFE_EXPAND_SCHEDULE(rk, key, SNAPSAFE_NO_ROUND, SNAPSAFE_NO_ROUND, SNAPSAFE_NO_ROUND);
}

// CBC-MAC over `blocks` input blocks (the reseed's counter block, seed.h):
//   x = 0;  for each block m_i: x = AES_K(x ^ m_i);  stored to `out`.
// One block at a time (each depends on the one before); x stays in a register until stored.
// Shared by both variants: VEX-encoded when inlined into VAES code (no legacy SSE there).
// cbc_mac_chain: blocks first.. of the chain from x (expand_mac_into below makes block 0).
SNAPSAFE_AESNI_INLINE __m128i cbc_mac_chain(const AesSchedule* schedule, __m128i x,
                                            const uint8_t* input, size_t first, size_t blocks) {
  for (size_t i = first; i < blocks; ++i) {
    const __m128i* keys = opaque(schedule);
    x = _mm_xor_si128(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(input) + i));
    x = _mm_xor_si128(x, _mm_load_si128(keys));
    for (size_t r = 1; r < kAesRounds; ++r) x = _mm_aesenc_si128(x, _mm_load_si128(keys + r));
    x = _mm_aesenclast_si128(x, _mm_load_si128(keys + kAesRounds));
  }
  return x;
}

SNAPSAFE_AESNI_INLINE void cbc_mac_into(const AesSchedule* schedule, const uint8_t* input,
                                        size_t blocks, uint8_t out[kAesBlockBytes]) {
  const __m128i x = cbc_mac_chain(schedule, _mm_setzero_si128(), input, 0, blocks);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), x);
}

// The reseed's head: the expansion fused with the CBC-MAC's first block, whose rounds run
// as each round key comes out of the expansion's serial AESKEYGENASSIST chain (measured: a
// CBC-MAC block costs ~20 ns of latency on its own), then blocks 1.. as cbc_mac_into. The
// schedule ends as expand_into leaves it; `blocks` >= 1.
#define SNAPSAFE_MAC_WHITEN(k) \
  x = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(input)), k)
#define SNAPSAFE_MAC_ROUND(k) x = _mm_aesenc_si128(x, k)
#define SNAPSAFE_MAC_LAST(k) x = _mm_aesenclast_si128(x, k)
SNAPSAFE_AESNI_INLINE void expand_mac_into(AesSchedule* schedule, const uint8_t key[kAesKeyBytes],
                                           const uint8_t* input, size_t blocks,
                                           uint8_t out[kAesBlockBytes]) {
  __m128i* rk = reinterpret_cast<__m128i*>(schedule->round_keys);
  __m128i x;
  SNAPSAFE_EXPAND_SCHEDULE(rk, key, SNAPSAFE_MAC_WHITEN, SNAPSAFE_MAC_ROUND, SNAPSAFE_MAC_LAST);
  x = cbc_mac_chain(schedule, x, input, 1, blocks);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), x);
}
#undef SNAPSAFE_MAC_WHITEN
#undef SNAPSAFE_MAC_ROUND
#undef SNAPSAFE_MAC_LAST

// --- AES-NI: 8 blocks in 8 xmm registers ----------------------------------------------

SNAPSAFE_AESNI void aesni_expand(AesSchedule* schedule, const uint8_t key[kAesKeyBytes]) {
  expand_into(schedule, key);
}

SNAPSAFE_AESNI void aesni_cbc_mac(const AesSchedule* schedule, const uint8_t* input, size_t blocks,
                                  uint8_t* out) {
  cbc_mac_into(schedule, input, blocks, out);
}

// Encrypts the 8 counter blocks from c in place of b[0..7] (b is 8 named registers: an
// array indexed by a variable would live on the stack).
#define SNAPSAFE_AESNI_ROUNDS(keys, b0, b1, b2, b3, b4, b5, b6, b7) \
  do {                                                              \
    __m128i k = _mm_load_si128(keys);                               \
    b0 = _mm_xor_si128(b0, k);                                      \
    b1 = _mm_xor_si128(b1, k);                                      \
    b2 = _mm_xor_si128(b2, k);                                      \
    b3 = _mm_xor_si128(b3, k);                                      \
    b4 = _mm_xor_si128(b4, k);                                      \
    b5 = _mm_xor_si128(b5, k);                                      \
    b6 = _mm_xor_si128(b6, k);                                      \
    b7 = _mm_xor_si128(b7, k);                                      \
    for (size_t r = 1; r < kAesRounds; ++r) {                       \
      k = _mm_load_si128(keys + r);                                 \
      b0 = _mm_aesenc_si128(b0, k);                                 \
      b1 = _mm_aesenc_si128(b1, k);                                 \
      b2 = _mm_aesenc_si128(b2, k);                                 \
      b3 = _mm_aesenc_si128(b3, k);                                 \
      b4 = _mm_aesenc_si128(b4, k);                                 \
      b5 = _mm_aesenc_si128(b5, k);                                 \
      b6 = _mm_aesenc_si128(b6, k);                                 \
      b7 = _mm_aesenc_si128(b7, k);                                 \
    }                                                               \
    k = _mm_load_si128(keys + kAesRounds);                          \
    b0 = _mm_aesenclast_si128(b0, k);                               \
    b1 = _mm_aesenclast_si128(b1, k);                               \
    b2 = _mm_aesenclast_si128(b2, k);                               \
    b3 = _mm_aesenclast_si128(b3, k);                               \
    b4 = _mm_aesenclast_si128(b4, k);                               \
    b5 = _mm_aesenclast_si128(b5, k);                               \
    b6 = _mm_aesenclast_si128(b6, k);                               \
    b7 = _mm_aesenclast_si128(b7, k);                               \
  } while (0)

SNAPSAFE_AESNI void aesni_ctr(const AesSchedule* schedule, Counter c, uint8_t* out,
                              size_t nblocks) {
  const __m128i mask = bswap64_mask();
  __m128i* dst = reinterpret_cast<__m128i*>(out);
  while (nblocks > 0) {
    __m128i b0, b1, b2, b3, b4, b5, b6, b7;
    if (group_without_carry(c)) {
      const __m128i base =
          _mm_set_epi64x(static_cast<long long>(c.lo), static_cast<long long>(c.hi));
      b0 = _mm_shuffle_epi8(base, mask);
      b1 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(1, 0)), mask);
      b2 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(2, 0)), mask);
      b3 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(3, 0)), mask);
      b4 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(4, 0)), mask);
      b5 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(5, 0)), mask);
      b6 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(6, 0)), mask);
      b7 = _mm_shuffle_epi8(_mm_add_epi64(base, _mm_set_epi64x(7, 0)), mask);
    } else {
      b0 = counter_block(c);
      b1 = counter_block(advance(c, 1));
      b2 = counter_block(advance(c, 2));
      b3 = counter_block(advance(c, 3));
      b4 = counter_block(advance(c, 4));
      b5 = counter_block(advance(c, 5));
      b6 = counter_block(advance(c, 6));
      b7 = counter_block(advance(c, 7));
    }
    SNAPSAFE_AESNI_ROUNDS(opaque(schedule), b0, b1, b2, b3, b4, b5, b6, b7);
    if (nblocks >= 8) {
      _mm_storeu_si128(dst + 0, b0);
      _mm_storeu_si128(dst + 1, b1);
      _mm_storeu_si128(dst + 2, b2);
      _mm_storeu_si128(dst + 3, b3);
      _mm_storeu_si128(dst + 4, b4);
      _mm_storeu_si128(dst + 5, b5);
      _mm_storeu_si128(dst + 6, b6);
      _mm_storeu_si128(dst + 7, b7);
      dst += 8;
      nblocks -= 8;
      c = advance(c, 8);
      continue;
    }
    // The last group: its first nblocks blocks (1..7); the rest stay in the registers.
    _mm_storeu_si128(dst + 0, b0);
    if (nblocks > 1) _mm_storeu_si128(dst + 1, b1);
    if (nblocks > 2) _mm_storeu_si128(dst + 2, b2);
    if (nblocks > 3) _mm_storeu_si128(dst + 3, b3);
    if (nblocks > 4) _mm_storeu_si128(dst + 4, b4);
    if (nblocks > 5) _mm_storeu_si128(dst + 5, b5);
    if (nblocks > 6) _mm_storeu_si128(dst + 6, b6);
    nblocks = 0;
  }
}

// A reseed's keystream in one group: K' (blocks 0 and 1, over `key`) and `nblocks` <= 6
// blocks of output, all 8 blocks in flight at once (two ctr calls would wait out AES's
// latency twice). Shared by both variants (VEX-encoded when inlined into VAES code).
SNAPSAFE_AESNI_INLINE void ctr_key_out_into(const AesSchedule* schedule, Counter c,
                                            uint8_t key[kAesKeyBytes], uint8_t* out,
                                            size_t nblocks) {
  __m128i b0 = counter_block(c), b1 = counter_block(advance(c, 1));
  __m128i b2 = counter_block(advance(c, 2)), b3 = counter_block(advance(c, 3));
  __m128i b4 = counter_block(advance(c, 4)), b5 = counter_block(advance(c, 5));
  __m128i b6 = counter_block(advance(c, 6)), b7 = counter_block(advance(c, 7));
  SNAPSAFE_AESNI_ROUNDS(opaque(schedule), b0, b1, b2, b3, b4, b5, b6, b7);
  __m128i* k = reinterpret_cast<__m128i*>(key);
  __m128i* dst = reinterpret_cast<__m128i*>(out);
  _mm_storeu_si128(k, b0);
  _mm_storeu_si128(k + 1, b1);
  if (nblocks > 0) _mm_storeu_si128(dst + 0, b2);
  if (nblocks > 1) _mm_storeu_si128(dst + 1, b3);
  if (nblocks > 2) _mm_storeu_si128(dst + 2, b4);
  if (nblocks > 3) _mm_storeu_si128(dst + 3, b5);
  if (nblocks > 4) _mm_storeu_si128(dst + 4, b6);
  if (nblocks > 5) _mm_storeu_si128(dst + 5, b7);
}
constexpr size_t kKeyOutMaxBlocks = 6;

SNAPSAFE_AESNI void aesni_expand_mac(AesSchedule* schedule, const uint8_t* key,
                                     const uint8_t* input, size_t blocks, uint8_t* out) {
  expand_mac_into(schedule, key, input, blocks, out);
}

SNAPSAFE_AESNI void aesni_ctr_key_out(const AesSchedule* schedule, Counter c, uint8_t* key,
                                      uint8_t* out, size_t nblocks) {
  ctr_key_out_into(schedule, c, key, out, nblocks);
}

// Zeroes xmm0-15 (legacy SSE: on a CPU without AVX, there are no upper halves to clear).
__attribute__((target("sse2"))) void clear_xmm() {
  __asm__ volatile(
      "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
      "pxor %%xmm3, %%xmm3\n\tpxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
      "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\tpxor %%xmm8, %%xmm8\n\t"
      "pxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\t"
      "pxor %%xmm15, %%xmm15"
      :
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
}

// Zeroes ymm0-15 whole; also leaves the upper state clean (no SSE/AVX transition penalty
// for the caller's next legacy-SSE instruction).
__attribute__((target("avx"))) void clear_ymm() { _mm256_zeroall(); }

// --- VAES: 8 blocks in 4 ymm registers of two ------------------------------------------

SNAPSAFE_VAES void vaes_expand(AesSchedule* schedule, const uint8_t key[kAesKeyBytes]) {
  expand_into(schedule, key);  // VEX-encoded here: no legacy SSE between AVX code
}

SNAPSAFE_VAES void vaes_cbc_mac(const AesSchedule* schedule, const uint8_t* input, size_t blocks,
                                uint8_t* out) {
  cbc_mac_into(schedule, input, blocks, out);  // VEX-encoded, as vaes_expand
}

SNAPSAFE_VAES void vaes_expand_mac(AesSchedule* schedule, const uint8_t* key, const uint8_t* input,
                                   size_t blocks, uint8_t* out) {
  expand_mac_into(schedule, key, input, blocks, out);  // VEX-encoded, as vaes_expand
}

SNAPSAFE_VAES void vaes_ctr_key_out(const AesSchedule* schedule, Counter c, uint8_t* key,
                                    uint8_t* out, size_t nblocks) {
  ctr_key_out_into(schedule, c, key, out, nblocks);  // VEX-encoded, as vaes_expand
}

// The 16 counter blocks from c, two per register, when c's low half does not wrap within
// them; each pair is (c + 2i, c + 2i + 1).
#define SNAPSAFE_VAES_PAIR(i) \
  _mm256_shuffle_epi8(_mm256_add_epi64(base, _mm256_set_epi64x(2 * (i) + 1, 0, 2 * (i), 0)), mask)

// Applies `op` with round key k to each of the registers named.
#define SNAPSAFE_VAES_ROUND4(op, p0, p1, p2, p3) \
  p0 = op(p0, k);                                \
  p1 = op(p1, k);                                \
  p2 = op(p2, k);                                \
  p3 = op(p3, k)

// AES-256 over 4 or 8 registers of two blocks: whitening, 13 rounds, the last round. The
// rounds are unrolled (measured: the in-page keystream 7% faster, a 4 KiB fill 388 -> 362
// ns; the rolled round loop's speed also moved with its alignment, by ~3%).
#define SNAPSAFE_VAES_ENCRYPT(ROUND)                                    \
  do {                                                                  \
    const __m128i* keys = opaque(schedule);                             \
    __m256i k = _mm256_broadcastsi128_si256(_mm_load_si128(keys));      \
    ROUND(_mm256_xor_si256);                                            \
    _Pragma("GCC unroll 13") for (size_t r = 1; r < kAesRounds; ++r) {  \
      k = _mm256_broadcastsi128_si256(_mm_load_si128(keys + r));        \
      ROUND(_mm256_aesenc_epi128);                                      \
    }                                                                   \
    k = _mm256_broadcastsi128_si256(_mm_load_si128(keys + kAesRounds)); \
    ROUND(_mm256_aesenclast_epi128);                                    \
  } while (0)

SNAPSAFE_VAES void vaes_ctr(const AesSchedule* schedule, Counter c, uint8_t* out, size_t nblocks) {
  const __m256i mask = _mm256_broadcastsi128_si256(bswap64_mask());
  uint8_t* dst = out;
  // 16 blocks in 8 registers: enough independent AES instructions in flight to keep both
  // of Zen 3's AES units busy (measured 1.14-1.36x the 8-block loop's speed over 4 KiB).
  while (nblocks >= 16 && c.lo <= UINT64_MAX - 15) {
    const __m256i base = _mm256_broadcastsi128_si256(
        _mm_set_epi64x(static_cast<long long>(c.lo), static_cast<long long>(c.hi)));
    __m256i p0 = SNAPSAFE_VAES_PAIR(0), p1 = SNAPSAFE_VAES_PAIR(1);
    __m256i p2 = SNAPSAFE_VAES_PAIR(2), p3 = SNAPSAFE_VAES_PAIR(3);
    __m256i p4 = SNAPSAFE_VAES_PAIR(4), p5 = SNAPSAFE_VAES_PAIR(5);
    __m256i p6 = SNAPSAFE_VAES_PAIR(6), p7 = SNAPSAFE_VAES_PAIR(7);
#define SNAPSAFE_VAES_ROUND8(op)            \
  SNAPSAFE_VAES_ROUND4(op, p0, p1, p2, p3); \
  SNAPSAFE_VAES_ROUND4(op, p4, p5, p6, p7)
    SNAPSAFE_VAES_ENCRYPT(SNAPSAFE_VAES_ROUND8);
#undef SNAPSAFE_VAES_ROUND8
    __m256i* d = reinterpret_cast<__m256i*>(dst);
    _mm256_storeu_si256(d + 0, p0);
    _mm256_storeu_si256(d + 1, p1);
    _mm256_storeu_si256(d + 2, p2);
    _mm256_storeu_si256(d + 3, p3);
    _mm256_storeu_si256(d + 4, p4);
    _mm256_storeu_si256(d + 5, p5);
    _mm256_storeu_si256(d + 6, p6);
    _mm256_storeu_si256(d + 7, p7);
    dst += 16 * kAesBlockBytes;
    nblocks -= 16;
    c = advance(c, 16);
  }
  // 8 blocks in 4 registers: the rest, and groups where the low half wraps.
  while (nblocks > 0) {
    __m256i p0, p1, p2, p3;  // blocks (0, 1), (2, 3), (4, 5), (6, 7)
    if (group_without_carry(c)) {
      const __m256i base = _mm256_broadcastsi128_si256(
          _mm_set_epi64x(static_cast<long long>(c.lo), static_cast<long long>(c.hi)));
      p0 = SNAPSAFE_VAES_PAIR(0);
      p1 = SNAPSAFE_VAES_PAIR(1);
      p2 = SNAPSAFE_VAES_PAIR(2);
      p3 = SNAPSAFE_VAES_PAIR(3);
    } else {
      p0 = _mm256_set_m128i(counter_block(advance(c, 1)), counter_block(c));
      p1 = _mm256_set_m128i(counter_block(advance(c, 3)), counter_block(advance(c, 2)));
      p2 = _mm256_set_m128i(counter_block(advance(c, 5)), counter_block(advance(c, 4)));
      p3 = _mm256_set_m128i(counter_block(advance(c, 7)), counter_block(advance(c, 6)));
    }
#define SNAPSAFE_VAES_ROUND4_ALL(op) SNAPSAFE_VAES_ROUND4(op, p0, p1, p2, p3)
    SNAPSAFE_VAES_ENCRYPT(SNAPSAFE_VAES_ROUND4_ALL);
#undef SNAPSAFE_VAES_ROUND4_ALL
    __m256i* d = reinterpret_cast<__m256i*>(dst);
    if (nblocks >= 8) {
      _mm256_storeu_si256(d + 0, p0);
      _mm256_storeu_si256(d + 1, p1);
      _mm256_storeu_si256(d + 2, p2);
      _mm256_storeu_si256(d + 3, p3);
      dst += 8 * kAesBlockBytes;
      nblocks -= 8;
      c = advance(c, 8);
      continue;
    }
    // The last group (1..7 blocks): whole pairs, then a lone first half; the rest of the
    // keystream stays in the registers.
    if (nblocks >= 2) _mm256_storeu_si256(d + 0, p0);
    if (nblocks >= 4) _mm256_storeu_si256(d + 1, p1);
    if (nblocks >= 6) _mm256_storeu_si256(d + 2, p2);
    if (nblocks & 1) {
      const size_t stored = nblocks & ~size_t{1};
      const __m256i odd_pair = stored == 0 ? p0 : stored == 2 ? p1 : stored == 4 ? p2 : p3;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + stored * kAesBlockBytes),
                       _mm256_castsi256_si128(odd_pair));
    }
    nblocks = 0;
  }
}

// The key expansion fused with the first 16 blocks (a step's or a bulk step's first group):
// each round key, as it comes out of the expansion's serial AESKEYGENASSIST chain, is
// stored into the schedule and applied at once to the group's 8 registers, so the group's
// rounds run in the chain's shadow instead of after it (the expansion alone is ~60 cycles
// of latency). With `key_first` the group's first two blocks are the next key (K', written
// over `key` once its schedule is complete) and `nblocks` blocks of output follow them;
// else all of it is output. The round keys live in registers (`even`, `odd`, `k`) and in
// the schedule only, as in expand_into; the rest is vaes_ctr's from the schedule.
#define SNAPSAFE_VAES_FUSED_ROUND(op, round_key) \
  do {                                           \
    k = _mm256_broadcastsi128_si256(round_key);  \
    SNAPSAFE_VAES_ROUND4(op, p0, p1, p2, p3);    \
    SNAPSAFE_VAES_ROUND4(op, p4, p5, p6, p7);    \
  } while (0)
#define SNAPSAFE_VAES_FUSED_WHITEN(k) SNAPSAFE_VAES_FUSED_ROUND(_mm256_xor_si256, k)
#define SNAPSAFE_VAES_FUSED_MIDDLE(k) SNAPSAFE_VAES_FUSED_ROUND(_mm256_aesenc_epi128, k)
#define SNAPSAFE_VAES_FUSED_LAST(k) SNAPSAFE_VAES_FUSED_ROUND(_mm256_aesenclast_epi128, k)

SNAPSAFE_VAES void vaes_expand_ctr(AesSchedule* schedule, uint8_t key[kAesKeyBytes], Counter c,
                                   uint8_t* out, size_t nblocks, bool key_first) {
  const size_t first = key_first ? kAesKeyBytes / kAesBlockBytes : 0;
  if (nblocks + first < 16 || c.lo > UINT64_MAX - 15) {  // no whole first group: unfused
    expand_into(schedule, key);
    if (key_first) vaes_ctr(schedule, c, key, first);
    vaes_ctr(schedule, advance(c, first), out, nblocks);
    return;
  }
  const __m256i mask = _mm256_broadcastsi128_si256(bswap64_mask());
  const __m256i base = _mm256_broadcastsi128_si256(
      _mm_set_epi64x(static_cast<long long>(c.lo), static_cast<long long>(c.hi)));
  __m256i p0 = SNAPSAFE_VAES_PAIR(0), p1 = SNAPSAFE_VAES_PAIR(1);
  __m256i p2 = SNAPSAFE_VAES_PAIR(2), p3 = SNAPSAFE_VAES_PAIR(3);
  __m256i p4 = SNAPSAFE_VAES_PAIR(4), p5 = SNAPSAFE_VAES_PAIR(5);
  __m256i p6 = SNAPSAFE_VAES_PAIR(6), p7 = SNAPSAFE_VAES_PAIR(7);
  __m128i* rk = reinterpret_cast<__m128i*>(schedule->round_keys);
  __m256i k;
  SNAPSAFE_EXPAND_SCHEDULE(rk, key, SNAPSAFE_VAES_FUSED_WHITEN, SNAPSAFE_VAES_FUSED_MIDDLE,
                           SNAPSAFE_VAES_FUSED_LAST);
  // Pair i goes to out + 32 i, less the two blocks of K' when they come first.
#define SNAPSAFE_VAES_FUSED_STORE(i, p) \
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kAesBlockBytes * (2 * i - first)), p)
  if (key_first) {  // the schedule is complete: K' over K
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(key), p0);
  } else {
    SNAPSAFE_VAES_FUSED_STORE(0, p0);
  }
  SNAPSAFE_VAES_FUSED_STORE(1, p1);
  SNAPSAFE_VAES_FUSED_STORE(2, p2);
  SNAPSAFE_VAES_FUSED_STORE(3, p3);
  SNAPSAFE_VAES_FUSED_STORE(4, p4);
  SNAPSAFE_VAES_FUSED_STORE(5, p5);
  SNAPSAFE_VAES_FUSED_STORE(6, p6);
  SNAPSAFE_VAES_FUSED_STORE(7, p7);
#undef SNAPSAFE_VAES_FUSED_STORE
  const size_t done = 16 - first;  // output blocks made above
  vaes_ctr(schedule, advance(c, 16), out + done * kAesBlockBytes, nblocks - done);
}
#undef SNAPSAFE_VAES_FUSED_WHITEN
#undef SNAPSAFE_VAES_FUSED_MIDDLE
#undef SNAPSAFE_VAES_FUSED_LAST
#undef SNAPSAFE_VAES_FUSED_ROUND

// --- dispatch ------------------------------------------------------------------------

struct Impl {
  AesVariant variant;
  void (*expand)(AesSchedule*, const uint8_t*);  // nullptr: not in the page (EVP)
  void (*ctr)(const AesSchedule*, Counter, uint8_t*, size_t);
  void (*cbc_mac)(const AesSchedule*, const uint8_t*, size_t, uint8_t*);
  void (*clear)();
  // Expand fused with the first keystream group (nullptr: expand, then ctr): `nblocks`
  // blocks to `out`, after K' over `key` when `key_first`.
  void (*expand_ctr)(AesSchedule*, uint8_t*, Counter, uint8_t*, size_t, bool);
  // The reseed's: expand fused with the CBC-MAC's first block (the MAC to the last
  // argument); K' and up to kKeyOutMaxBlocks blocks of output in one group.
  void (*expand_mac)(AesSchedule*, const uint8_t*, const uint8_t*, size_t, uint8_t*);
  void (*ctr_key_out)(const AesSchedule*, Counter, uint8_t*, uint8_t*, size_t);
};

// AES-NI's legacy-SSE code on a CPU with AVX: the caller may leave the upper halves of the
// ymm/zmm registers dirty, and legacy SSE code after that pays a state transition
// (measured SHA-NI after AVX-512 code without vzeroupper: 11.5 us instead of ~0.1 us). Every
// step and the mask start with the expansion, so it clears them first; every call ends
// with vzeroall (clear_ymm).
__attribute__((target("avx"))) void aesni_avx_expand(AesSchedule* schedule,
                                                     const uint8_t key[kAesKeyBytes]) {
  _mm256_zeroupper();
  aesni_expand(schedule, key);
}
__attribute__((target("avx"))) void aesni_avx_expand_mac(AesSchedule* schedule, const uint8_t* key,
                                                         const uint8_t* input, size_t blocks,
                                                         uint8_t* out) {
  _mm256_zeroupper();
  aesni_expand_mac(schedule, key, input, blocks, out);
}

constexpr Impl kEvpImpl{AesVariant::kEvp, nullptr, nullptr, nullptr,
                        nullptr,          nullptr, nullptr, nullptr};
constexpr Impl kAesniImpl{AesVariant::kAesni, aesni_expand, aesni_ctr,        aesni_cbc_mac,
                          clear_xmm,          nullptr,      aesni_expand_mac, aesni_ctr_key_out};
// AES-NI on a CPU with AVX: vzeroall clears the upper halves too (and leaves them clean).
constexpr Impl kAesniAvxImpl{AesVariant::kAesni,   aesni_avx_expand, aesni_ctr,
                             aesni_cbc_mac,        clear_ymm,        nullptr,
                             aesni_avx_expand_mac, aesni_ctr_key_out};
constexpr Impl kVaesImpl{AesVariant::kVaesAvx2, vaes_expand,     vaes_ctr,
                         vaes_cbc_mac,          clear_ymm,       vaes_expand_ctr,
                         vaes_expand_mac,       vaes_ctr_key_out};

// CPUID.(EAX=7, ECX=0):ECX bit 9. Read directly: clang's __builtin_cpu_supports does not
// know "vaes" (the OS's support of the ymm state is checked through "avx2").
bool cpu_has_vaes() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 9)) != 0;
}

bool cpu_has(AesVariant variant) {
  __builtin_cpu_init();
  switch (variant) {
    case AesVariant::kEvp: return true;
    case AesVariant::kAesni:
      return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
    case AesVariant::kVaesAvx2:
      return __builtin_cpu_supports("aes") && cpu_has_vaes() && __builtin_cpu_supports("avx2");
  }
  return false;
}

const Impl* impl_of(AesVariant variant) {
  switch (variant) {
    case AesVariant::kAesni: return __builtin_cpu_supports("avx") ? &kAesniAvxImpl : &kAesniImpl;
    case AesVariant::kVaesAvx2: return &kVaesImpl;
    case AesVariant::kEvp: break;
  }
  return &kEvpImpl;
}

// The known answer a variant must give before it is chosen: 43 blocks (two 16-block
// groups, one 8-block group, a 3-block tail: every loop of both variants) under the key
// 00 01 .. 1f from the counter block 0001020304050607 fffffffffffffff0 (the low half
// carries after 16 blocks), checked by the FNV-1a-64 of the keystream, computed with
// OpenSSL's AES-256-CTR. A CPU or emulator can claim an instruction set it runs wrongly:
// QEMU 7.2's TCG with -cpu max offers VAES, and a guest that used it drew repeated 16-byte
// values (tests/vm/run); such a variant is passed over for the next (EVP at the end).
constexpr size_t kSelfTestBlocks = 43;
constexpr uint64_t kSelfTestDigest = 0x5fbc4ca61d1e9e67;

uint64_t fnv1a64(const uint8_t* bytes, size_t size, uint64_t digest = 0xcbf29ce484222325) {
  for (size_t i = 0; i < size; ++i) digest = (digest ^ bytes[i]) * 0x100000001b3;
  return digest;
}

// The known answer through ctr after expand, and, where the variant fuses them
// (expand_ctr), through the fused path too: all output, and K' then output (the same 43
// blocks, the first two over the key).
bool passes_known_answer(const Impl* impl) {
  if (impl->expand == nullptr) return true;  // EVP: OpenSSL is the reference
  alignas(64) AesSchedule schedule;
  uint8_t key[kAesKeyBytes];
  for (size_t i = 0; i < kAesKeyBytes; ++i) key[i] = static_cast<uint8_t>(i);
  const uint8_t counter[kAesBlockBytes] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0};
  uint8_t out[kSelfTestBlocks * kAesBlockBytes];
  impl->expand(&schedule, key);
  impl->ctr(&schedule, load_counter(counter), out, kSelfTestBlocks);
  bool fused_ok = true;
  if (impl->expand_ctr != nullptr) {
    uint8_t fused[kSelfTestBlocks * kAesBlockBytes];
    impl->expand_ctr(&schedule, key, load_counter(counter), fused, kSelfTestBlocks, false);
#ifdef SNAPSAFE_TESTING
    if (g_aes_ctr_test_flags.failing_fused_self_test == static_cast<int>(impl->variant)) {
      fused[100] ^= 1;
    }
#endif
    fused_ok = fnv1a64(fused, sizeof fused) == kSelfTestDigest;
    uint8_t next_key[kAesKeyBytes];
    std::memcpy(next_key, key, sizeof next_key);
    impl->expand_ctr(&schedule, next_key, load_counter(counter), fused,
                     kSelfTestBlocks - kAesKeyBytes / kAesBlockBytes, true);
    fused_ok = fused_ok && fnv1a64(fused, sizeof fused - kAesKeyBytes,
                                   fnv1a64(next_key, sizeof next_key)) == kSelfTestDigest;
  }
  // The reseed's head (expand fused with the MAC's first block, then K' and 6 blocks in one
  // group) against the same made unfused: expand, cbc_mac, ctr (checked above).
  const uint8_t* input = out;  // 3 blocks of known keystream as the cipher input
  uint8_t mac[kAesBlockBytes], next_key[kAesKeyBytes], head[6 * kAesBlockBytes];
  uint8_t unfused[8 * kAesBlockBytes];
  std::memcpy(next_key, key, sizeof next_key);
  impl->expand_mac(&schedule, next_key, input, 3, mac);
  impl->ctr_key_out(&schedule, load_counter(mac), next_key, head, 6);
  impl->expand(&schedule, key);
  impl->cbc_mac(&schedule, input, 3, mac);
  impl->ctr(&schedule, load_counter(mac), unfused, 8);
#ifdef SNAPSAFE_TESTING
  if (g_aes_ctr_test_flags.failing_reseed_self_test == static_cast<int>(impl->variant)) {
    head[20] ^= 1;
  }
#endif
  const bool head_ok = std::memcmp(unfused, next_key, sizeof next_key) == 0 &&
                       std::memcmp(unfused + sizeof next_key, head, sizeof head) == 0;
  wipe(&schedule, sizeof schedule);
  impl->clear();
#ifdef SNAPSAFE_TESTING
  if (g_aes_ctr_test_flags.failing_self_test == static_cast<int>(impl->variant)) out[100] ^= 1;
#endif
  return fnv1a64(out, sizeof out) == kSelfTestDigest && fused_ok && head_ok;
}

bool usable(AesVariant v) { return cpu_has(v) && passes_known_answer(impl_of(v)); }

constexpr AesVariant kFastestFirst[] = {AesVariant::kVaesAvx2, AesVariant::kAesni};

AesVariant choose_variant() {
  if (const char* wanted = secure_getenv("SNAPSAFE_KEYSTREAM")) {
    for (AesVariant v : kFastestFirst) {
      if (std::strcmp(wanted, aes_ctr_variant_name(v)) == 0 && usable(v)) return v;
    }
    return AesVariant::kEvp;  // "evp", or a name this CPU cannot run (correctly)
  }
  for (AesVariant v : kFastestFirst) {
    if (usable(v)) return v;
  }
  return AesVariant::kEvp;
}

constinit std::atomic<const Impl*> g_impl{nullptr};

[[gnu::noinline]] const Impl* choose_and_install() {
  const Impl* impl = impl_of(choose_variant());
  g_impl.store(impl, std::memory_order_relaxed);  // every thread computes the same
  return impl;
}

// Inlined into every public call: one load once chosen.
[[gnu::always_inline]] inline const Impl* active() {
  const Impl* impl = g_impl.load(std::memory_order_relaxed);
  if (__builtin_expect(impl != nullptr, 1)) return impl;
  return choose_and_install();
}

void clear_registers(const Impl* impl) {
  if (!SNAPSAFE_AES_TEST_FLAG(skip_register_clear)) impl->clear();
}

void wipe_schedule(AesSchedule* schedule) {
  if (!SNAPSAFE_AES_TEST_FLAG(skip_schedule_wipe)) wipe(schedule, sizeof *schedule);
}

bool fail_step(AesSchedule* schedule, uint8_t key[kAesKeyBytes], uint8_t* out, size_t size) {
  wipe(schedule, sizeof *schedule);
  wipe(key, kAesKeyBytes);
  wipe(out, size);
  return false;
}

}  // namespace

AesVariant aes_ctr_variant() noexcept { return active()->variant; }

const char* aes_ctr_variant_name(AesVariant variant) noexcept {
  switch (variant) {
    case AesVariant::kAesni: return "aesni";
    case AesVariant::kVaesAvx2: return "vaes-avx2";
    case AesVariant::kEvp: break;
  }
  return "evp";
}

bool aes_ctr_variant_supported(AesVariant variant) noexcept { return cpu_has(variant); }

bool aes256_expand(AesSchedule* schedule, const uint8_t key[kAesKeyBytes]) noexcept {
  const Impl* impl = active();
  if (impl->expand == nullptr) {
    wipe(schedule, sizeof *schedule);
    return false;
  }
  impl->expand(schedule, key);
  clear_registers(impl);
  return true;
}

bool aes256_ctr(const AesSchedule* schedule, uint8_t counter[kAesBlockBytes], uint8_t* out,
                size_t nblocks) noexcept {
  const Impl* impl = active();
  if (impl->ctr == nullptr) {
    wipe(out, nblocks * kAesBlockBytes);
    return false;
  }
  const Counter c = load_counter(counter);
  impl->ctr(schedule, c, out, nblocks);
  store_counter(advance(c, nblocks), counter);
  clear_registers(impl);
  return true;
}

void aes256_wipe(AesSchedule* schedule) noexcept { wipe_schedule(schedule); }

namespace {

// page_keystream_step after `key` was expanded into `schedule`.
bool step_expanded(const Impl* impl, AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                   uint8_t key[kAesKeyBytes], uint8_t* out, size_t size) {
  const Counter c = load_counter(counter);
  impl->ctr(schedule, c, key, kAesKeyBytes / kAesBlockBytes);  // K' over K (expanded)
  const uint64_t nblocks = size / kAesBlockBytes;
  impl->ctr(schedule, advance(c, kAesKeyBytes / kAesBlockBytes), out, nblocks);
  store_counter(advance(c, kAesKeyBytes / kAesBlockBytes + nblocks), counter);
  wipe_schedule(schedule);
  clear_registers(impl);
  return true;
}

// `key` expanded into `schedule` and `nblocks` blocks from the counter block to `out`
// (after K' over `key` when `key_first`): fused where the variant has it.
[[gnu::always_inline]] inline void expand_and_stream(const Impl* impl, AesSchedule* schedule,
                                                     uint8_t counter[kAesBlockBytes],
                                                     uint8_t key[kAesKeyBytes], uint8_t* out,
                                                     uint64_t nblocks, bool key_first) {
  const Counter c = load_counter(counter);
  const uint64_t first = key_first ? kAesKeyBytes / kAesBlockBytes : 0;
  if (impl->expand_ctr != nullptr) {
    impl->expand_ctr(schedule, key, c, out, nblocks, key_first);
  } else {
    impl->expand(schedule, key);
    if (key_first) impl->ctr(schedule, c, key, first);
    impl->ctr(schedule, advance(c, first), out, nblocks);
  }
  store_counter(advance(c, first + nblocks), counter);
}

}  // namespace

bool page_keystream_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                         uint8_t key[kAesKeyBytes], uint8_t* out, size_t size) noexcept {
  const Impl* impl = active();
  if (impl->expand == nullptr || size % kAesBlockBytes != 0) {
    return fail_step(schedule, key, out, size);
  }
  expand_and_stream(impl, schedule, counter, key, out, size / kAesBlockBytes, /*key_first=*/true);
  wipe_schedule(schedule);
  clear_registers(impl);
  return true;
}

bool page_keystream_reseed_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                                uint8_t key[kAesKeyBytes], uint8_t* out, size_t size,
                                const uint8_t* input, size_t input_blocks) noexcept {
  const Impl* impl = active();
  if (impl->expand == nullptr || size % kAesBlockBytes != 0) {
    return fail_step(schedule, key, out, size);
  }
  if (input_blocks > 0) {
    impl->expand_mac(schedule, key, input, input_blocks, counter);
  } else {
    impl->expand(schedule, key);
    std::memset(counter, 0, kAesBlockBytes);
  }
  const uint64_t nblocks = size / kAesBlockBytes;
  if (nblocks > kKeyOutMaxBlocks) return step_expanded(impl, schedule, counter, key, out, size);
  const Counter c = load_counter(counter);
  impl->ctr_key_out(schedule, c, key, out, nblocks);  // K' over K (expanded), the output
  store_counter(advance(c, kAesKeyBytes / kAesBlockBytes + nblocks), counter);
  wipe_schedule(schedule);
  clear_registers(impl);
  return true;
}

bool page_keystream_bulk_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                              uint8_t key[kAesKeyBytes], uint8_t* out, size_t size,
                              const uint8_t next_key[kAesKeyBytes]) noexcept {
  const Impl* impl = active();
  if (impl->expand == nullptr || size % kAesBlockBytes != 0) {
    return fail_step(schedule, key, out, size);
  }
  expand_and_stream(impl, schedule, counter, key, out, size / kAesBlockBytes,
                    /*key_first=*/false);
  std::memcpy(key, next_key, kAesKeyBytes);
  wipe_schedule(schedule);
  clear_registers(impl);
  return true;
}

#ifdef SNAPSAFE_TESTING
bool aes_ctr_force_variant_for_testing(AesVariant variant) noexcept {
  if (!cpu_has(variant)) return false;
  g_impl.store(impl_of(variant), std::memory_order_relaxed);
  return true;
}

void aes_ctr_reselect_for_testing() noexcept { g_impl.store(nullptr, std::memory_order_relaxed); }
#endif

}  // namespace snapsafe::rng_internal
