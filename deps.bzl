"""snapsafe_dependencies(): everything a workspace that uses @snapsafe needs, offline.

In the consumer's WORKSPACE (Bazel 4.2.3 or later, WORKSPACE mode):

    local_repository(name = "snapsafe", path = "/path/to/snapsafe")
    load("@snapsafe//:deps.bzl", "snapsafe_dependencies")
    snapsafe_dependencies()

It declares what snapsafe's BUILD files refer to and nothing is downloaded: the rule sets
Bazel would otherwise fetch (rules_cc, rules_java, remote_coverage_tools) from snapsafe's
in-tree stand-ins, and the system libraries (@openssl, @abseil, @gtest, @benchmark) from
Debian's -dev packages under /usr. A name the workspace already declares is left alone.
Build with C++20 (`build --cxxopt=-std=c++20` in .bazelrc).
"""

def _in_tree_repository_impl(rctx):
    # The directory of the snapsafe repository this file was loaded from.
    source = rctx.path(Label("//:WORKSPACE")).dirname
    for part in rctx.attr.subdir.split("/"):
        source = source.get_child(part)
    for child in source.readdir():
        rctx.symlink(child, child.basename)

_in_tree_repository = repository_rule(
    implementation = _in_tree_repository_impl,
    attrs = {"subdir": attr.string(mandatory = True)},
    local = True,
)

def snapsafe_dependencies():
    for name, subdir in [
        ("rules_cc", "third_party/rules_cc"),
        ("rules_java", "third_party/rules_java"),
        ("remote_coverage_tools", "third_party/remote_coverage_tools"),
    ]:
        if not native.existing_rule(name):
            _in_tree_repository(name = name, subdir = subdir)
    for name in ["openssl", "abseil", "gtest", "benchmark"]:
        if not native.existing_rule(name):
            native.new_local_repository(
                name = name,
                path = "/usr",
                build_file = str(Label("//third_party/system:%s.BUILD" % name)),
            )
