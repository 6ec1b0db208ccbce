// Real fork(): the child never shares output or key material with its parent.
// Two independent guards, each tested alone with the other switched off (test hooks), and
// a negative control with both off showing the hazard:
//  - MADV_WIPEONFORK on every state page (the child sees "never seeded");
//  - the pthread_atfork child handler, for pages that lost the flag: CRIU restores every
//    byte of the page but not MADV_WIPEONFORK (measured: parent and child of a restored
//    process printed the same values).
// The flag is applied again at the first reseed after a generation change (a restore
// changes it), for children made without fork()'s handlers (_Fork(), raw clone()).
// And what a fork child must not hold: another thread's key and unread output, or a
// live key in its copy of the OpenSSL cipher context (evp keystream; measured before: a
// child predicted its parent's next 64 bytes from it). With the in-page keystream there is
// no context: the key schedule is in the state page, wiped after every step (else its
// first round keys are the step's key, and give back output already handed out).
// //tests:fork_evp_test runs this file under SNAPSAFE_KEYSTREAM=evp.
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "rng/fill.h"
#include "rng/internal/aes_ctr_in_page.h"
#include "rng/internal/draw.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "rng/status.h"
#include "tests/test_util.h"

namespace snapsafe {
namespace {

using testing::Bytes;

Bytes draw_blocks() {
  Bytes bytes(256 * 16);
  for (size_t i = 0; i < 256; ++i) fill(bytes.data() + 16 * i, 16);
  return bytes;
}

size_t shared_blocks_after_fork() {
  size_t shared = 0;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);  // seed: the buffer now holds unread output
    testing::Child child = testing::fork_child(draw_blocks);
    const Bytes parent = draw_blocks();
    shared = testing::shared_blocks(parent, testing::collect(child));
  });
  return shared;
}

// Whether this process's states run on the in-page keystream (not the evp variant).
bool in_page() { return rng_internal::aes_ctr_variant() != rng_internal::AesVariant::kEvp; }

class Fork : public ::testing::Test {
 protected:
  void SetUp() override { counter_ = testing::use_fresh_counter_file(); }  // buffered
  void TearDown() override {
    rng_internal::g_test_hooks = {};
    rng_internal::g_aes_ctr_test_flags = {};
  }
  std::string counter_;
};

TEST_F(Fork, ChildAndParentShareNoBlock) { EXPECT_EQ(shared_blocks_after_fork(), 0u); }

TEST_F(Fork, WipeOnForkAloneSeparatesThem) {
  rng_internal::g_test_hooks.disable_fork_handler = true;
  EXPECT_EQ(shared_blocks_after_fork(), 0u);
}

TEST_F(Fork, AfterARestoreDroppedWipeOnForkTheForkHandlerSeparatesThem) {
  rng_internal::g_test_hooks.disable_wipe_on_fork = true;  // as CRIU restores the page
  EXPECT_EQ(shared_blocks_after_fork(), 0u);
}

TEST_F(Fork, NegativeControlWithNeitherGuardTheyRepeat) {
  rng_internal::g_test_hooks.disable_wipe_on_fork = true;
  rng_internal::g_test_hooks.disable_fork_handler = true;
  EXPECT_EQ(shared_blocks_after_fork(), 256u);
}

TEST_F(Fork, GrandchildrenToo) {
  testing::on_new_thread([] {
    fill(Bytes(16).data(), 16);
    const Bytes child = testing::run_in_child([] {
      fill(Bytes(16).data(), 16);
      const Bytes grandchild = testing::run_in_child(draw_blocks);
      Bytes both = draw_blocks();
      both.insert(both.end(), grandchild.begin(), grandchild.end());
      return both;
    });
    ASSERT_EQ(child.size(), 2 * 256 * 16u);
    const Bytes mine = draw_blocks();
    const Bytes child_part(child.begin(), child.begin() + 256 * 16);
    const Bytes grandchild_part(child.begin() + 256 * 16, child.end());
    EXPECT_EQ(testing::shared_blocks(mine, child_part), 0u);
    EXPECT_EQ(testing::shared_blocks(mine, grandchild_part), 0u);
    EXPECT_EQ(testing::shared_blocks(child_part, grandchild_part), 0u);
  });
}

