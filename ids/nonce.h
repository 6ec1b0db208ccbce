// File: ids/nonce.h
//
// Nonces from the snapshot-safe generator: random nonces of any size, and a nonce
// sequence for one key whose 96-bit values never repeat within the process and differ
// across VM/container clones and fork children.
//
// Example:
//   auto iv = snapsafe::nonce96();                   // a random 96-bit AEAD nonce
//   auto salt = snapsafe::nonce<16>();               // any size known at compile time
//   std::vector<uint8_t> challenge = snapsafe::nonce(48);
//
//   snapsafe::NonceSequence nonces;                  // one per key, shared by threads
//   snapsafe::Nonce96 n = nonces.next();             // AES-GCM, ChaCha20-Poly1305
//
// Random or sequence? A random 96-bit nonce per message is simple and clone-safe (every
// draw checks the generation), but under one key the birthday bound limits it to about
// 2^32 messages (NIST SP 800-38D). A NonceSequence never repeats within the process, so
// the limit is the key's own, not the nonce's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "rng/fill.h"

namespace snapsafe {

using Nonce96 = std::array<uint8_t, 12>;

// N random bytes for use as a nonce (an IV, a salt, a challenge).
template <size_t N>
std::array<uint8_t, N> nonce() {
  std::array<uint8_t, N> bytes;
  fill(bytes.data(), bytes.size());
  return bytes;
}

// A random 96-bit nonce (nonce<12>()).
inline Nonce96 nonce96() { return nonce<12>(); }

// `size` random bytes (any size, chosen at run time).
std::vector<uint8_t> nonce(size_t size);

// 96-bit nonces for one key: bytes 0..3 are a 32-bit random prefix, bytes 4..11 a 64-bit
// counter (both big-endian).
//
// Within the process, no value ever repeats: next() hands out each counter value once
// (under a mutex), the counter only increases and never wraps, so two nonces differ in
// their counter whatever their prefixes. When 2^64 values are used up, next() throws
// std::length_error: rekey.
//
// Across clones and forks: the sequence remembers the generation (genid/) and the fork
// token of the process it last served. When either differs, the next nonce takes a new
// random prefix and the counter jumps ahead by a random amount in [1, 2^32]. Two clones
// restored from one snapshot (or a parent and its fork child) then repeat a nonce only if
// their new prefixes are equal (probability 2^-32) and their counter ranges overlap
// (about 2n/2^32 after n nonces each): about n * 2^-63 per pair of clones, and
// K^2/2 * n * 2^-63 for K clones. None of them ever repeats a nonce handed out before the
// snapshot (those counters are all lower). The counter starts at a random value below
// 2^32, so two sequences made independently for one key also differ (64 random bits).
//
// When no clone can be seen (kernel-backed mode: no generation source, or a source that
// was retired, or a generation that cannot be read right now), every nonce takes a new
// prefix and a random jump: the sequence is then as strong as random 64-bit nonces across
// clones, still never repeats within the process, and its counter lasts at least 2^32
// nonces (each jump uses at most 2^32 of 2^64). Rekey before that: it is also NIST's
// limit for random nonces.
//
// Not covered: a nonce being made while the snapshot is taken (both clones return it);
// a fork child of a process in which another thread held the mutex at the fork (it
// deadlocks, as any std::mutex does). Not copyable or movable: a copy would repeat
// the original's nonces.
class NonceSequence {
 public:
  // Draws the prefix and the starting counter. Throws snapsafe::entropy_error if the
  // kernel refuses entropy.
  NonceSequence();
  NonceSequence(const NonceSequence&) = delete;
  NonceSequence& operator=(const NonceSequence&) = delete;

  // The next nonce. Thread-safe. Throws snapsafe::entropy_error (nothing consumed) or
  // std::length_error (exhausted).
  Nonce96 next();

 private:
  friend struct NonceSequenceTestPeer;  // tests only: sets the counter near its end

  void refresh(uint64_t generation, uint64_t fork_token, bool every_nonce);

  std::mutex mutex_;
  uint32_t prefix_ = 0;
  uint64_t next_counter_ = 0;  // the counter of the next nonce
  bool exhausted_ = false;     // every counter value was handed out
  uint64_t generation_ = 0;    // the generation and fork token the prefix was drawn for
  uint64_t fork_token_ = 0;
};

}  // namespace snapsafe
