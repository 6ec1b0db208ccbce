/* File: node/src/addon.c
 *
 * The native half of snapsafe's Node binding: an N-API (Node-API version 8) addon over
 * snapsafe's C API (snapsafe.h), linked against libsnapsafe.so. It only draws and
 * reports; index.js checks arguments and shapes the API like node:crypto's. N-API is
 * ABI-stable, so the addon built once works with every Node release that has version 8.
 *
 * Exports:
 *   fill(view, offset, size)   fills bytes [offset, offset+size) of a TypedArray,
 *                              DataView or ArrayBuffer (range checked again here)
 *   uniform(bound)             an integer in [0, bound), 1 <= bound <= 2**53, no bias
 *   uuidV4(), uuidV7()         canonical text
 *   status(), sourceName()     the library's report and the active source's name
 * A nonzero return of the C API throws: EINVAL a TypeError with code
 * ERR_INVALID_ARG_VALUE, any other errno an Error whose code is the errno's name
 * ("EPERM", "ENOSYS", "ENOMEM"...), with `errno` (the positive number) and `function`
 * (the C function). No entropy is cached here: every call draws from the library, which
 * reseeds after fork and snapshot restore.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapsafe.h"

#define MAX_SAFE_INTEGER 9007199254740991.0 /* 2**53 - 1 */

/* Throws the error for C API return `code` of `function`; returns NULL for the caller. */
static napi_value throw_c_error(napi_env env, int code, const char* function) {
  char message[160];
  if (code == EINVAL) {
    snprintf(message, sizeof message, "%s: invalid argument", function);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return NULL;
  }
  const char* name = strerrorname_np(code);
  snprintf(message, sizeof message, "%s: %s", function, strerror(code));
  napi_value error, code_value, message_value, errno_value, function_value;
  if (napi_create_string_utf8(env, name != NULL ? name : "EIO", NAPI_AUTO_LENGTH, &code_value) !=
          napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok ||
      napi_create_int32(env, code, &errno_value) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_value) != napi_ok ||
      napi_create_string_utf8(env, function, NAPI_AUTO_LENGTH, &function_value) != napi_ok ||
      napi_set_named_property(env, error, "function", function_value) != napi_ok) {
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  napi_throw(env, error);
  return NULL;
}

/* Gets `count` arguments or throws; true on success. */
static int get_args(napi_env env, napi_callback_info info, size_t count, napi_value* args) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < count) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "snapsafe addon: missing arguments");
    return 0;
  }
  return 1;
}

/* A non-negative integral double argument, at most `max`; throws a RangeError if not. */
static int get_size(napi_env env, napi_value value, double max, size_t* out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "snapsafe addon: a number is needed");
    return 0;
  }
  if (!(number >= 0 && number <= max) || number != (double)(uint64_t)number) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "snapsafe addon: size out of range");
    return 0;
  }
  *out = (size_t)number;
  return 1;
}

/* The bytes of a TypedArray, DataView or ArrayBuffer; throws a TypeError otherwise. */
static int get_bytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  bool is;
  void* base = NULL;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t elements;
    if (napi_get_typedarray_info(env, value, &type, &elements, &base, NULL, NULL) != napi_ok)
      return 0;
    static const size_t element_size[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
    if ((size_t)type >= sizeof element_size / sizeof element_size[0]) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "snapsafe addon: unknown array type");
      return 0;
    }
    *length = elements * element_size[type];
  } else if (napi_is_dataview(env, value, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, value, length, &base, NULL, NULL) != napi_ok) return 0;
  } else if (napi_is_arraybuffer(env, value, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, value, &base, length) != napi_ok) return 0;
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "snapsafe addon: a TypedArray, DataView or ArrayBuffer is needed");
    return 0;
  }
  *data = base;
  return 1;
}

static napi_value fill(napi_env env, napi_callback_info info) {
  napi_value args[3];
  uint8_t* data;
  size_t length, offset, size;
  if (!get_args(env, info, 3, args) || !get_bytes(env, args[0], &data, &length) ||
      !get_size(env, args[1], MAX_SAFE_INTEGER, &offset) ||
      !get_size(env, args[2], MAX_SAFE_INTEGER, &size))
    return NULL;
  if (offset > length || size > length - offset) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "snapsafe addon: offset + size > length");
    return NULL;
  }
  if (size == 0) return args[0];
  int rc = snapsafe_fill(data + offset, size);
  if (rc != 0) return throw_c_error(env, rc, "snapsafe_fill");
  return args[0];
}

static napi_value uniform(napi_env env, napi_callback_info info) {
  napi_value args[1], result;
  size_t bound;
  if (!get_args(env, info, 1, args) || !get_size(env, args[0], MAX_SAFE_INTEGER + 1, &bound))
    return NULL;
  uint64_t value;
  int rc = snapsafe_uniform(bound, &value);
  if (rc != 0) return throw_c_error(env, rc, "snapsafe_uniform");
  if (napi_create_double(env, (double)value, &result) != napi_ok) return NULL;
  return result;
}

static napi_value uuid_text(napi_env env, int (*function)(char*, size_t), const char* name) {
  char text[SNAPSAFE_UUID_TEXT_SIZE];
  int rc = function(text, sizeof text);
  if (rc != 0) return throw_c_error(env, rc, name);
  napi_value result;
  if (napi_create_string_latin1(env, text, SNAPSAFE_UUID_TEXT_SIZE - 1, &result) != napi_ok)
    return NULL;
  return result;
}

static napi_value uuid_v4(napi_env env, napi_callback_info info) {
  (void)info;
  return uuid_text(env, snapsafe_uuid_v4, "snapsafe_uuid_v4");
}

static napi_value uuid_v7(napi_env env, napi_callback_info info) {
  (void)info;
  return uuid_text(env, snapsafe_uuid_v7, "snapsafe_uuid_v7");
}

static napi_value status(napi_env env, napi_callback_info info) {
  (void)info;
  size_t size = 4096;
  for (int attempt = 0; attempt < 8; attempt++) {
    char* text = malloc(size);
    if (text == NULL) return throw_c_error(env, ENOMEM, "snapsafe_status");
    size_t needed = 0;
    int rc = snapsafe_status(text, size, &needed);
    if (rc == 0) {
      napi_value result;
      napi_status made = napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result);
      free(text);
      return made == napi_ok ? result : NULL;
    }
    free(text);
    if (rc != ERANGE) return throw_c_error(env, rc, "snapsafe_status");
    size = needed + 256;
  }
  return throw_c_error(env, ERANGE, "snapsafe_status");
}

static napi_value source_name(napi_env env, napi_callback_info info) {
  (void)info;
  char name[128];
  int rc = snapsafe_source_name(name, sizeof name);
  if (rc != 0) return throw_c_error(env, rc, "snapsafe_source_name");
  napi_value result;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result) != napi_ok) return NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"fill", NULL, fill, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uniform", NULL, uniform, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uuidV4", NULL, uuid_v4, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uuidV7", NULL, uuid_v7, NULL, NULL, NULL, napi_enumerable, NULL},
      {"status", NULL, status, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sourceName", NULL, source_name, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) !=
      napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
