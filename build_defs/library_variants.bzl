"""library_variants(): one of the library's parts, built the three ways it is linked.

The library's parts (//rng/internal, //rng, //ids/internal, //ids, //capi; //:snapsafe
bundles them) are each compiled three times from the same sources, under three names:

  NAME                 production, what //:snapsafe and //:libsnapsafe.so link.
                       alwayslink: //:libsnapsafe.so exports every symbol, referenced or
                       not. `visibility` is this target's alone.
  NAME_testing         the test-only hooks compiled in (SNAPSAFE_TESTING: rng/internal/
                       test_hooks.h, the seams of ids/internal/epoch.h), plus testing_srcs;
                       for //:snapsafe_testing. testonly, not alwayslink.
  NAME_genid_testing   the production build of the same sources, on genid's test-only twin
                       (//genid:genid_testing, whose seams re-select the generation source);
                       for //:snapsafe_genid_testing. testonly, alwayslink.

The twins keep the package's default visibility.

A binary links one build of each library (two, e.g. //genid and //genid:genid_testing,
would define every symbol twice), so each variant depends on the same variant of every
first-party library: _PARTS and _OTHER_STAND_INS below name, for each, what stands for it
in NAME_testing and in NAME_genid_testing, and a first-party dep they do not name fails at
load time instead of mixing builds. Other deps (@openssl//:crypto) are the same in all
three.

The twins' deps come in buildifier's order (":x", then "//...", then "@..."), as a
hand-written list would: the order of the libraries on a binary's link line follows it, and
with it the layout of the benchmarks' binaries.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

# The parts built by library_variants() itself: NAME_testing and NAME_genid_testing.
_PARTS = [
    "//capi:capi",
    "//ids:ids",
    "//ids/internal:internal",
    "//rng:rng",
    "//rng/internal:internal",
]

# First-party libraries with stand-ins of their own: (in NAME_testing, in
# NAME_genid_testing).
_OTHER_STAND_INS = {
    # genid's one test-only twin serves both.
    "//genid:genid": ("//genid:genid_testing", "//genid:genid_testing"),
    # No genid in it: the genid-testing build links the production one.
    "//rng/internal:aes_ctr_in_page": (
        "//rng/internal:aes_ctr_in_page_testing",
        "//rng/internal:aes_ctr_in_page",
    ),
}

def _absolute(label):
    """`label` as //package:name (":x" in this package, "//a/b" for "//a/b:b")."""
    if label.startswith(":"):
        return "//" + native.package_name() + label
    if label.startswith("//") and ":" not in label:
        return label + ":" + label.split("/")[-1]
    return label

def _spelled_like(label, stand_in):
    """stand_in as ":name" where label is spelled so and stand_in is in this package."""
    here = "//" + native.package_name() + ":"
    if label.startswith(":") and stand_in.startswith(here):
        return ":" + stand_in[len(here):]
    return stand_in

def _stand_ins(label):
    """(label's stand-in in NAME_testing, in NAME_genid_testing)."""
    if label.startswith("@"):
        return (label, label)
    absolute = _absolute(label)
    if absolute in _PARTS:
        pair = (absolute + "_testing", absolute + "_genid_testing")
    elif absolute in _OTHER_STAND_INS:
        pair = _OTHER_STAND_INS[absolute]
    else:
        fail(("library_variants: %s has no stand-ins for the testing builds; name them " +
              "in build_defs/library_variants.bzl") % label)
    return (_spelled_like(label, pair[0]), _spelled_like(label, pair[1]))

def _buildifier_key(label):
    """Where buildifier puts label in a sorted deps list."""
    phase = 0
    if label.startswith(":"):
        phase = 1
    elif label.startswith("//"):
        phase = 2
    elif label.startswith("@"):
        phase = 3
    return [phase] + label.replace(":", ".").split(".")

def _buildifier_order(labels):
    """labels sorted as buildifier sorts a deps list."""
    return sorted(labels, key = _buildifier_key)

def library_variants(name, srcs, hdrs, deps, testing_srcs = [], visibility = None):
    """The targets NAME, NAME_testing and NAME_genid_testing (see the file's comment).

    Args:
      name: the production target's name.
      srcs: the sources of all three.
      hdrs: the headers of all three.
      deps: the production target's deps; the twins get their stand-ins.
      testing_srcs: sources only NAME_testing compiles (the hooks' definitions).
      visibility: the production target's visibility (default: the package's).
    """
    stand_ins = [_stand_ins(dep) for dep in deps]
    production = {}
    if visibility != None:
        production["visibility"] = visibility
    cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        alwayslink = True,
        deps = deps,
        **production
    )
    cc_library(
        name = name + "_testing",
        testonly = True,
        srcs = srcs + testing_srcs,
        hdrs = hdrs,
        defines = ["SNAPSAFE_TESTING"],
        deps = _buildifier_order([testing for testing, _ in stand_ins]),
    )
    cc_library(
        name = name + "_genid_testing",
        testonly = True,
        srcs = srcs,
        hdrs = hdrs,
        alwayslink = True,
        deps = _buildifier_order([genid_testing for _, genid_testing in stand_ins]),
    )
