#!/usr/bin/env python3
"""Runs the code examples of Markdown files as written (tests/docs/run).

Every fenced block (```LANG ... ```) of each file is an example. A block is run the way a
reader would use it:

  c++     compiled with g++ against the installed package (pkg-config snapsafe) and run.
          A block without `main` is a fragment: its #include lines go first, after a
          prelude of standard headers (<array> <cstdint> <iostream> <random> <string>
          ...: what a reader's own file already has), and the rest becomes the body of
          main(). snapsafe and absl headers are never added: the block must name them.
  c       the same with gcc (prelude <errno.h> <stdint.h> <stdio.h> <stdlib.h>).
  sh      each block is a bash script (set -euo pipefail) run in a private mount
          namespace with fresh tmpfs on /run and /etc/ssl (a block may create
          /run/snapsafe or write /etc/ssl/...: the machine's own stay untouched), in a
          scratch directory that has the checkout's bazel-bin, provider and tools, an
          app.cc (the last C++ example before it, as compiled), with the installed bin/
          first on PATH.
  cmake   the block's lines go into a CMakeLists.txt that adds `app` from app.cc; it is
          configured against the installed prefix, built and run.
  python  with `<!-- example: bazel-workspace -->`: a WORKSPACE file (the path
          /path/to/snapsafe replaced by the checkout's), built with Bazel in a new
          workspace whose BUILD file has `app` from app.cc depending on @snapsafe//:snapsafe
          and whose .bazelrc has what the docs say (build --cxxopt=-std=c++20); app runs.
          Without it: a Python script run by Debian's /usr/bin/python3 in a venv that has
          the binding (python/) installed, SNAPSAFE_LIBRARY naming the installed library.
  js      a Node script, with the binding (node/, its addon built against the installed
          library) as node_modules/snapsafe, so require('snapsafe') finds it.
  go      a whole Go program (package main), in a module that requires
          snapsafe.dev/snapsafe replaced by the checkout's go/, run with `go run` (cgo
          against the installed library; no network: GOPROXY=off).
          The three bindings' dependencies come from scripts/install-bindings-deps, run
          once before the first such block.

A comment line right before a block says how to treat it:
  <!-- example: not-runnable: REASON -->   counted as not runnable, with its reason
  <!-- example: output -->                 sample output, not an example (not counted)
  <!-- example: bazel-workspace -->        see python above
A block with no language and no marker, or a language with no runner and no marker, is
an error: nothing is skipped silently.

Prints one line per example and the summary, the last line:
  doc-examples: total=N run=M not_runnable=K failed=F
Exit status 0 when F is 0 (and, with --min-run, M is at least that), else 1.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^<!--\s*example:\s*([a-z-]+)(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9+_-]*)\s*$")

CXX_PRELUDE = """#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <vector>
"""
C_PRELUDE = """#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
"""
TIMEOUT = 120  # seconds for one compile or run; a Bazel consumer build gets 600


class Example:
    def __init__(self, path, line, lang, text, marker, reason):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.marker, self.reason = marker, reason

    @property
    def where(self):
        return f"{self.path}:{self.line}"


def extract(path, shown_as):
    """The fenced blocks of one Markdown file, with the marker before each."""
    examples, lines = [], open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang, start = fence.group(1), fence.group(2).lower(), i + 1
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise SystemExit(f"{shown_as}:{start}: a code block that never ends")
        marker = reason = None
        j = start - 2
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (m := MARKER.match(lines[j].strip())):
            marker, reason = m.group(1), m.group(2)
        examples.append(Example(shown_as, start, lang, "\n".join(body) + "\n", marker, reason))
        i += 1
    return examples


def wrap(text, prelude):
    """A fragment made a program: its includes first, the rest inside main()."""
    if re.search(r"\bint\s+main\s*\(", text):
        return text
    includes = [l for l in text.splitlines() if l.lstrip().startswith("#include")]
    body = [l for l in text.splitlines() if not l.lstrip().startswith("#include")]
    return (prelude + "\n".join(includes) + "\n\nint main(void) {\n" +
            "\n".join("  " + l for l in body) + "\n  return 0;\n}\n")


def run(command, cwd, env=None, timeout=TIMEOUT):
    """Runs a command; returns (ok, the tail of its output)."""
    try:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, text=True,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s: {' '.join(command)}"
    tail = "\n".join(done.stdout.splitlines()[-15:])
    return done.returncode == 0, tail


class Runner:
    def __init__(self, repo, prefix, work):
        self.repo, self.prefix, self.work = repo, prefix, work
        self.app_cc = None  # the last C++ example, as compiled: what sh/cmake/bazel use
        self.count = 0
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = os.path.join(prefix, "lib", "pkgconfig")
        env["PATH"] = os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", "")
        self.env = env

    def scratch(self):
        self.count += 1
        path = os.path.join(self.work, f"example{self.count}")
        os.makedirs(path)
        return path

    def pkg_config(self):
        ok, flags = run(["pkg-config", "--cflags", "--libs", "snapsafe"], self.work, self.env)
        if not ok:
            raise SystemExit(f"pkg-config snapsafe failed: {flags}")
        return flags.split()

    def compiled(self, example, compiler, prelude, suffix):
        here = self.scratch()
        source = os.path.join(here, "app" + suffix)
        with open(source, "w") as f:
            f.write(wrap(example.text, prelude))
        std = ["-std=c++20"] if suffix == ".cc" else []
        ok, out = run([compiler, *std, source, "-o", os.path.join(here, "app"),
                       *self.pkg_config()], here, self.env)
        if not ok:
            return False, out
        if suffix == ".cc":
            self.app_cc = source
        return run([os.path.join(here, "app")], here, self.env)

    def shell(self, example):
        here = self.scratch()
        for name in ("bazel-bin", "provider", "tools"):
            os.symlink(os.path.join(self.repo, name), os.path.join(here, name))
        if self.app_cc:
            shutil.copy(self.app_cc, os.path.join(here, "app.cc"))
        script = os.path.join(here, "example.sh")
        with open(script, "w") as f:
            f.write("set -euo pipefail\n" + example.text)
        private = ("mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /etc/ssl && "
                   f"cd {here} && exec bash {script}")
        return run(["unshare", "-m", "--propagation", "private", "sh", "-c", private], here,
                   self.env)

    def cmake(self, example):
        here = self.scratch()
        shutil.copy(self.app_cc, os.path.join(here, "app.cc"))
        with open(os.path.join(here, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.16)\nproject(app CXX)\n"
                    "set(CMAKE_CXX_STANDARD 20)\nadd_executable(app app.cc)\n" + example.text)
        build = os.path.join(here, "build")
        for step in (["cmake", "-S", here, "-B", build, f"-DCMAKE_PREFIX_PATH={self.prefix}"],
                     ["cmake", "--build", build], [os.path.join(build, "app")]):
            ok, out = run(step, here, self.env)
            if not ok:
                return False, out
        return True, out

    def bazel_workspace(self, example):
        here = self.scratch()
        shutil.copy(self.app_cc, os.path.join(here, "app.cc"))
        with open(os.path.join(here, "WORKSPACE"), "w") as f:
            f.write(example.text.replace("/path/to/snapsafe", self.repo))
        with open(os.path.join(here, "BUILD.bazel"), "w") as f:
            f.write('cc_binary(name = "app", srcs = ["app.cc"], '
                    'deps = ["@snapsafe//:snapsafe"])\n')
        with open(os.path.join(here, ".bazelrc"), "w") as f:
            f.write("build --cxxopt=-std=c++20\n")
        root = os.path.join(self.work, "bazel-root")
        try:
            ok, out = run(["bazel", f"--output_user_root={root}", "build", "//:app"], here,
                          self.env, timeout=600)
            if ok:
                ok, out = run([os.path.join(here, "bazel-bin", "app")], here, self.env)
            return ok, out
        finally:
            run(["bazel", f"--output_user_root={root}", "shutdown"], here, self.env, 60)

    def bindings(self):
        """The language bindings, installed once under the work directory: (ok, detail)."""
        if getattr(self, "bindings_ready", None) is None:
            self.bindings_ready = self.install_bindings()
        return self.bindings_ready

    def install_bindings(self):
        ok, out = run([os.path.join(self.repo, "scripts", "install-bindings-deps")],
                      self.work, self.env, timeout=900)
        if not ok:
            return False, "scripts/install-bindings-deps: " + out
        self.env["SNAPSAFE_LIBRARY"] = os.path.join(self.prefix, "lib", "libsnapsafe.so")
        bindings = os.path.join(self.work, "bindings")
        venv = os.path.join(bindings, "venv")
        node = os.path.join(bindings, "node_modules", "snapsafe")
        shutil.copytree(os.path.join(self.repo, "python"), os.path.join(bindings, "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        shutil.copytree(os.path.join(self.repo, "node"), node,
                        ignore=shutil.ignore_patterns("build", "node_modules"))
        for step in (["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                     [os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation",
                      "--no-index", os.path.join(bindings, "python")],
                     ["node", os.path.join(node, "build.js")]):
            ok, out = run(step, bindings, self.env, timeout=600)
            if not ok:
                return False, out
        self.python = os.path.join(venv, "bin", "python")
        self.node_path = os.path.dirname(node)
        return True, ""

    def script(self, example, language):
        ok, out = self.bindings()
        if not ok:
            return False, out
        here = self.scratch()
        env = dict(self.env)
        if language == "python":
            source, command = os.path.join(here, "app.py"), [self.python]
        elif language == "js":
            source, command = os.path.join(here, "app.js"), ["node"]
            env["NODE_PATH"] = self.node_path
        else:
            source, command = os.path.join(here, "main.go"), ["go", "run", "."]
            with open(os.path.join(here, "go.mod"), "w") as f:
                f.write("module example\n\ngo 1.19\n\nrequire snapsafe.dev/snapsafe v0.0.0\n\n"
                        f"replace snapsafe.dev/snapsafe => {os.path.join(self.repo, 'go')}\n")
            # No network; the prefix in CGO_* too (Go 1.19's cache ignores pkg-config).
            env.update(GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local",
                       CGO_CFLAGS=f"-I{self.prefix}/include/snapsafe",
                       CGO_LDFLAGS=f"-L{self.prefix}/lib -Wl,-rpath,{self.prefix}/lib")
        with open(source, "w") as f:
            f.write(example.text)
        return run(command + ([] if language == "go" else [source]), here, env, timeout=300)

    def example(self, example):
        """('run'|'not_runnable'|'output', ok, detail)"""
        if example.marker == "output":
            return "output", True, ""
        if example.marker == "not-runnable":
            if not example.reason:
                return "run", False, "not-runnable needs a reason"
            return "not_runnable", True, example.reason
        if example.marker not in (None, "bazel-workspace"):
            return "run", False, f"unknown marker '{example.marker}'"
        needs_app = example.lang in ("cmake",) or example.marker == "bazel-workspace"
        if needs_app and self.app_cc is None:
            return "run", False, "no C++ example before it to build"
        if example.marker == "bazel-workspace":
            return ("run", *self.bazel_workspace(example))
        if example.lang in ("c++", "cpp", "cc"):
            return ("run", *self.compiled(example, "g++", CXX_PRELUDE, ".cc"))
        if example.lang == "c":
            return ("run", *self.compiled(example, "gcc", C_PRELUDE, ".c"))
        if example.lang in ("sh", "bash", "shell"):
            return ("run", *self.shell(example))
        if example.lang == "cmake":
            return ("run", *self.cmake(example))
        if example.lang in ("python", "py"):
            return ("run", *self.script(example, "python"))
        if example.lang in ("js", "javascript"):
            return ("run", *self.script(example, "js"))
        if example.lang == "go":
            return ("run", *self.script(example, "go"))
        return "run", False, (f"no runner for '{example.lang or 'a block without language'}'"
                              " and no marker (<!-- example: ... -->)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="the checkout (bazel-bin, provider)")
    parser.add_argument("--prefix", required=True, help="where `//:install` installed")
    parser.add_argument("--min-run", type=int, default=0, help="fail if fewer ran")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    names = [os.path.relpath(f, args.repo) for f in args.files]
    work = tempfile.mkdtemp(prefix="snapsafe-doc-examples.")
    runner = Runner(os.path.abspath(args.repo), os.path.abspath(args.prefix), work)
    counts = dict(total=0, run=0, not_runnable=0, failed=0)
    try:
        for path, shown in zip(args.files, names):
            for example in extract(path, shown):
                kind, ok, detail = runner.example(example)
                if kind == "output":
                    continue
                counts["total"] += 1
                counts[kind] += 1
                if kind == "not_runnable":
                    print(f"doc-example {example.where} {example.lang}: not runnable ({detail})")
                elif ok:
                    print(f"doc-example {example.where} {example.lang}: ok")
                else:
                    counts["failed"] += 1
                    print(f"doc-example {example.where} {example.lang}: FAILED")
                    print("  " + detail.replace("\n", "\n  "))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("doc-examples: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    too_few = counts["run"] < args.min_run
    if too_few:
        print(f"doc-examples: only {counts['run']} ran, at least {args.min_run} expected")
    return 1 if counts["failed"] or too_few else 0


if __name__ == "__main__":
    sys.exit(main())
