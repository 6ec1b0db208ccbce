#!/usr/bin/env python3
"""Writes the seed corpora tests/fuzz/corpus/TARGET/ (a handful of inputs per target).

The targets read their inputs through FuzzedDataProvider (LLVM 14): integers are taken
from the END of the input (the last byte first, most significant first), strings and
bytes from the front. Input below builds such inputs from the values a target will
consume, in the order it consumes them, so each seed is a meaningful script. Run it after
changing what a target consumes; tests/fuzz/run replays every seed before fuzzing.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Input:
    """An input for FuzzedDataProvider, built in consumption order."""

    def __init__(self):
        self.front = b""
        self.back = []  # chunks in consumption order: the first ends the input

    def integral(self, value, lo, hi):
        """ConsumeIntegralInRange(lo, hi) returning `value` (hi - lo decides the width)."""
        span = hi - lo
        width = 0
        while width < 8 and (span >> (8 * width)) > 0:
            width += 1
        raw = value - lo
        assert 0 <= raw <= span
        self.back.append(raw.to_bytes(width, "little"))
        return self

    def u8(self, v):
        return self.integral(v, 0, 0xFF)

    def u32(self, v):
        return self.integral(v, 0, 0xFFFFFFFF)

    def u64(self, v):
        return self.integral(v, 0, 0xFFFFFFFFFFFFFFFF)

    def boolean(self, v):
        return self.u8(1 if v else 0)

    def bytes(self, data):
        """ConsumeBytes / ConsumeBytesAsString / ConsumeRemainingBytes: from the front."""
        self.front += data
        return self

    def string(self, text):
        """ConsumeRandomLengthString: backslashes doubled, ended by a backslash + 'x'."""
        self.front += text.replace(b"\\", b"\\\\") + b"\\x"
        return self

    def build(self):
        return self.front + b"".join(reversed(self.back))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# ---- uuid_parse_fuzz: the input is the text.
for name, text in [
    ("v7", b"0190f4e2-7c1a-7a3b-9d2e-0123456789ab"),
    ("v4_upper", b"9F86D081-884C-4D63-A59F-2AEA2BC1CE3B"),
    ("nil", b"00000000-0000-0000-0000-000000000000"),
    ("max", b"ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ("braces", b"{0190f4e2-7c1a-7a3b-9d2e-0123456789ab}"),
    ("misplaced_hyphen", b"0190f4e27-c1a-7a3b-9d2e-0123456789ab"),
    ("not_hex", b"0190f4e2-7c1a-7a3b-9d2e-0123456789ag"),
]:
    write("uuid_parse_fuzz", name, text)

# ---- cli_args_fuzz: arguments separated by NUL.
for name, args in [
    ("uuid_v7", [b"uuid", b"-n", b"5", b"--v7"]),
    ("bytes_hex", [b"bytes", b"16", b"--hex"]),
    ("bump", [b"genid", b"bump", b"--min=5", b"--file", b"/run/snapsafe/generation"]),
    ("wait", [b"genid", b"wait", b"--timeout-ms", b"86400000"]),
    ("help", [b"help", b"genid"]),
    ("too_large", [b"reqid", b"-n", b"18446744073709551616"]),
    ("dashdash", [b"uuid", b"--", b"-n"]),
]:
    write("cli_args_fuzz", name, b"\0".join(args))

# ---- counter_file_fuzz: steps (count, then op/a/b each) from the end, contents in front.
MAGIC = b"SSGENv1\n"
BUMP, POKE, TRUNCATE, CHMOD, UNLINK, REPLACE, OPEN_AGAIN = range(7)


def counter_input(contents, steps):
    data = Input().integral(len(steps), 0, 8)
    for op, a, b in steps:
        data.integral(op, 0, 6).u8(a).u8(b)
    return data.bytes(contents).build()


valid = MAGIC + struct.pack("<Q", 41)
for name, contents, steps in [
    ("valid", valid, []),
    ("bump_poke_generation", valid, [(BUMP, 0, 0), (POKE, 9, 0x7F), (OPEN_AGAIN, 0, 0)]),
    ("truncate_to_0", valid, [(TRUNCATE, 0, 0)]),
    ("shrink_then_extend", valid, [(TRUNCATE, 12, 0), (TRUNCATE, 32, 0), (BUMP, 0, 0)]),
    ("poke_magic", valid, [(POKE, 2, ord("X"))]),
    ("chmod_group_writable", valid, [(CHMOD, 3, 0), (BUMP, 0, 0)]),
    ("unlink_then_replace", valid, [(UNLINK, 0, 0), (REPLACE, 5, 0), (BUMP, 0, 0)]),
    ("longer_file", valid + b"trailing bytes!!", [(BUMP, 0, 0)]),
    ("short", valid[:15], []),
    ("bad_magic", b"SSGENv2\n" + struct.pack("<Q", 1), []),
]:
    write("counter_file_fuzz", name, counter_input(contents, steps))

# ---- vmclock_page_fuzz: writer steps (count, then action/value each) from the end, page in
# front.
IDLE, UPDATE, STALL = range(3)


def vmclock_page(seq=2, generation=0x1234, magic=0x4B4C4356, version=1, size=112,
                 flags=1 << 8, length=112):
    page = bytearray(max(length, 112))
    struct.pack_into("<I", page, 0, magic)
    struct.pack_into("<I", page, 4, size)
    struct.pack_into("<H", page, 8, version)
    struct.pack_into("<I", page, 12, seq)
    struct.pack_into("<Q", page, 24, flags)
    struct.pack_into("<Q", page, 104, generation)
    return bytes(page[:length])


def vmclock_input(page, steps):
    data = Input().integral(len(steps), 0, 16)
    for action, value in steps:
        data.integral(action, 0, 2).u64(value)
    return data.bytes(page).build()


for name, page, steps in [
    ("valid", vmclock_page(), []),
    ("update_then_idle", vmclock_page(), [(UPDATE, 0x55), (IDLE, 0)]),
    ("writer_stalls", vmclock_page(), [(UPDATE, 0x56), (STALL, 7)]),
    ("always_updating", vmclock_page(), [(UPDATE, 1)]),
    ("odd_seq", vmclock_page(seq=3), []),
    ("no_generation_flag", vmclock_page(flags=0), []),
    ("truncated_file", vmclock_page(length=111), []),
    ("full_page", vmclock_page(length=4096), [(IDLE, 0)]),
]:
    write("vmclock_page_fuzz", name, vmclock_input(page, steps))

# ---- sysgenid_read_fuzz: mode first (false: the device, true: the regular-file stand-in).
MODEL, VALUE, SHORT, EAGAIN, ERROR = range(5)
QUEUE, READ, ACK, BUMP_GEN, SET_GEN, STEAL_PIPE, STEAL_FILE, CLOSE_BEHIND, NODE_GONE, \
    NODE_BACK = range(10)


def device_input(generation, open_answer, steps):
    data = Input().boolean(False).u32(generation)
    data.boolean(open_answer is not None)
    if open_answer is not None:
        data.integral(open_answer[0], 0, 4).u32(open_answer[1])
    data.integral(len(steps), 0, 24)
    for step in steps:
        data.integral(step[0], 0, 9)
        if step[0] == QUEUE:
            data.integral(step[1], 0, 4).u32(step[2])
        elif step[0] == SET_GEN:
            data.u32(step[1])
    return data.build()


def file_input(contents, rewrites):
    data = Input().boolean(True).integral(len(contents), 0, 8).bytes(contents)
    for rewrite in rewrites:
        data.integral(len(rewrite), 0, 8).bytes(rewrite)
    return data.build()


for name, data in [
    ("read_ack_read", device_input(100, None, [(READ,), (ACK,), (READ,), (BUMP_GEN,), (READ,)])),
    ("short_read", device_input(7, None, [(QUEUE, SHORT, 2), (READ,), (QUEUE, VALUE, 9), (READ,)])),
    ("errors", device_input(7, (ERROR, 0), [])),
    ("eagain_open", device_input(7, (EAGAIN, 0), [(READ,), (QUEUE, EAGAIN, 0), (READ,)])),
    ("stolen_pipe", device_input(5, None, [(BUMP_GEN,), (STEAL_PIPE,), (READ,), (ACK,), (READ,)])),
    ("stolen_file", device_input(5, None, [(STEAL_FILE,), (ACK,), (READ,)])),
    ("closed_node_gone", device_input(5, None, [(CLOSE_BEHIND,), (NODE_GONE,), (READ,),
                                                (NODE_BACK,), (READ,)])),
    ("file_standin", file_input(struct.pack("<I", 77), [b"\x01\x02", struct.pack("<I", 78)])),
]:
    write("sysgenid_read_fuzz", name, data)

# ---- c_api_fuzz: calls (function, NULL 1 in 8, then its arguments).
FILL, U64, UNIFORM, UUID_V4, UUID_V7, UUID_V4_BYTES, UUID_V7_BYTES, UUID_PARSE, \
    UUID_FORMAT, REQUEST_ID, STATUS, SOURCE_NAME, BUMP_FILE = range(13)


def c_api_input(calls):
    data = Input()
    for call in calls:
        kind, null = call[0], call[1]
        data.integral(kind, 0, 12).integral(0 if null else 1, 0, 7)
        if kind == FILL:
            data.boolean(False).integral(call[2], 0, 131072)
        elif kind == UNIFORM:
            data.u64(call[2]).boolean(False)
        elif kind in (UUID_V4, UUID_V7, UUID_V4_BYTES, UUID_V7_BYTES, REQUEST_ID, SOURCE_NAME):
            data.boolean(False).integral(call[2], 0, 80)
        elif kind == UUID_PARSE:
            data.integral(call[2], -2, 10).integral(1, 0, 7)
            data.boolean(False).integral(16, 0, 80).string(call[3])
        elif kind == UUID_FORMAT:
            data.integral(1, 0, 7)
            for byte in call[2]:
                data.u8(byte)
            data.boolean(False).integral(37, 0, 80)
        elif kind == STATUS:
            data.integral(call[2], 0, 4).boolean(True)
    return data.build()


for name, calls in [
    ("draws", [(FILL, False, 4097), (U64, False), (UNIFORM, False, 6), (FILL, True, 5)]),
    ("uuids", [(UUID_V4, False, 37), (UUID_V7, False, 36), (UUID_V7_BYTES, False, 16),
               (UUID_V4_BYTES, True, 16)]),
    ("parse", [(UUID_PARSE, False, 7, b"0190f4e2-7c1a-7a3b-9d2e-0123456789ab"),
               (UUID_PARSE, False, 9, b"0190f4e2-7c1a-7a3b-9d2e-0123456789ab")]),
    ("format", [(UUID_FORMAT, False, bytes(range(16)))]),
    ("status_sizes", [(STATUS, False, 0), (STATUS, False, 1), (STATUS, True, 2)]),
    ("ids_and_name", [(REQUEST_ID, False, 33), (REQUEST_ID, False, 32), (SOURCE_NAME, False, 5)]),
    ("restore_between_draws", [(FILL, False, 64), (BUMP_FILE, False), (FILL, False, 64),
                               (UUID_V7, False, 37)]),
]:
    write("c_api_fuzz", name, c_api_input(calls))


# ---- uevent_parse_fuzz: the datagram itself ----
for name, payload in [
    ("vmgenid_change", b"change@/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00\0ACTION=change\0"
                       b"DEVPATH=/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00\0SUBSYSTEM=acpi\0"
                       b"NEW_VMGENID=1\0SEQNUM=1234\0"),
    ("add_event", b"add@/devices/virtual/misc/vmclock0\0ACTION=add\0MAJOR=10\0MINOR=122\0"),
    ("udev_message", b"libudev\0\xfe\xed\xca\xfe\0\0\0\0"),
    ("no_terminator", b"change@/x\0NEW_VMGENID=1"),
]:
    write("uevent_parse_fuzz", name, payload)
