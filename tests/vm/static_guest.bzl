"""static_guest_binary(): a program for the VM suite's guest, linked fully static.

The guest's initramfs (tests/vm/run) holds busybox and these programs and no libc, so each
is linked with -static; Debian ships libcrypto.a and libabsl_*.a, so -static also makes the
deps' -lcrypto / -labsl_* pick the archives. -pthread for the programs that start threads,
and, harmless, for those that do not (vm_ck_agent): one link line for every guest program.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

def static_guest_binary(name, srcs, deps = [], testonly = False):
    """A cc_binary `name` of srcs and deps, linked with -static -pthread.

    Args:
      name: the target's name (the program's file name in the initramfs).
      srcs: its sources.
      deps: its libraries.
      testonly: True for a program that links a test-only target.
    """
    optional = {}
    if deps:
        optional["deps"] = deps
    if testonly:
        optional["testonly"] = True
    cc_binary(
        name = name,
        srcs = srcs,
        linkopts = [
            "-static",
            "-pthread",
        ],
        **optional
    )