// Another thread's state, as a child forked by this thread finds it: 1 if that page is
// still mapped and holds key or output bytes, 0 if it is gone. Pages as after a restore.
Bytes other_thread_state_in_child() {
  rng_internal::g_test_hooks.disable_wipe_on_fork = true;
  std::atomic<rng_internal::ThreadState*> other{nullptr};
  std::atomic<bool> done{false};
  std::thread holder([&] {
    fill(Bytes(16).data(), 16);  // a key and unread output
    other = rng_internal::t_state;
    while (!done) std::this_thread::yield();
  });
  while (other == nullptr) std::this_thread::yield();
  const Bytes verdict = testing::run_in_child([&] {
    const auto* page = reinterpret_cast<const unsigned char*>(other.load());
    if (msync(const_cast<unsigned char*>(page), rng_internal::kStateBytes, MS_ASYNC) != 0) {
      return Bytes{0};  // unmapped
    }
    size_t nonzero = 0;
    for (size_t i = 0; i < rng_internal::kStateBytes; ++i) nonzero += page[i] != 0;
    return Bytes{static_cast<uint8_t>(nonzero > 64 ? 1 : 0)};
  });
  done = true;
  holder.join();
  return verdict;
}

TEST_F(Fork, OtherThreadsKeysAndOutputAreGoneInTheChild) {
  EXPECT_EQ(other_thread_state_in_child(), Bytes{0});
}

TEST_F(Fork, NegativeControlWithoutTheForkHandlerTheChildHoldsThem) {
  rng_internal::g_test_hooks.disable_fork_handler = true;
  EXPECT_EQ(other_thread_state_in_child(), Bytes{1});
}

// Whether a fork child, from its copy of this thread's cipher context alone, predicts
// any of the output its parent draws next: the rest of its buffer and the next refill.
// The child tries every counter block the parent's keys will use soon (from the counter
// the context holds now: the reseed's first block is the public C0 of seed.h) with
// whatever key the context holds (an IV-only re-init keeps the key schedule).
bool child_predicts_parent_from_cipher_context() {
  bool predicted = false;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);  // a reseed and its first step: counter blocks C0..C0+5
    const Bytes guesses = testing::run_in_child([] {
      EVP_CIPHER_CTX* ctx = rng_internal::thread_cipher_context();
      Bytes all;
      const uint8_t zeros[16] = {};
      uint8_t now[16] = {};
      if (ctx == nullptr || EVP_CIPHER_CTX_get_updated_iv(ctx, now, sizeof now) != 1) return all;
      uint64_t low = 0;
      for (int i = 0; i < 8; ++i) low |= static_cast<uint64_t>(now[15 - i]) << (8 * i);
      for (uint64_t c = low; c - low < 700; ++c) {
        uint8_t iv[16], block[16];
        std::memcpy(iv, now, 8);  // the high half: no carry within 700 blocks but 2^-54 of runs
        for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<uint8_t>(c >> (8 * i));
        int written = 0;
        if (EVP_EncryptInit_ex2(ctx, nullptr, nullptr, iv, nullptr) != 1 ||
            EVP_EncryptUpdate(ctx, block, &written, zeros, 16) != 1) {
          return Bytes{};
        }
        all.insert(all.end(), block, block + 16);
      }
      return all;
    });
    Bytes next(rng_internal::t_state->remaining + 1024);  // buffer rest, then a refill
    for (size_t i = 0; i < next.size(); i += 16) fill(next.data() + i, 16);
    predicted = testing::shared_blocks(guesses, next) > 0;
  });
  return predicted;
}

TEST_F(Fork, TheCipherContextHoldsNoLiveKey) {
  EXPECT_FALSE(child_predicts_parent_from_cipher_context());
}

TEST_F(Fork, NegativeControlAKeptNextKeyPredictsTheParent) {
  if (in_page()) GTEST_SKIP() << "no cipher context: //tests:fork_evp_test runs this";
  rng_internal::g_test_hooks.keep_key_in_cipher = true;
  EXPECT_TRUE(child_predicts_parent_from_cipher_context());
}

// The in-page keystream's key schedule, as a thread's state page holds it after a draw
// (what a core dump without MADV_DONTDUMP, a snapshot or a restored copy would hold): all
// zero, or not. And whether its round keys 0-1 (AES-256's are the key itself) regenerate
// the bytes that draw handed out: the keystream of that key from counter 0, as the state's
// reseed made it (its first two blocks the next key, then the output).
struct ScheduleAfterADraw {
  bool zero = false;
  bool gives_back_the_output = false;
};

