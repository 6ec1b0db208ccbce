// Nonces and the nonce sequence: see nonce.h.
#include "ids/nonce.h"

#include <stdexcept>

#include "genid/select.h"
#include "ids/internal/epoch.h"

namespace snapsafe {
namespace {

constexpr uint64_t kJumpRange = uint64_t{1} << 32;  // a jump is 1 + [0, 2^32)

// Whether a clone of this process can be seen at all: not in kernel-backed mode (nothing
// to watch), not once the sources were retired.
bool clones_visible() {
  return genid::init().active.kind != genid::SourceKind::kKernel && !genid::retired();
}

}  // namespace

std::vector<uint8_t> nonce(size_t size) {
  std::vector<uint8_t> bytes(size);
  fill(bytes.data(), bytes.size());
  return bytes;
}

NonceSequence::NonceSequence() {
  genid::init();  // installs the generation reader
  const ids_internal::Epoch epoch = ids_internal::current_epoch();
  uint64_t random[2];
  fill(random, sizeof random);
  prefix_ = static_cast<uint32_t>(random[0]);
  next_counter_ = random[1] % kJumpRange;
  generation_ = epoch.generation;
  fork_token_ = epoch.fork_token;
}

Nonce96 NonceSequence::next() {
  std::lock_guard<std::mutex> lock(mutex_);
  const ids_internal::Epoch epoch = ids_internal::current_epoch();
  const bool blind = epoch.generation == genid::kGenerationUnknown || !clones_visible();
  if (blind || !ids_internal::same_epoch({generation_, fork_token_}, epoch)) {
    refresh(epoch.generation, epoch.fork_token, blind);
  }
  if (exhausted_) throw std::length_error("snapsafe::NonceSequence: every nonce was used; rekey");
  const uint64_t counter = next_counter_;
  if (counter == UINT64_MAX) {
    exhausted_ = true;
  } else {
    next_counter_ = counter + 1;
  }
  Nonce96 out;
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(prefix_ >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(counter >> (56 - 8 * i));
  return out;
}

// A new random prefix and a random jump of the counter. The jump never wraps: if it
// would pass 2^64 - 1, the sequence is exhausted instead. Draws first, so a failed draw
// (entropy_error) changes nothing.
void NonceSequence::refresh(uint64_t generation, uint64_t fork_token, bool every_nonce) {
  uint64_t random[2];
  fill(random, sizeof random);
  const uint64_t jump = 1 + random[1] % kJumpRange;
  prefix_ = static_cast<uint32_t>(random[0]);
  if (!exhausted_) {
    if (next_counter_ > UINT64_MAX - jump) {
      exhausted_ = true;
    } else {
      next_counter_ += jump;
    }
  }
  // In blind mode the stamp stays as it was: every nonce refreshes anyway.
  if (!every_nonce) {
    generation_ = generation;
    fork_token_ = fork_token;
  }
}

}  // namespace snapsafe
