#!/usr/bin/env python3
"""The VM suite's follower scenario (tests/vm/run --follow): `snapsafe genid follow` in a
real guest, and a non-root process that can open no device, across new-GUID clones.

    follow.py --workdir DIR --vmlinux FILE --initrd FILE

The guest (tests/vm/follow_init) loads the SysGenID module, makes /dev/sysgenid root-only
(there is no VMClock under QEMU 7.2), starts the follower as root (it watches
/dev/sysgenid as a tracked watcher, and the kernel's vmgenid uevent on kernels that send
it), and two processes as nobody that tick one snapsafe value each per tick:
snapsafe-follow names the follower's counter file, snapsafe-nofollow a file nobody bumps.
The host snapshots the running guest and restores two clones with NEW vmgenid GUIDs
(the original resumes too), then checks:
  - in each clone the follower logged a bump (the VM fork reached it);
  - snapsafe-follow's values drawn after that bump share nothing with the other clone's
    nor with the original's values after the snapshot (the non-root process reseeded);
  - snapsafe-nofollow repeats the original tick for tick in both clones (the control:
    without the follower the non-root process has no signal at all).
Reported: the time from `cont` to the follower's bump line, and how many of
snapsafe-follow's ticks fell in that window (asynchronous: they repeat the original's).

Last line: "vm-follow: clones=2 nonroot_distinct=yes|no nofollow_repeats=yes|no".
Exit status 0 when both are yes, 1 otherwise.
"""
import argparse
import os
import re
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (tests/vm/harness.py: Vm, wait_for, Failure)

LABELS = ["snapsafe-follow", "snapsafe-nofollow"]
TICK_RE = re.compile(r"^@T (snapsafe-(?:no)?follow) (\d+) \d+ ([0-9a-f]{16}) \d+$")
BUMP_RE = re.compile(r"^snapsafe genid follow: (.*): \S+ bumped to \d+ in \d+ us", re.M)
PRE_SNAPSHOT_TICKS = 5
AFTER_BUMP_TICKS = 8


def log(message):
    print(message, flush=True)


def ticks_of(text):
    """{label: [(tick, value, offset in text)]}."""
    out = {label: [] for label in LABELS}
    for m in re.finditer(r"^.*$", text, re.M):
        t = TICK_RE.match(m.group(0))
        if t:
            out[t.group(1)].append((int(t.group(2)), t.group(3), m.start()))
    return out


