// Kernel-backed draws allocate nothing, at any size.
//
// Outputs over 64 bytes used to be masked by an AES-256-CTR keystream under a hardware key,
// in an OpenSSL cipher context allocated per draw (EVP_CIPHER_CTX_new), also when the draw
// ran in a signal handler: kernel-backed mode has no thread state, so a handler's draw is
// not recognised as re-entry, and malloc() from a handler that interrupted malloc()
// deadlocks or corrupts the heap. Now every size is masked word by word
// (rng/internal/kernel_output.h). Every allocation OpenSSL makes (CRYPTO_set_mem_functions,
// before its first) and every operator new are counted; after a thread's first
// kernel-served draw (it maps the thread's vDSO state and registers its destructor),
// kernel-backed draws of 65 bytes to 64 KiB count none. Control: the counter does see an
// OpenSSL cipher context, what the old mask allocated per draw.
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "capi/c_api.h"
#include "rng/fill.h"
#include "tests/test_util.h"

namespace {

thread_local bool t_counting = false;
std::atomic<size_t> g_allocations{0};

void count() {
  if (t_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
}

void* counted_malloc(size_t size, const char*, int) {
  count();
  return std::malloc(size);
}
void* counted_realloc(void* p, size_t size, const char*, int) {
  count();
  return std::realloc(p, size);
}
void plain_free(void* p, const char*, int) { std::free(p); }

// Before OpenSSL's first allocation: a static initializer of this test binary.
const bool g_openssl_hooked =
    CRYPTO_set_mem_functions(&counted_malloc, &counted_realloc, &plain_free) == 1;

}  // namespace

void* operator new(size_t size) {
  count();
  if (void* p = std::malloc(size != 0 ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace snapsafe {
namespace {

// Allocations made by `body` on this thread.
template <typename Body>
size_t allocations_during(Body body) {
  g_allocations = 0;
  t_counting = true;
  body();
  t_counting = false;
  return g_allocations.load();
}

class KernelOutputAllocation : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(g_openssl_hooked) << "OpenSSL allocated before the test could count";
    testing::use_source({{"SNAPSAFE_SOURCE", "kernel"}});
  }
};

TEST_F(KernelOutputAllocation, KernelBackedDrawsAllocateNothing) {
  testing::on_new_thread([] {
    static uint8_t buffer[65536];
    fill(buffer, 16);  // the thread's first kernel-served draw: its vDSO state
    for (size_t size : {16, 64, 65, 1000, 4096, 65536}) {
      EXPECT_EQ(allocations_during([&] { fill(buffer, size); }), 0u) << size << " bytes";
      EXPECT_EQ(allocations_during([&] { (void)snapsafe_fill(buffer, size); }), 0u)
          << size << " bytes, C API";
    }
  });
}

TEST_F(KernelOutputAllocation, ControlTheCounterSeesACipherContext) {
  EXPECT_GT(allocations_during([] {
              EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
              EVP_CIPHER_CTX_free(ctx);
            }),
            0u);
  EXPECT_GT(allocations_during([] { delete new int(1); }), 0u);
}

}  // namespace
}  // namespace snapsafe
