/* File: python/snapsafe/_native.c
 *
 * The fast path of snapsafe's Python binding: a CPython extension that calls the C API
 * (snapsafe.h) through function pointers. It links nothing of snapsafe's: the package
 * finds libsnapsafe.so (SNAPSAFE_LIBRARY, next to the package, the system loader; see
 * snapsafe/_library.py) and hands the path to bind(), which dlopen()s it and looks up
 * each function once. Why an extension and not only ctypes: a ctypes call costs about
 * 1 us more than os.urandom(16) here, this costs less (python/README.md has the numbers).
 *
 * Every function returns the value or raises: a nonzero return of the C API raises the
 * exception that bind()'s error_factory(errno, C function name) returns (snapsafe's
 * mapping: ValueError, MemoryError or snapsafe.SnapsafeError, an OSError). Bad arguments
 * raise TypeError/ValueError/OverflowError here before the C API is called.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

typedef int (*fill_fn)(void*, size_t);
typedef int (*u64_fn)(uint64_t*);
typedef int (*uniform_fn)(uint64_t, uint64_t*);
typedef int (*uuid_bytes_fn)(uint8_t*, size_t);
typedef int (*status_fn)(char*, size_t, size_t*);
typedef int (*source_name_fn)(char*, size_t);

static struct {
  fill_fn fill;
  u64_fn u64;
  uniform_fn uniform;
  uuid_bytes_fn uuid_v4_bytes;
  uuid_bytes_fn uuid_v7_bytes;
  status_fn status;
  source_name_fn source_name;
} api;

static PyObject* error_factory; /* error_factory(errno, function name) -> exception */

static PyObject* error(int code, const char* function) {
  PyObject* exception = PyObject_CallFunction(error_factory, "is", code, function);
  if (exception == NULL) return NULL; /* the factory's own exception stands */
  if (PyExceptionInstance_Check(exception)) {
    PyErr_SetObject((PyObject*)Py_TYPE(exception), exception);
  } else {
    PyErr_Format(PyExc_TypeError, "error_factory returned no exception for %s (errno %d)", function,
                 code);
  }
  Py_DECREF(exception);
  return NULL;
}

static PyObject* not_bound(void) {
  PyErr_SetString(PyExc_RuntimeError, "snapsafe._native: bind() was not called");
  return NULL;
}

/* bind(path, error_factory): dlopen()s libsnapsafe and resolves every function, all or
 * nothing; error_factory makes the exception for a failed call. */
static PyObject* native_bind(PyObject* self, PyObject* args) {
  (void)self;
  PyObject *path, *factory, *encoded;
  if (!PyArg_ParseTuple(args, "OO:bind", &path, &factory)) return NULL;
  if (!PyCallable_Check(factory)) {
    PyErr_SetString(PyExc_TypeError, "error_factory must be callable");
    return NULL;
  }
  if (!PyUnicode_FSConverter(path, &encoded)) return NULL;
  void* handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_LOCAL);
  Py_DECREF(encoded);
  if (handle == NULL) {
    PyErr_Format(PyExc_OSError, "cannot load libsnapsafe: %s", dlerror());
    return NULL;
  }
  struct {
    const char* name;
    void** slot;
  } symbols[] = {
      {"snapsafe_fill", (void**)&api.fill},
      {"snapsafe_u64", (void**)&api.u64},
      {"snapsafe_uniform", (void**)&api.uniform},
      {"snapsafe_uuid_v4_bytes", (void**)&api.uuid_v4_bytes},
      {"snapsafe_uuid_v7_bytes", (void**)&api.uuid_v7_bytes},
      {"snapsafe_status", (void**)&api.status},
      {"snapsafe_source_name", (void**)&api.source_name},
  };
  void* found[sizeof symbols / sizeof symbols[0]];
  for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
    found[i] = dlsym(handle, symbols[i].name);
    if (found[i] == NULL) {
      PyErr_Format(PyExc_OSError, "libsnapsafe has no %s", symbols[i].name);
      return NULL;
    }
  }
  for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) *symbols[i].slot = found[i];
  Py_INCREF(factory);
  Py_XSETREF(error_factory, factory);
  Py_RETURN_NONE;
}

