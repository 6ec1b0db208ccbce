"""Finds libsnapsafe.so and picks the backend that calls it.

The library is looked for in this order:
  1. the path in the environment variable SNAPSAFE_LIBRARY (an error if it does not load),
  2. libsnapsafe.so next to this package (a copy installed with it),
  3. the system loader: "libsnapsafe.so.1" then "libsnapsafe.so" (ldconfig,
     LD_LIBRARY_PATH), then ctypes.util.find_library("snapsafe").

Backends, same functions (token_bytes, fill_into, u64, uniform, uuid_v4_bytes,
uuid_v7_bytes, status, source_name) raising error_factory(errno, C function name) on a
nonzero return of the C API:
  native  the C extension snapsafe._native (the default when it was built),
  ctypes  pure Python over ctypes (the fallback; SNAPSAFE_PYTHON_BACKEND=ctypes forces it).
"""
import ctypes
import ctypes.util
import os

ENV_LIBRARY = "SNAPSAFE_LIBRARY"
ENV_BACKEND = "SNAPSAFE_PYTHON_BACKEND"


def library_path():
    """The path (or loader name) of libsnapsafe to load; raises OSError if none loads."""
    explicit = os.environ.get(ENV_LIBRARY)
    if explicit:
        ctypes.CDLL(explicit)  # raises OSError naming the path if it does not load
        return explicit
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libsnapsafe.so")
    candidates = [beside] if os.path.exists(beside) else []
    candidates += ["libsnapsafe.so.1", "libsnapsafe.so"]
    found = ctypes.util.find_library("snapsafe")
    if found:
        candidates.append(found)
    for candidate in candidates:
        try:
            ctypes.CDLL(candidate)
            return candidate
        except OSError:
            continue
    raise OSError(
        "libsnapsafe.so not found: set SNAPSAFE_LIBRARY to its path, or install snapsafe "
        "(bazel run //:install -- PREFIX) where the loader finds it (ldconfig, "
        "LD_LIBRARY_PATH)")


class CtypesBackend:
    """The C API through ctypes: no compiler needed, about 1 us more per call."""

    def __init__(self, path, error_factory):
        self._error = error_factory
        lib = ctypes.CDLL(path)
        u8p, u64p, sizep = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_size_t)
        signatures = {
            "snapsafe_fill": [ctypes.c_void_p, ctypes.c_size_t],
            "snapsafe_u64": [u64p],
            "snapsafe_uniform": [ctypes.c_uint64, u64p],
            "snapsafe_uuid_v4_bytes": [u8p, ctypes.c_size_t],
            "snapsafe_uuid_v7_bytes": [u8p, ctypes.c_size_t],
            "snapsafe_status": [ctypes.c_char_p, ctypes.c_size_t, sizep],
            "snapsafe_source_name": [ctypes.c_char_p, ctypes.c_size_t],
        }
        for name, argtypes in signatures.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, ctypes.c_int
            setattr(self, "_" + name[len("snapsafe_"):], function)

    def _check(self, rc, function):
        if rc != 0:
            raise self._error(rc, function)

    def token_bytes(self, n):
        buffer = ctypes.create_string_buffer(n)
        self._check(self._fill(buffer, n), "snapsafe_fill")
        return buffer.raw

    def fill_into(self, buffer):
        view = memoryview(buffer)
        if view.readonly or not view.c_contiguous:
            raise TypeError("fill_into needs a writable contiguous buffer")
        size = view.nbytes
        if size:
            address = ctypes.addressof((ctypes.c_char * size).from_buffer(view.cast("B")))
            self._check(self._fill(address, size), "snapsafe_fill")

    def u64(self):
        value = ctypes.c_uint64()
        self._check(self._u64(ctypes.byref(value)), "snapsafe_u64")
        return value.value

    def uniform(self, bound):
        value = ctypes.c_uint64()
        self._check(self._uniform(bound, ctypes.byref(value)), "snapsafe_uniform")
        return value.value

    def _uuid(self, function, name):
        buffer = ctypes.create_string_buffer(16)
        self._check(function(buffer, 16), name)
        return buffer.raw

    def uuid_v4_bytes(self):
        return self._uuid(self._uuid_v4_bytes, "snapsafe_uuid_v4_bytes")

    def uuid_v7_bytes(self):
        return self._uuid(self._uuid_v7_bytes, "snapsafe_uuid_v7_bytes")

    def status(self):
        size = 4096
        for _ in range(8):
            buffer, needed = ctypes.create_string_buffer(size), ctypes.c_size_t()
            rc = self._status(buffer, size, ctypes.byref(needed))
            if rc == 0:
                return buffer.value.decode("utf-8", "replace")
            if rc != 34:  # ERANGE: grow and try again
                raise self._error(rc, "snapsafe_status")
            size = needed.value + 256
        raise self._error(34, "snapsafe_status")

    def source_name(self):
        buffer = ctypes.create_string_buffer(128)
        self._check(self._source_name(buffer, 128), "snapsafe_source_name")
        return buffer.value.decode("utf-8", "replace")


class NativeBackend:
    """The C API through the extension snapsafe._native (bound to the found library)."""

    def __init__(self, path, error_factory):
        from . import _native  # ImportError when the extension was not built
        _native.bind(path, error_factory)
        for name in ("token_bytes", "fill_into", "u64", "uniform", "uuid_v4_bytes",
                     "uuid_v7_bytes", "status", "source_name"):
            setattr(self, name, getattr(_native, name))


def load(error_factory, backend=None):
    """The backend object: `backend` ('native' | 'ctypes'), else SNAPSAFE_PYTHON_BACKEND,
    else native when the extension is there, else ctypes."""
    path = library_path()
    choice = backend or os.environ.get(ENV_BACKEND, "")
    if choice not in ("", "native", "ctypes"):
        raise ValueError(f"{ENV_BACKEND} must be 'native' or 'ctypes', not {choice!r}")
    if choice == "ctypes":
        return CtypesBackend(path, error_factory)
    try:
        return NativeBackend(path, error_factory)
    except ImportError:
        if choice == "native":
            raise
        return CtypesBackend(path, error_factory)
