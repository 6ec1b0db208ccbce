"""Tests of snapsafe's Python binding (python -m unittest discover -s python/tests).

Needs the package installed (or on sys.path) and libsnapsafe.so findable (SNAPSAFE_LIBRARY).
Covers: output shapes (lengths, ranges, UUID version and variant bits), bias-free
randbelow (a bound where modulo reduction would be 2:1 biased), bad input raising
TypeError/ValueError, C API errors mapped to Python exceptions (getrandom(2) blocked by a
seccomp filter in a child: SnapsafeError with EPERM/ENOSYS, and the filter really blocks,
so the test is not vacuous), SnapsafeRandom drawing from snapsafe, both backends (the C
extension and ctypes), and fork: a child's draws differ from its parent's.
"""
import ctypes
import errno
import os
import platform
import random
import re
import subprocess
import sys
import time
import unittest
import uuid

import snapsafe
from snapsafe import _library

# A seccomp filter that makes getrandom(2) fail with the errno in argv[1], installed in
# a fresh interpreter before its first draw (x86_64 numbers). Prints "errno N" for the
# exception the draw raised, or "ok" if it returned.
BLOCK_GETRANDOM = r"""
import ctypes, os, sys
class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
code = int(sys.argv[1])
insns = (Insn * 7)(
    Insn(0x20, 0, 0, 4), Insn(0x15, 1, 0, 0xC000003E), Insn(0x06, 0, 0, 0x7FFF0000),
    Insn(0x20, 0, 0, 0), Insn(0x15, 0, 1, 318), Insn(0x06, 0, 0, 0x00050000 | code),
    Insn(0x06, 0, 0, 0x7FFF0000))
libc = ctypes.CDLL(None, use_errno=True)
prog = Prog(7, insns)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    print("no seccomp"); sys.exit(0)
what = sys.argv[2]
try:
    if what == "control":
        libc.getrandom.restype = ctypes.c_ssize_t
        buf = ctypes.create_string_buffer(16)
        r = libc.getrandom(buf, 16, 0)
        print("errno %d" % ctypes.get_errno() if r < 0 else "ok")
        sys.exit(0)
    import snapsafe
    {"token_bytes": lambda: snapsafe.token_bytes(16), "uuid4": snapsafe.uuid4,
     "randbelow": lambda: snapsafe.randbelow(10)}[what]()
    print("ok")
except OSError as e:
    print("errno %d %s %s" % (e.errno, type(e).__name__, getattr(e, "function", "")))
"""


def run_python(code, *args, env=None):
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