/* token_bytes(n): n random bytes (n >= 0, checked by the caller). */
static PyObject* native_token_bytes(PyObject* self, PyObject* arg) {
  (void)self;
  if (api.fill == NULL) return not_bound();
  Py_ssize_t n = PyLong_AsSsize_t(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0) {
    PyErr_SetString(PyExc_ValueError, "negative byte count");
    return NULL;
  }
  PyObject* out = PyBytes_FromStringAndSize(NULL, n);
  if (out == NULL) return NULL;
  int rc = api.fill(PyBytes_AS_STRING(out), (size_t)n);
  if (rc != 0) {
    Py_DECREF(out);
    return error(rc, "snapsafe_fill");
  }
  return out;
}

/* fill_into(buffer): fills a writable buffer in place. */
static PyObject* native_fill_into(PyObject* self, PyObject* arg) {
  (void)self;
  if (api.fill == NULL) return not_bound();
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) return NULL;
  int rc = api.fill(view.buf, (size_t)view.len);
  PyBuffer_Release(&view);
  if (rc != 0) return error(rc, "snapsafe_fill");
  Py_RETURN_NONE;
}

static PyObject* native_u64(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  if (api.u64 == NULL) return not_bound();
  uint64_t value;
  int rc = api.u64(&value);
  if (rc != 0) return error(rc, "snapsafe_u64");
  return PyLong_FromUnsignedLongLong(value);
}

/* uniform(bound): [0, bound) for 1 <= bound < 2**64 (the caller checks the range). */
static PyObject* native_uniform(PyObject* self, PyObject* arg) {
  (void)self;
  if (api.uniform == NULL) return not_bound();
  unsigned long long bound = PyLong_AsUnsignedLongLong(arg);
  if (bound == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
  uint64_t value;
  int rc = api.uniform(bound, &value);
  if (rc != 0) return error(rc, "snapsafe_uniform");
  return PyLong_FromUnsignedLongLong(value);
}

static PyObject* uuid_bytes(uuid_bytes_fn function, const char* name) {
  if (function == NULL) return not_bound();
  uint8_t bytes[16];
  int rc = function(bytes, sizeof bytes);
  if (rc != 0) return error(rc, name);
  return PyBytes_FromStringAndSize((const char*)bytes, sizeof bytes);
}

static PyObject* native_uuid_v4_bytes(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  return uuid_bytes(api.uuid_v4_bytes, "snapsafe_uuid_v4_bytes");
}

static PyObject* native_uuid_v7_bytes(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  return uuid_bytes(api.uuid_v7_bytes, "snapsafe_uuid_v7_bytes");
}

/* status(): the report; grows the buffer while the C API says ERANGE. */
static PyObject* native_status(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  if (api.status == NULL) return not_bound();
  size_t size = 4096;
  for (int attempt = 0; attempt < 8; attempt++) {
    char* text = PyMem_Malloc(size);
    if (text == NULL) return PyErr_NoMemory();
    size_t needed = 0;
    int rc = api.status(text, size, &needed);
    if (rc == 0) {
      PyObject* out = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
      PyMem_Free(text);
      return out;
    }
    PyMem_Free(text);
    if (rc != ERANGE) return error(rc, "snapsafe_status");
    size = needed + 256;
  }
  return error(ERANGE, "snapsafe_status");
}

static PyObject* native_source_name(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  if (api.source_name == NULL) return not_bound();
  char name[128];
  int rc = api.source_name(name, sizeof name);
  if (rc != 0) return error(rc, "snapsafe_source_name");
  return PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "replace");
}

static PyMethodDef methods[] = {
    {"bind", native_bind, METH_VARARGS, "bind(path, error_factory): load libsnapsafe"},
    {"token_bytes", native_token_bytes, METH_O, "token_bytes(n) -> bytes"},
    {"fill_into", native_fill_into, METH_O, "fill_into(writable buffer)"},
    {"u64", native_u64, METH_NOARGS, "u64() -> int in [0, 2**64)"},
    {"uniform", native_uniform, METH_O, "uniform(bound) -> int in [0, bound)"},
    {"uuid_v4_bytes", native_uuid_v4_bytes, METH_NOARGS, "16 bytes of a version 4 UUID"},
    {"uuid_v7_bytes", native_uuid_v7_bytes, METH_NOARGS, "16 bytes of a version 7 UUID"},
    {"status", native_status, METH_NOARGS, "the status report"},
    {"source_name", native_source_name, METH_NOARGS, "the active source's name"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "snapsafe._native",
    "snapsafe's C API, called directly",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
