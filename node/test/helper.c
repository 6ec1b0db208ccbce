/* File: node/test/helper.c
 *
 * A test-only addon (build.js --test-helper): blockGetrandom(errno) installs a seccomp
 * filter on the calling thread (Node's main thread, and threads it starts afterwards)
 * that makes getrandom(2) fail with `errno`, as a strict sandbox or an old kernel does,
 * so the tests can see the binding fail closed. x86_64 only; returns false where
 * seccomp filters are not available. getrandomErrno() calls getrandom(2) itself and
 * returns its errno (0 on success): the tests' proof that the filter blocks.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static napi_value block_getrandom(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t error = 0;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, arg, &error) != napi_ok) {
    napi_throw_type_error(env, NULL, "blockGetrandom(errno)");
    return NULL;
  }
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getrandom, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)error & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
  int ok = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value getrandom_errno(napi_env env, napi_callback_info info) {
  (void)info;
  unsigned char buffer[16];
  long got = syscall(SYS_getrandom, buffer, sizeof buffer, 0);
  napi_value result;
  napi_create_int32(env, got < 0 ? errno : 0, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value block, probe;
  if (napi_create_function(env, "blockGetrandom", NAPI_AUTO_LENGTH, block_getrandom, NULL,
                           &block) != napi_ok ||
      napi_set_named_property(env, exports, "blockGetrandom", block) != napi_ok ||
      napi_create_function(env, "getrandomErrno", NAPI_AUTO_LENGTH, getrandom_errno, NULL,
                           &probe) != napi_ok ||
      napi_set_named_property(env, exports, "getrandomErrno", probe) != napi_ok)
    return NULL;
  return exports;
}
