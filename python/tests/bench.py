"""Per-call cost of snapsafe's Python binding against the standard library's CSPRNG, in
one run (python3 python/tests/bench.py [--seconds S]).

Prints one line per pair and the ratio snapsafe/stdlib (below 1: snapsafe is cheaper):
  python-bench: token_bytes(16) snapsafe=N ns os.urandom=M ns ratio=R
Each figure is the best of 5 repeats of a timed loop (the least disturbed by the other
processes on the machine). The ctypes backend is measured too, for the record of why the
C extension is the default.
"""
import argparse
import os
import secrets
import timeit
import uuid

import snapsafe
from snapsafe import _library


def per_call_ns(function, seconds):
    number = max(1000, int(seconds * 1e9 / 5 / max(100, _estimate(function))))
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e9


def _estimate(function):
    return timeit.timeit(function, number=1000) / 1000 * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    args = parser.parse_args()
    ctypes_backend = _library.load(snapsafe._error, backend="ctypes")
    pairs = [
        ("token_bytes(16)", lambda: snapsafe.token_bytes(16), "os.urandom",
         lambda: os.urandom(16)),
        ("token_bytes(16)", lambda: snapsafe.token_bytes(16), "secrets.token_bytes",
         lambda: secrets.token_bytes(16)),
        ("token_bytes(16)[ctypes]", lambda: ctypes_backend.token_bytes(16), "os.urandom",
         lambda: os.urandom(16)),
        ("randbelow(1000)", lambda: snapsafe.randbelow(1000), "secrets.randbelow",
         lambda: secrets.randbelow(1000)),
        ("uuid4()", snapsafe.uuid4, "uuid.uuid4", uuid.uuid4),
    ]
    for name, ours, theirs_name, theirs in pairs:
        a, b = per_call_ns(ours, args.seconds), per_call_ns(theirs, args.seconds)
        print(f"python-bench: {name} snapsafe={a:.0f} ns {theirs_name}={b:.0f} ns "
              f"ratio={a / b:.2f}")


if __name__ == "__main__":
    main()
