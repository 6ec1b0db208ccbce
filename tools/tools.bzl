"""The command-line tools' sources and libraries, in one place.

//tools:snapsafe and //tools:snapsafe_counter build them for the host; tests/vm builds the
same programs again, linked fully static for the VM guest (vm_snapsafe, vm_snapsafe_counter
in tests/vm/BUILD.bazel). Both read them from here, so that the guest's program cannot drift
from the tool it stands for. The labels are absolute: two packages use them.
"""

# `snapsafe`: status, UUIDs, request IDs, random bytes, and the system generation (read,
# bump, wait, follow).
SNAPSAFE_CLI = struct(
    srcs = ["//tools:snapsafe.cc"],
    deps = [
        "//tools:cli_args",
        "//tools:genid_follow",
        "//tools:kernel_reseed",
        "//tools:sysgenid_device",
        "//genid",
        "//genid:counter_file_writer",
        "//rng:snapsafe",
    ],
)

# `snapsafe_counter`: the counter file's create / bump / set / read, for restore hooks.
SNAPSAFE_COUNTER_CLI = struct(
    srcs = ["//tools:snapsafe_counter.cc"],
    deps = [
        "//genid",
        "//genid:counter_file_writer",
    ],
)
