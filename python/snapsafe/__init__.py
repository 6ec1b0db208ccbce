"""snapsafe for Python: random bytes, tokens, integers and UUIDs that stay unique across VM
and container snapshot restores, fork() and CRIU clones.

The same names as the standard library's `secrets`, `uuid` and `random.SystemRandom`,
served by snapsafe's C library (libsnapsafe.so, snapsafe.h) instead of os.urandom:

    import snapsafe
    key = snapsafe.token_bytes(32)           # like secrets.token_bytes
    request_id = snapsafe.uuid7()            # a uuid.UUID, version 7
    rng = snapsafe.SnapsafeRandom()          # like random.SystemRandom: choice, shuffle...

There is no entropy cache in Python: every call draws from the library, whose per-thread
state is reseeded after a fork and after a snapshot restore the library detects (see
status()). A forked child therefore never repeats its parent's values: the binding
inherits the library's fork safety, with nothing of its own to reset.

Errors: a failure of the C API (the kernel refusing entropy, say) raises SnapsafeError, an
OSError with the errno (fail closed: no output is returned). Bad arguments raise
TypeError or ValueError, as the standard library does.

Where the library comes from, and the two backends (a C extension, else ctypes), is
snapsafe/_library.py's business.
"""
import base64 as _base64
import errno as _errno
import os as _os
import random as _random
import uuid as _uuid

from . import _library

__all__ = [
    "SnapsafeError", "SnapsafeRandom", "token_bytes", "token_hex", "token_urlsafe",
    "randbelow", "randbits", "choice", "uuid4", "uuid7", "status", "source_name",
    "backend",
]

DEFAULT_ENTROPY = 32  # bytes, as secrets.DEFAULT_ENTROPY


class SnapsafeError(OSError):
    """The C library could not produce random output (errno says why); nothing was
    returned. `function` names the C API call that failed."""

    def __init__(self, code, function):
        super().__init__(code, f"{function}: {_os.strerror(code)}")
        self.function = function


def _error(code, function):
    """The Python exception for errno `code` returned by C function `function`."""
    if code == _errno.EINVAL:
        return ValueError(f"{function}: invalid argument (EINVAL)")
    if code == _errno.ENOMEM:
        return MemoryError(f"{function}: out of memory (ENOMEM)")
    return SnapsafeError(code, function)


_backend = _library.load(_error)
_token_bytes = _backend.token_bytes
_u64 = _backend.u64
_uniform = _backend.uniform
_TWO_64 = 1 << 64


def backend():
    """'native' (the C extension) or 'ctypes': which backend serves the calls."""
    return "ctypes" if isinstance(_backend, _library.CtypesBackend) else "native"


def token_bytes(nbytes=None):
    """nbytes random bytes (default 32), as secrets.token_bytes."""
    return _token_bytes(DEFAULT_ENTROPY if nbytes is None else nbytes)


def token_hex(nbytes=None):
    """nbytes random bytes as 2*nbytes hex digits, as secrets.token_hex."""
    return token_bytes(nbytes).hex()


def token_urlsafe(nbytes=None):
    """nbytes random bytes, URL-safe base64 without padding, as secrets.token_urlsafe."""
    return _base64.urlsafe_b64encode(token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def randbits(k):
    """An int of k random bits (k >= 0), as secrets.randbits."""
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"randbits() needs an int, not {type(k).__name__}")
    if k < 0:
        raise ValueError("number of bits must be non-negative")
    if k == 0:
        return 0
    if k <= 64:
        return _u64() >> (64 - k)
    nbytes = (k + 7) // 8
    return int.from_bytes(_token_bytes(nbytes), "big") >> (nbytes * 8 - k)


def randbelow(exclusive_upper_bound):
    """A uniformly distributed int in [0, n), n >= 1, as secrets.randbelow. Without
    modulo bias: the C library's rejection sampling below 2**64, rejection on randbits
    above."""
    n = exclusive_upper_bound
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"randbelow() needs an int, not {type(n).__name__}")
    if n <= 0:
        raise ValueError("Upper bound must be positive.")
    if n < _TWO_64:
        return _uniform(n)
    k = n.bit_length()
    while True:
        r = randbits(k)
        if r < n:
            return r


def choice(seq):
    """A random element of a non-empty sequence, as secrets.choice."""
    if not len(seq):
        raise IndexError("Cannot choose from an empty sequence")
    return seq[randbelow(len(seq))]


def uuid4():
    """A random (version 4) uuid.UUID."""
    return _uuid.UUID(bytes=_backend.uuid_v4_bytes())


def uuid7():
    """A time-ordered (version 7, RFC 9562) uuid.UUID: 48-bit Unix milliseconds, then
    random bits (the library keeps IDs of one thread increasing within a millisecond)."""
    return _uuid.UUID(bytes=_backend.uuid_v7_bytes())


def status():
    """The library's multi-line status report: which sources protect this process."""
    return _backend.status()


def source_name():
    """The active generation source's name: 'sysgenid-mmap', 'kernel', 'counter-file'..."""
    return _backend.source_name()


_RECIP_BPF = 2.0 ** -53


class SnapsafeRandom(_random.Random):
    """random.Random's methods (choice, shuffle, sample, uniform, gauss...) over snapsafe,
    like random.SystemRandom over os.urandom: no state, seed() does nothing, getstate()
    and setstate() raise NotImplementedError."""

    def random(self):
        """A float in [0.0, 1.0) with 53 random bits."""
        return (_u64() >> 11) * _RECIP_BPF

    def getrandbits(self, k):
        """An int of k random bits."""
        return randbits(k)

    def randbytes(self, n):
        """n random bytes."""
        return _token_bytes(n)

    def seed(self, *args, **kwds):
        """Does nothing: snapsafe has no seed to set."""
        return None

    def _notimplemented(self, *args, **kwds):
        raise NotImplementedError("snapsafe has no state to get or set")

    getstate = setstate = _notimplemented