class ShapeTest(unittest.TestCase):
    def test_token_bytes_lengths(self):
        for n in (0, 1, 15, 16, 17, 32, 1000, 1 << 16):
            out = snapsafe.token_bytes(n)
            self.assertIsInstance(out, bytes)
            self.assertEqual(len(out), n)
        self.assertEqual(len(snapsafe.token_bytes()), 32)
        self.assertEqual(len(snapsafe.token_bytes(None)), 32)
        self.assertNotEqual(snapsafe.token_bytes(16), snapsafe.token_bytes(16))

    def test_token_hex_and_urlsafe(self):
        self.assertRegex(snapsafe.token_hex(16), r"\A[0-9a-f]{32}\Z")
        self.assertEqual(len(snapsafe.token_hex()), 64)
        self.assertRegex(snapsafe.token_urlsafe(16), r"\A[A-Za-z0-9_-]{22}\Z")
        self.assertEqual(snapsafe.token_urlsafe(0), "")

    def test_randbelow_ranges(self):
        for n in (1, 2, 3, 7, 10, 1000, (1 << 32) + 1, (1 << 63) + 1, (1 << 64) - 1,
                  1 << 64, (1 << 64) + 1, (1 << 200) + 12345):
            for _ in range(200):
                value = snapsafe.randbelow(n)
                self.assertIsInstance(value, int)
                self.assertTrue(0 <= value < n, (n, value))
        self.assertEqual({snapsafe.randbelow(1) for _ in range(50)}, {0})
        self.assertEqual({snapsafe.randbelow(3) for _ in range(300)}, {0, 1, 2})

    def test_randbelow_is_not_modulo_biased(self):
        # n = 2**63 + 2**62: u64 % n would put 2/3 of the draws below n/2 (values below
        # 2**62 come up twice); uniform draws put half there. 4000 draws: sd ~0.008.
        n = (1 << 63) + (1 << 62)
        below = sum(snapsafe.randbelow(n) < n // 2 for _ in range(4000)) / 4000
        self.assertLess(abs(below - 0.5), 0.05, below)
        # Above 2**64 (the randbits path) the same, with n = 2**100 + 2**99.
        n = (1 << 100) + (1 << 99)
        below = sum(snapsafe.randbelow(n) < n // 2 for _ in range(4000)) / 4000
        self.assertLess(abs(below - 0.5), 0.05, below)

    def test_randbelow_small_bound_counts(self):
        counts = [0] * 6
        for _ in range(12000):
            counts[snapsafe.randbelow(6)] += 1
        chi2 = sum((c - 2000) ** 2 / 2000 for c in counts)
        self.assertLess(chi2, 30, counts)  # 5 degrees of freedom: p < 2e-5

    def test_randbits(self):
        self.assertEqual(snapsafe.randbits(0), 0)
        for k in (1, 7, 63, 64, 65, 200):
            values = [snapsafe.randbits(k) for _ in range(200)]
            self.assertTrue(all(0 <= v < (1 << k) for v in values), k)
            self.assertGreaterEqual(max(values).bit_length(), k - 8)

    def test_uuid4(self):
        for _ in range(100):
            u = snapsafe.uuid4()
            self.assertIsInstance(u, uuid.UUID)
            self.assertEqual(u.version, 4)
            self.assertEqual(u.variant, uuid.RFC_4122)
        self.assertNotEqual(snapsafe.uuid4(), snapsafe.uuid4())

    def test_uuid7(self):
        before = int(time.time() * 1000)
        ids = [snapsafe.uuid7() for _ in range(1000)]
        after = int(time.time() * 1000)
        for u in ids:
            self.assertIsInstance(u, uuid.UUID)
            self.assertEqual(u.version, 7)
            self.assertEqual(u.variant, uuid.RFC_4122)
            self.assertTrue(before <= u.int >> 80 <= after, (before, u, after))
        self.assertEqual(ids, sorted(ids))  # one thread: increasing
        self.assertEqual(len(set(ids)), len(ids))

    def test_status_and_source(self):
        self.assertIsInstance(snapsafe.status(), str)
        self.assertTrue(snapsafe.status().strip())
        self.assertRegex(snapsafe.source_name(), r"\A[a-z0-9-]+\Z")


class BadInputTest(unittest.TestCase):
    def test_token_bytes(self):
        for bad, error in ((-1, ValueError), (1.5, TypeError), ("16", TypeError),
                           (1 << 80, OverflowError)):
            with self.assertRaises(error, msg=repr(bad)):
                snapsafe.token_bytes(bad)
        with self.assertRaises(ValueError):
            snapsafe.token_hex(-1)

    def test_randbelow(self):
        for bad in (0, -1, -(1 << 70)):
            with self.assertRaises(ValueError, msg=repr(bad)):
                snapsafe.randbelow(bad)
        for bad in (1.0, "3", None, True):
            with self.assertRaises(TypeError, msg=repr(bad)):
                snapsafe.randbelow(bad)

    def test_randbits_and_choice(self):
        with self.assertRaises(ValueError):
            snapsafe.randbits(-1)
        with self.assertRaises(TypeError):
            snapsafe.randbits(2.0)
        with self.assertRaises(IndexError):
            snapsafe.choice([])


class RandomTest(unittest.TestCase):
    def test_methods(self):
        rng = snapsafe.SnapsafeRandom()
        self.assertIsInstance(rng, random.Random)
        for _ in range(1000):
            self.assertTrue(0.0 <= rng.random() < 1.0)
        self.assertEqual(rng.getrandbits(0), 0)
        self.assertTrue(0 <= rng.getrandbits(100) < 1 << 100)
        self.assertIn(rng.choice("abc"), "abc")
        self.assertEqual(sorted(rng.sample(range(10), 10)), list(range(10)))
        deck = list(range(52))
        rng.shuffle(deck)
        self.assertEqual(sorted(deck), list(range(52)))
        self.assertTrue(1 <= rng.randint(1, 6) <= 6)
        self.assertEqual(len(rng.randbytes(16)), 16)

    def test_no_state(self):
        rng = snapsafe.SnapsafeRandom(1234)
        self.assertIsNone(rng.seed(1))
        a = [rng.random() for _ in range(4)]
        rng.seed(1)
        self.assertNotEqual(a, [rng.random() for _ in range(4)])  # seeding does nothing
        with self.assertRaises(NotImplementedError):
            rng.getstate()
        with self.assertRaises(NotImplementedError):
            rng.setstate(None)

    def test_draws_come_from_snapsafe(self):
        # choice, shuffle and sample go through getrandbits -> snapsafe's u64: count them.
        calls = []
        real = snapsafe._u64

        def counting():
            calls.append(1)
            return real()
        snapsafe._u64 = counting
        try:
            rng = snapsafe.SnapsafeRandom()
            rng.choice(range(1000))
            rng.shuffle(list(range(20)))
            rng.sample(range(100), 5)
            rng.random()
        finally:
            snapsafe._u64 = real
        self.assertGreaterEqual(len(calls), 1 + 19 + 5 + 1)


class ErrorTest(unittest.TestCase):
    def test_mapping(self):
        self.assertIsInstance(snapsafe._error(errno.EINVAL, "f"), ValueError)
        self.assertIsInstance(snapsafe._error(errno.ENOMEM, "f"), MemoryError)
        for code in (errno.EPERM, errno.ENOSYS, errno.EIO):
            e = snapsafe._error(code, "snapsafe_fill")
            self.assertIsInstance(e, snapsafe.SnapsafeError)
            self.assertIsInstance(e, OSError)
            self.assertEqual(e.errno, code)
            self.assertEqual(e.function, "snapsafe_fill")

    @unittest.skipUnless(platform.machine() == "x86_64", "the filter has x86_64 numbers")
    def test_blocked_getrandom_raises(self):
        # Negative control: the filter really blocks getrandom(2).
        rc, out, err = run_python(BLOCK_GETRANDOM, errno.EPERM, "control")
        if out == "no seccomp":
            self.skipTest("seccomp filters are not available here")
        self.assertEqual(out, f"errno {errno.EPERM}", err)
        for backend in ("native", "ctypes"):
            env = dict(os.environ, SNAPSAFE_PYTHON_BACKEND=backend)
            for code in (errno.EPERM, errno.ENOSYS):
                for what in ("token_bytes", "uuid4", "randbelow"):
                    rc, out, err = run_python(BLOCK_GETRANDOM, code, what, env=env)
                    self.assertEqual(rc, 0, err)
                    self.assertRegex(out, rf"\Aerrno {code} SnapsafeError snapsafe_\w+\Z",
                                     f"{backend} {what}: {err}")

    def test_missing_library(self):
        env = dict(os.environ, SNAPSAFE_LIBRARY="/nonexistent/libsnapsafe.so")
        rc, out, err = run_python("import snapsafe", env=env)
        self.assertNotEqual(rc, 0)
        self.assertIn("OSError", err)
        self.assertIn("/nonexistent/libsnapsafe.so", err)

    def test_bad_backend_name(self):
        env = dict(os.environ, SNAPSAFE_PYTHON_BACKEND="cffi")
        rc, out, err = run_python("import snapsafe", env=env)
        self.assertNotEqual(rc, 0)
        self.assertIn("SNAPSAFE_PYTHON_BACKEND", err)


class BackendTest(unittest.TestCase):
    """Both backends behind the same functions."""

    def backends(self):
        yield "ctypes", _library.load(snapsafe._error, backend="ctypes")
        try:
            yield "native", _library.load(snapsafe._error, backend="native")
        except ImportError:
            self.fail("the C extension snapsafe._native was not built")

    def test_same_shapes(self):
        for name, b in self.backends():
            with self.subTest(backend=name):
                self.assertEqual(len(b.token_bytes(16)), 16)
                self.assertEqual(b.token_bytes(0), b"")
                buf = bytearray(24)
                b.fill_into(buf)
                self.assertNotEqual(bytes(buf), bytes(24))
                self.assertTrue(0 <= b.u64() < 1 << 64)
                self.assertTrue(0 <= b.uniform(3) < 3)
                self.assertEqual(uuid.UUID(bytes=b.uuid_v4_bytes()).version, 4)
                self.assertEqual(uuid.UUID(bytes=b.uuid_v7_bytes()).version, 7)
                self.assertTrue(b.status())
                self.assertEqual(b.source_name(), snapsafe.source_name())

    def test_c_api_einval_becomes_value_error(self):
        # uniform(0): the C API itself returns EINVAL (randbelow checks before calling).
        for name, b in self.backends():
            with self.subTest(backend=name):
                with self.assertRaises(ValueError):
                    b.uniform(0)

    def test_default_is_native(self):
        if os.environ.get("SNAPSAFE_PYTHON_BACKEND", "") in ("", "native"):
            self.assertEqual(snapsafe.backend(), "native")


class ForkTest(unittest.TestCase):
    def test_child_draws_differ_from_parent(self):
        snapsafe.token_bytes(16)  # the parent's state exists before the fork
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                values = [snapsafe.token_bytes(16).hex() for _ in range(8)]
                values += [str(snapsafe.uuid4()), str(snapsafe.uuid7()),
                           str(snapsafe.SnapsafeRandom().getrandbits(64))]
                os.write(write_end, "\n".join(values).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        parent = [snapsafe.token_bytes(16).hex() for _ in range(8)]
        parent += [str(snapsafe.uuid4()), str(snapsafe.uuid7()),
                   str(snapsafe.SnapsafeRandom().getrandbits(64))]
        chunks = []
        while chunk := os.read(read_end, 4096):
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        child = b"".join(chunks).decode().split("\n")
        self.assertEqual(len(child), len(parent))
        self.assertEqual(set(child) & set(parent), set(), "a fork child repeated its parent")
        # Control: a seeded random.Random continues the same stream in both.
        rng = random.Random(7)
        rng.random()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, repr(rng.random()).encode())
            os._exit(0)
        os.close(w)
        child_value = os.read(r, 100).decode()
        os.close(r)
        os.waitpid(pid, 0)
        self.assertEqual(child_value, repr(rng.random()))


if __name__ == "__main__":
    unittest.main()