def run(args, vms):
    args.vmtest = "follow"
    args.demo = args.negative_control = False
    orig = harness.Vm(args, "original", str(uuid.uuid4()))
    vms.append(orig)

    def halted():
        m = re.search(r"^@halt (.*)$", orig.text(), re.M)
        if m:
            raise harness.Failure("guest stopped: " + m.group(1))

    harness.wait_for("the guest's @ready line", lambda: halted() or "@ready" in orig.text(),
                     harness.BOOT_TIMEOUT, vms, 0.2)
    harness.wait_for("the workload's first ticks",
                     lambda: all(len(v) >= PRE_SNAPSHOT_TICKS
                                 for v in ticks_of(orig.text()).values()), 60, vms, 0.1)
    sources = dict(re.findall(r"^@S (\S+) (\S+)$", orig.text(), re.M))
    if sources != {label: "counter-file" for label in LABELS}:
        raise harness.Failure(f"the non-root processes' sources are {sources}, want the "
                              "counter file only (they must open no device)")
    state = os.path.join(args.workdir, "state")
    orig.command("stop")
    orig.offset = os.path.getsize(orig.out)
    orig.command("migrate", {"uri": "exec:cat > " + state})
    status = harness.wait_for(
        "the snapshot", lambda: (lambda s: s if s in ("completed", "failed", "cancelled") else None)(
            orig.command("query-migrate").get("status")), 60, vms)
    if status != "completed":
        raise harness.Failure("migration " + status)
    with open(orig.out, "rb") as f:
        snapshot_text = f.read(orig.offset).decode("utf-8", "replace").replace("\r", "")
    snap_tick = max(t for t, _, _ in ticks_of(snapshot_text)["snapsafe-follow"])

    clones = [harness.Vm(args, f"clone-{i}", str(uuid.uuid4()), state) for i in (1, 2)]
    vms.extend(clones)
    for vm in clones:
        harness.wait_for(f"{vm.name} to load the snapshot",
                         lambda vm=vm: vm.command("query-status")["status"] == "paused", 60, vms)
    for vm in clones + [orig]:
        vm.cont_time = time.monotonic()
        vm.command("cont")

    def bumped():
        for vm in clones:
            if vm.bump_time is None and BUMP_RE.search(vm.text(vm.offset)):
                vm.bump_time = time.monotonic()
        return all(vm.bump_time is not None for vm in clones)

    harness.wait_for("the follower's bump in every clone", bumped, harness.CLONE_TIMEOUT, vms, 0.02)

    def enough():
        for vm in clones:
            text = vm.text(vm.offset)
            after = BUMP_RE.search(text).end()
            if sum(1 for _, _, at in ticks_of(text)["snapsafe-follow"] if at > after) < AFTER_BUMP_TICKS:
                return False
        return all(len(v) >= AFTER_BUMP_TICKS for v in ticks_of(orig.text(orig.offset)).values())

    harness.wait_for("enough ticks after the bumps", enough, harness.CLONE_TIMEOUT, vms, 0.05)
    for vm in vms:
        vm.kill()

    orig_after = ticks_of(orig.text(orig.offset))
    # Every value the original drew (the snapshot may have cut a tick line in two).
    orig_all = {v for _, v, _ in ticks_of(orig.text())["snapsafe-follow"]}
    orig_values = {v for _, v, _ in orig_after["snapsafe-follow"]}
    orig_nofollow = {t: v for t, v, _ in orig_after["snapsafe-nofollow"]}
    distinct, repeats = True, True
    after_sets = []
    for vm in clones:
        text = vm.text(vm.offset)
        m = BUMP_RE.search(text)
        ticks = ticks_of(text)
        # The first tick line after the bump line may hold a value drawn just before it.
        after = [(t, v) for t, v, at in ticks["snapsafe-follow"] if at > m.end()][1:]
        window = [(t, v) for t, v, at in ticks["snapsafe-follow"] if at < m.start()]
        values = {v for _, v in after}
        shared_orig = len(values & orig_values)
        after_sets.append(values)
        in_window_repeat = sum(1 for _, v in window if v in orig_all)
        log(f"vm-follow: {vm.name}: follower: {m.group(1)}; bump seen "
            f"{vm.bump_time - vm.cont_time:.2f} s after cont (host, TCG); ticks in the window "
            f"before it: {len(window)} ({in_window_repeat} repeat the original's); "
            f"{len(after)} after: {shared_orig} shared with the original")
        for line in re.findall(r"^snapsafe genid follow: .*$", text, re.M):
            log(f"vm-follow: {vm.name}:   | {line}")
        distinct &= len(after) >= AFTER_BUMP_TICKS - 1 and shared_orig == 0
        nofollow = {t: v for t, v, _ in ticks["snapsafe-nofollow"]}
        common = [t for t in nofollow if t in orig_nofollow and t > snap_tick]
        same = sum(1 for t in common if nofollow[t] == orig_nofollow[t])
        log(f"vm-follow: {vm.name}: control (no follower): {same} of {len(common)} ticks "
            "repeat the original's")
        repeats &= bool(common) and same == len(common)
    shared_clones = len(after_sets[0] & after_sets[1])
    log(f"vm-follow: the two clones share {shared_clones} snapsafe-follow values after their bumps")
    distinct &= shared_clones == 0
    log(f"vm-follow: clones={len(clones)} nonroot_distinct={'yes' if distinct else 'no'} "
        f"nofollow_repeats={'yes' if repeats else 'no'}")
    return 0 if distinct and repeats else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--vmlinux", required=True)
    parser.add_argument("--initrd", required=True)
    parser.add_argument("--tick", type=int, default=200, help="workload tick, ms")
    parser.add_argument("--memory", default="256M")
    parser.add_argument("--started", type=float, default=time.time())
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    vms = []
    try:
        return run(args, vms)
    except harness.Failure as error:
        log(f"vm-follow: FAIL {error}")
        for name in sorted(os.listdir(args.workdir)):
            if name.startswith(("out-", "console-", "qemu-")):
                with open(os.path.join(args.workdir, name), "rb") as f:
                    tail = f.read()[-1500:].decode("utf-8", "replace").replace("\r", "")
                log(f"---- {name} (last lines)\n{tail}")
        log("vm-follow: clones=0 nonroot_distinct=no nofollow_repeats=no")
        return 1
    finally:
        for vm in vms:
            vm.kill()


if __name__ == "__main__":
    sys.exit(main())
