/* File: capi/c_api.h  (public name: snapsafe.h, which includes this file)
 *
 * The C interface to snapsafe, for C and any FFI (plain integers, pointers and sizes; no
 * structs, no callbacks, no global state of the caller's).
 *
 * Conventions, for every function:
 *  - returns 0 on success or a positive errno value: EINVAL for a bad argument (a NULL
 *    pointer where output is needed, a fixed-size output buffer that is too small, a
 *    bound of 0, malformed text); ERANGE when a variable-length result does not fit
 *    (the size needed is reported); the kernel's errno when it refuses entropy (ENOSYS,
 *    EPERM, ...); ENOMEM when memory runs out; EIO for any other internal failure.
 *  - fail closed: on any failure the output is zeroed (as far as out_size reaches: the
 *    bytes the function writes on success, e.g. 37 of a larger UUID text buffer, the whole
 *    buffer for snapsafe_fill and snapsafe_status), never left holding anything
 *    predictable; bytes past the output are never written;
 *  - no C++ exception ever leaves a function, and no argument makes it abort;
 *  - thread-safe; output is never shared between threads, processes, fork children or
 *    clones restored from one snapshot (see README.md for what protects the process).
 * Signal handlers: a draw that interrupts another draw on the same thread is served by the
 * kernel and never gets the interrupted draw's bytes. Otherwise a draw in a handler is
 * async-signal-safe only while it needs no reseed: the first draw of a thread, and the
 * first after a generation change or a fork, reseed, and a reseed allocates (OpenSSL's
 * digest context). In kernel-backed mode (no generation source) a draw of any size
 * allocates nothing, but for a thread's first, which maps its vDSO getrandom state and
 * registers a thread-exit destructor. A handler that calls fork() while it interrupts a
 * draw: the draw resumes in the child and is redone there from fresh state, never
 * returning the parent's bytes (nor zeros as success). Draw in handlers only what you
 * could not draw before. The UUID version 7 functions are never async-signal-safe (they
 * keep a per-thread counter).
 *
 * Example:
 *   uint8_t key[32];
 *   if (snapsafe_fill(key, sizeof key) != 0) abort();   // fail closed
 *   char id[SNAPSAFE_UUID_TEXT_SIZE];
 *   snapsafe_uuid_v7(id, sizeof id);                    // "0190f4e2-7c1a-7..."
 *   uint64_t die;
 *   snapsafe_uniform(6, &die);                          // 0..5, no modulo bias
 */
#ifndef SNAPSAFE_CAPI_C_API_H_
#define SNAPSAFE_CAPI_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SNAPSAFE_UUID_SIZE 16            /* a UUID's bytes, RFC 9562 order */
#define SNAPSAFE_UUID_TEXT_SIZE 37       /* 36 characters and a NUL */
#define SNAPSAFE_REQUEST_ID_TEXT_SIZE 33 /* 32 hex digits and a NUL */

/* Fills `size` bytes at `data` with cryptographically secure random bytes. EINVAL if
 * data is NULL and size is not 0 (a size of 0 does nothing and returns 0). */
int snapsafe_fill(void* data, size_t size);

/* Stores a uniformly distributed 64-bit value in *out. EINVAL if out is NULL. */
int snapsafe_u64(uint64_t* out);

/* Stores a uniformly distributed value in [0, bound) in *out, without modulo bias
 * (rejection sampling: Lemire's multiply-and-reject). EINVAL if out is NULL or bound is
 * 0 (*out is then 0 if out is not NULL). */
int snapsafe_uniform(uint64_t bound, uint64_t* out);

/* A version 4 (random) or version 7 (time-ordered, see ids/uuid.h) UUID as text: 36
 * lower-case characters and a NUL in out[0..36]. EINVAL if out is NULL or out_size < 37. */
int snapsafe_uuid_v4(char* out, size_t out_size);
int snapsafe_uuid_v7(char* out, size_t out_size);

/* The same as 16 bytes in RFC 9562 order. EINVAL if out is NULL or out_size < 16. */
int snapsafe_uuid_v4_bytes(uint8_t* out, size_t out_size);
int snapsafe_uuid_v7_bytes(uint8_t* out, size_t out_size);

/* Parses the canonical text form: exactly `text_len` characters (no NUL needed; pass
 * strlen(text) for a C string), 8-4-4-4-12 hex digits in either case. With
 * expected_version 1..8 the UUID must also be of the RFC 9562 variant and that version;
 * 0 accepts any. Writes 16 bytes to out. EINVAL for NULL pointers, out_size < 16, an
 * expected_version outside 0..8, malformed text or a version/variant mismatch (out is
 * then zeroed). */
int snapsafe_uuid_parse(const char* text, size_t text_len, int expected_version, uint8_t* out,
                        size_t out_size);

/* Writes the canonical text of a 16-byte UUID (36 characters and a NUL). EINVAL if a
 * pointer is NULL or out_size < 37. */
int snapsafe_uuid_format(const uint8_t* uuid, char* out, size_t out_size);

/* A request ID: 128 random bits as 32 lower-case hex digits and a NUL. EINVAL if out is
 * NULL or out_size < 33. */
int snapsafe_request_id(char* out, size_t out_size);

/* The multi-line status report (snapsafe::status().to_string(): which sources protect
 * this process, per event) with a terminating NUL. If it does not fit in out_size bytes,
 * returns ERANGE, stores "" when out_size > 0, and stores the size needed (NUL included)
 * in *needed; needed may be NULL. out may be NULL only with out_size 0 (a size query).
 * The report holds live counters, so it can grow by a few bytes between two calls: leave
 * some room. *needed is also set on success. EINVAL if out is NULL and out_size > 0. */
int snapsafe_status(char* out, size_t out_size, size_t* needed);

/* Writes the active generation source's name ("sysgenid-mmap", "kernel", ...) with a
 * terminating NUL, truncated to out_size. EINVAL if out is NULL or out_size is 0. */
int snapsafe_source_name(char* out, size_t out_size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SNAPSAFE_CAPI_C_API_H_ */
