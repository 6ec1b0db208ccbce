#!/usr/bin/env python3
"""Checks an installed include tree (PREFIX/include/snapsafe): the internal headers
installed (any path with an `internal` directory) must be exactly those the installed
public headers include, transitively (`#include "..."` resolved against the tree's root),
and each must say "Not API" in its first lines. Also fails when a quoted include of an
installed header does not resolve in the tree (it would not compile).

Prints "internal-headers: installed=N closure=M" and, for a failure, what is extra,
missing, unmarked or unresolved. Exit 0 when the sets are equal and all is marked, else 1.
Usage: internal_headers.py INCLUDE_DIR"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def is_internal(path):
    return "internal" in pathlib.PurePosixPath(path).parts[:-1]


def main():
    root = pathlib.Path(sys.argv[1])
    installed = {p.relative_to(root).as_posix() for p in root.rglob("*.h")}
    public = sorted(p for p in installed if not is_internal(p))
    closure, unresolved, todo = set(), [], list(public)
    while todo:
        header = todo.pop()
        for name in INCLUDE.findall((root / header).read_text()):
            if name in installed:
                if name not in closure:
                    closure.add(name)
                    todo.append(name)
            elif is_internal(name):
                closure.add(name)  # needed, not installed: reported as missing below
            else:
                unresolved.append(f"{header} -> {name}")
    needed = {p for p in closure if is_internal(p)}
    internal = {p for p in installed if is_internal(p)}
    unmarked = sorted(p for p in internal
                      if "Not API" not in "".join((root / p).read_text().splitlines(True)[:5]))
    print(f"internal-headers: installed={len(internal)} closure={len(needed)}")
    problems = [("extra (installed, included by no public header)", sorted(internal - needed)),
                ("missing (included, not installed)", sorted(needed - internal)),
                ("not marked \"Not API\" in their first lines", unmarked),
                ("unresolved includes", sorted(unresolved))]
    for what, items in problems:
        for item in items:
            print(f"internal-headers: {what}: {item}")
    return 1 if any(items for _, items in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