ScheduleAfterADraw schedule_after_a_draw() {
  rng_internal::g_test_hooks.disable_state_pool = true;  // a fresh state: the draw reseeds
  ScheduleAfterADraw seen;
  testing::on_new_thread([&] {
    Bytes drawn(16);
    fill(drawn.data(), drawn.size());
    const rng_internal::AesSchedule& schedule = rng_internal::t_state->schedule;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&schedule);
    seen.zero = Bytes(bytes, bytes + sizeof schedule) == Bytes(sizeof schedule, 0);
    const uint8_t* key = schedule.round_keys[0];  // round keys 0 and 1: 32 bytes
    // The reseed step's first counter block (seed.h's C0, public): the state's counter
    // block, back by the blocks of that step (the next key and the first refill).
    uint8_t iv[16];
    std::memcpy(iv, rng_internal::t_state->counter, sizeof iv);
    unsigned borrow = 2 + rng_internal::kFirstRefillBytes / 16;
    for (int i = 15; i >= 0; --i) {
      const unsigned byte = iv[i];
      iv[i] = static_cast<uint8_t>(byte - borrow);
      borrow = (byte < borrow) ? (borrow - byte + 255) / 256 : 0;
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    Bytes stream(32 + rng_internal::kFirstRefillBytes, 0);
    int written = 0;
    ASSERT_EQ(EVP_EncryptInit_ex2(ctx, EVP_aes_256_ctr(), key, iv, nullptr), 1);
    ASSERT_EQ(EVP_EncryptUpdate(ctx, stream.data(), &written, stream.data(),
                                static_cast<int>(stream.size())),
              1);
    EVP_CIPHER_CTX_free(ctx);
    seen.gives_back_the_output = testing::shared_blocks(stream, drawn) > 0;
  });
  return seen;
}

TEST_F(Fork, TheStatePageHoldsNoKeyScheduleAfterADraw) {
  if (!in_page()) GTEST_SKIP() << "evp keystream: no schedule in the page";
  const ScheduleAfterADraw seen = schedule_after_a_draw();
  EXPECT_TRUE(seen.zero);
  EXPECT_FALSE(seen.gives_back_the_output);
}

TEST_F(Fork, NegativeControlAnUnwipedScheduleGivesBackOutputHandedOut) {
  if (!in_page()) GTEST_SKIP() << "evp keystream: no schedule in the page";
  rng_internal::g_aes_ctr_test_flags.skip_schedule_wipe = true;
  const ScheduleAfterADraw seen = schedule_after_a_draw();
  EXPECT_FALSE(seen.zero);
  EXPECT_TRUE(seen.gives_back_the_output);
}

// A kernel without MADV_WIPEONFORK (before 4.14): no state is ever buffered, every draw is
// served by the kernel, status() says so, and no thread retries the mapping.
TEST_F(Fork, WithoutWipeOnForkNothingIsBuffered) {
  rng_internal::g_test_hooks.refuse_wipe_on_fork = true;
  testing::on_new_thread([] {
    fill(Bytes(16).data(), 16);
    EXPECT_EQ(rng_internal::t_state, nullptr);
  });
  EXPECT_TRUE(rng_internal::thread_states_unavailable());
  EXPECT_FALSE(status().buffered) << status().to_string();
  rng_internal::g_test_hooks.refuse_wipe_on_fork = false;  // the refusal is remembered
  testing::on_new_thread([] {
    fill(Bytes(16).data(), 16);
    EXPECT_EQ(rng_internal::t_state, nullptr);
  });
  EXPECT_EQ(shared_blocks_after_fork(), 0u);
  rng_internal::reset_wipe_on_fork_refusal_for_testing();
}

// A restore drops MADV_WIPEONFORK from the state page (done here by hand, as CRIU does)
// and its hook bumps the generation; the thread's next draw reseeds. Then a child made by
// _Fork(), which runs no fork() handlers (so only the page flag can wipe its copy): whether
// it finds the key its parent holds.
bool handlerless_child_holds_the_parents_key(const std::string& counter_file) {
  bool holds = false;
  testing::on_new_thread([&] {
    fill(Bytes(16).data(), 16);
    rng_internal::ThreadState* const st = rng_internal::t_state;
    ASSERT_EQ(madvise(st, rng_internal::kStateBytes, MADV_KEEPONFORK), 0);  // the restore
    testing::bump(counter_file);                                            // its hook
    fill(Bytes(16).data(), 16);  // reseeds under the new generation
    uint8_t key[32];
    std::memcpy(key, st->key, sizeof key);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = _Fork();
    if (pid == 0) {  // async-signal-safe calls only: another thread may hold any lock
      const char same = std::memcmp(st->key, key, sizeof key) == 0 ? 1 : 0;
      _exit(write(fds[1], &same, 1) == 1 ? 0 : 1);
    }
    ASSERT_GT(pid, 0);
    close(fds[1]);
    char same = 0;
    EXPECT_EQ(read(fds[0], &same, 1), 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    holds = same == 1;
  });
  return holds;
}

TEST_F(Fork, AReseedAfterARestoreFlagsTheStateAgainForChildrenWithoutForkHandlers) {
  EXPECT_FALSE(handlerless_child_holds_the_parents_key(counter_));
}

TEST_F(Fork, NegativeControlWithoutTheFlagAgainAHandlerlessChildHoldsTheParentsKey) {
  rng_internal::g_test_hooks.disable_reflag = true;
  EXPECT_TRUE(handlerless_child_holds_the_parents_key(counter_));
}

}  // namespace
}  // namespace snapsafe
