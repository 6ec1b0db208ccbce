/* File: rng/c_api.h
 *
 * The C interface to snapsafe. Every function returns 0 on success or a positive errno
 * value on failure (fail closed: on failure the output is zeroed, never filled with
 * anything predictable). No function throws. snapsafe_fill is async-signal-safe once the
 * calling thread has drawn before (a first draw allocates); a draw that interrupts
 * another on the same thread is served by the kernel.
 */
#ifndef SNAPSAFE_RNG_C_API_H_
#define SNAPSAFE_RNG_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fills `size` bytes at `data` with cryptographically secure random bytes. EINVAL if
 * data is NULL and size is not 0. */
int snapsafe_fill(void* data, size_t size);

/* Stores a uniformly distributed 64-bit value in *out. EINVAL if out is NULL. */
int snapsafe_u64(uint64_t* out);

/* Writes a version-4 UUID as 36 characters plus a terminating NUL into out[0..36].
 * EINVAL if out is NULL or out_size < 37. */
int snapsafe_uuid_v4(char* out, size_t out_size);

/* Writes the active generation source's name ("sysgenid-mmap", "kernel", ...) with a
 * terminating NUL, truncated to out_size. EINVAL if out is NULL or out_size is 0. */
int snapsafe_source_name(char* out, size_t out_size);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* SNAPSAFE_RNG_C_API_H_ */
