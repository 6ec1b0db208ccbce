#!/usr/bin/env python3
"""The cloned-kernel scenario of tests/vm/run: VM clones whose kernel RNG is a clone.

    cloned_kernel.py --workdir DIR --vmlinux FILE --initrd FILE [--variants rdrand,norand]

Clones restored with the SAME VMGenID GUID: the guest kernel is not told of the restore, so
its CRNG is a copy in every clone and getrandom(2) repeats. Nothing in the clone can tell the
copies apart then; the host can. As a hypervisor's guest agent would (kata's agent takes a
host nonce), the host hands each clone its own value and the in-guest agent runs
`snapsafe genid bump --file F --set VALUE --reseed-kernel`: the counter file every buffered
snapsafe process watches moves to that value (the reseed hashes it in), and the kernel's pool
takes it too (RNDADDENTROPY, then RNDRESEEDCRNG re-keys the CRNG), so every program's
getrandom differs as well.

Two CPU variants, each its own boot and snapshot (one snapshot cannot serve both: the
guest kernel and every process decide at boot or start whether the CPU has RDRAND, so a
guest that booted with it goes on executing it wherever it is restored):
  rdrand   -cpu max
  norand   -cpu max,-rdrand,-rdseed: no hardware RNG, so nothing but the handed-in value
           and the clocks differ between clones (the case this scenario is about)
Per variant: boot (tests/vm/init, vmtest=cloned-kernel: tests/vm/cloned_kernel.sh starts
one process per snapsafe mode and the agent), let every mode tick, ask the agent for a
fresh CRNG key (at 12 s of uptime or later: RNDRESEEDCRNG, and on kernels whose CRNG
reseeds from a timer (6.2+) and whose vDSO shows it, the timer's next reseed; so that the
kernel's own reseed, at least 6 s later, does not fall while the copies are compared:
tests/vm/cloned_kernel_agent.cc), snapshot at once, restore three clones with the
original's GUID, and hand each copy its line while it is still paused (so that the
agent's getrandom comes soon after the resume): clone-1 and clone-2 `bump VALUE`
with distinct random values, clone-3 and the original (resumed) `none`. Then every mode
ticks AFTER_BUMP_TICKS times after the bump and all VMs stop. Judged:
  - getrandom_repeats_before: every copy's first getrandom calls after the restore (8 in a
    row) come from one CRNG: every two copies share at least 4 of the 8 values (the kernel
    draws for itself at moments that differ per copy, which shifts a sequence by a step;
    two CRNGs that diverged share none), and the two unbumped copies' second 8 too;
  - getrandom_distinct_after: after the bump, each bumped clone's 8 values are its own;
  - snapsafe_distinct (rdrand) / norand_distinct (norand): in every mode, each bumped
    clone's values from the second tick after the bump on were drawn by no other copy,
    AND the negative control holds: the two unbumped copies repeat each other tick for
    tick in every buffered mode (and, in norand, at the kernel-backed mode's first tick
    after the restore): without the bump nothing tells the copies apart, so the distinct
    values are the bump's doing.
The same handed-in value in two clones is not a negative control here: snapsafe's reseed
and the kernel's RNDADDENTROPY both hash the clocks (TSC), which differ between two real
clones; tests/cloned_kernel_test.cc freezes them and shows that one value repeats.

Prints per variant a few "vm-clone-cloned-kernel: ..." lines, then exactly one line
"vm-clone-cloned-kernel: clones=N snapsafe_distinct=yes|no norand_distinct=yes|no
getrandom_repeats_before=yes|no getrandom_distinct_after=yes|no" (N: same-GUID clones per
variant). Exit status 0 only if every field is yes.
"""
import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (tests/vm/harness.py: Vm, wait_for, Failure)
import qmp  # noqa: E402

LABELS = ["ck-counter", "ck-counter-evp", "ck-auto", "ck-kernel"]  # judged
VM_ONLY = "ck-sysgenid"  # SysGenID alone: no bump reaches it (reported, not judged)
BUFFERED = ["ck-counter", "ck-counter-evp", "ck-auto"]
KERNEL = "ck-kernel"
CPUS = {"rdrand": "max", "norand": "max,-rdrand,-rdseed"}
# What the guest's CPUID shows (QEMU 7.2's TCG "max" has RDRAND, not RDSEED).
CPU_LINE = {"rdrand": "rdrand=1 rdseed=", "norand": "rdrand=0 rdseed=0"}
PRE_SNAPSHOT_TICKS = 3   # every mode has ticked this often before the snapshot
AFTER_BUMP_TICKS = 5     # judged ticks per mode after every bump
BOOT_TIMEOUT = 180       # s: boot to the workload's ticks, TCG on a busy machine
CLONE_TIMEOUT = 90       # s: restore to the last judged tick
G_RE = re.compile(r"^@G (before|after) ((?:[0-9a-f]{32} )*[0-9a-f]{32})$", re.M)
SAMPLES = 8              # getrandom calls per @G line (tests/vm/cloned_kernel_agent.cc)
SHARED = SAMPLES // 2    # copies of one CRNG share at least this many of them
PREFIX = "vm-clone-cloned-kernel"


def log(message):
    print(message, flush=True)


class Vm(harness.Vm):
    """harness.Vm with the variant's CPU, vmtest=cloned-kernel and the agent's serial port
    (ttyS2, a Unix socket the host connects to)."""

    def __init__(self, args, variant, name, guid, incoming=None):  # pylint: disable=super-init-not-called
        self.name, self.guid = f"ck-{variant}-{name}", guid
        w = args.workdir
        self.console = os.path.join(w, f"console-{self.name}.log")
        self.out = os.path.join(w, f"out-{self.name}.log")
        self.sock = os.path.join(w, f"{self.name}.qmp")
        self.agent_path = os.path.join(w, f"{self.name}.agent")
        for stale in (self.console, self.out):  # a work directory used before
            if os.path.exists(stale):
                os.unlink(stale)
        cmdline = f"console=ttyS0 quiet panic=-1 vmtest=cloned-kernel vmtick={args.tick}"
        command = [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", CPUS[variant], "-m", args.memory,
            "-nodefaults", "-no-user-config", "-nographic", "-monitor", "none",
            "-kernel", args.vmlinux, "-initrd", args.initrd, "-append", cmdline,
            "-serial", "file:" + self.console, "-serial", "file:" + self.out,
            "-serial", f"unix:{self.agent_path},server=on,wait=off",
            "-device", "vmgenid,guid=" + guid,
            "-qmp", f"unix:{self.sock},server=on,wait=off",
            "-no-reboot", "-pidfile", os.path.join(w, f"{self.name}.pid"),
        ]
        if incoming:
            command += ["-incoming", "exec:cat " + incoming]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(w, f"qemu-{self.name}.log"), "wb"),
                                     stderr=subprocess.STDOUT, preexec_fn=harness.die_with_parent)
        self._qmp = None
        self._agent = None
        self.cont_time = None
        self.bump_time = None
        self.offset = 0
        self.skip_first_line = False
        self.value = None  # what the host handed in (None: no bump)

    def send(self, line):
        """One line to the in-guest agent (ttyS2)."""
        if self._agent is None:
            deadline = time.monotonic() + 30
            while True:
                try:
                    self._agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self._agent.connect(self.agent_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    self._agent.close()
                    self._agent = None
                    self.check_alive()
                    if time.monotonic() > deadline:
                        raise harness.Failure(f"{self.name}: no agent socket")
                    time.sleep(0.05)
        self._agent.sendall(line.encode() + b"\n")

    def restored_text(self):
        text = self.text(self.offset)
        return text.split("\n", 1)[1] if self.skip_first_line and "\n" in text else text


def parse_ticks(text):
    """{label: {tick: value}}"""
    ticks = {label: {} for label in LABELS + [VM_ONLY]}
    for line in text.split("\n"):
        m = harness.TICK_RE.match(line)
        if m and m.group(1) in ticks:
            ticks[m.group(1)][int(m.group(2))] = m.group(4)
    return ticks


def last_tick_before(text, marker, label):
    """The highest tick of `label` printed before `marker`'s line (0 if none)."""
    head = text[:text.find(marker)] if marker in text else text
    ticks = parse_ticks(head)[label]
    return max(ticks) if ticks else 0


def run_variant(args, variant, vms):
    """Boots, snapshots and clones one CPU variant; returns its verdicts and report lines."""
    guid = str(uuid.uuid4())
    t0 = time.monotonic()
    orig = Vm(args, variant, "original", guid)
    vms.append(orig)

    def halted():
        m = re.search(r"^@halt (.*)$", orig.text(), re.M)
        if m:
            raise harness.Failure(f"{orig.name}: guest stopped: {m.group(1)}")

    harness.wait_for(f"{orig.name}'s @ready line", lambda: halted() or "@ready" in orig.text(),
                     BOOT_TIMEOUT, vms, 0.2)
    text = orig.text()
    cpu = re.search(r"^@cpu (.*)$", text, re.M)
    if not cpu or not cpu.group(1).startswith(CPU_LINE[variant]):
        raise harness.Failure(f"{orig.name}: guest CPU says {cpu.group(1) if cpu else '?'}, "
                              f"want {CPU_LINE[variant]} (-cpu {CPUS[variant]})")
    modes = dict(re.findall(r"^@M (ck-\S+): (.*)$", text, re.M))
    harness.wait_for(f"{orig.name}'s first ticks",
                     lambda: all(len(t) >= PRE_SNAPSHOT_TICKS
                                 for t in parse_ticks(orig.text()).values()), 60, vms, 0.1)
    sources = dict(re.findall(r"^@S (ck-\S+) (\S+)$", orig.text(), re.M))
    # Snapshot right after a kernel-backed tick (its next draw is a tick away) and a forced
    # CRNG reseed (the kernel's own on-demand reseed is then an interval away).
    kernel_tick = max(parse_ticks(orig.text())[KERNEL])
    harness.wait_for("a fresh kernel-backed tick",
                     lambda: max(parse_ticks(orig.text())[KERNEL]) > kernel_tick, 10, vms, 0.01)
    orig.send("reseed")
    harness.wait_for(f"{orig.name}'s reseed (up to the kernel's longest interval)",
                     lambda: "@K done reseed" in orig.text(), 75, vms, 0.005)
    orig.command("stop")
    m = re.search(r"^@K reseeded (\S+) (forced|timer) uptime=([\d.]+)$", orig.text(), re.M)
    if not m or m.group(1) != "ok":
        raise harness.Failure(f"{orig.name}: RNDRESEEDCRNG: {m.group(1) if m else '?'}")
    reseed_kind, reseed_uptime = m.group(2), float(m.group(3))
    orig.offset = os.path.getsize(orig.out)
    with open(orig.out, "rb") as f:
        snapshot_text = f.read(orig.offset).decode("utf-8", "replace").replace("\r", "")
    orig.skip_first_line = not snapshot_text.endswith("\n")
    state = os.path.join(args.workdir, f"state-{variant}")
    orig.command("migrate", {"uri": "exec:cat > " + state})
    status = harness.wait_for(
        "the snapshot", lambda: (lambda s: s if s in ("completed", "failed", "cancelled")
                                 else None)(orig.command("query-migrate").get("status")), 60, vms)
    if status != "completed":
        raise harness.Failure("migration " + status)

    clones = [Vm(args, variant, f"clone-{i}", guid, state) for i in (1, 2, 3)]
    vms.extend(clones)
    values = set()
    while len(values) < 2:
        values.add(secrets.randbits(62) + 1)
    clones[0].value, clones[1].value = sorted(values)
    bumped = [vm for vm in clones if vm.value is not None]
    unbumped = [vm for vm in clones + [orig] if vm.value is None]
    for vm in clones:
        harness.wait_for(f"{vm.name} to load the snapshot",
                         lambda vm=vm: vm.command("query-status")["status"] == "paused", 60, vms)
    # The line first, then cont: the agent, blocked in read(), draws from the kernel soon
    # after the resume, before most of what the copies do differently.
    for vm in clones + [orig]:
        vm.send(f"bump {vm.value}" if vm.value is not None else "none")
        vm.cont_time = time.monotonic()
        vm.command("cont")

    def post_bump_start(vm, label):
        """The first tick of `label` drawn after vm's bump completed (see judge)."""
        return last_tick_before(vm.restored_text(), "@K bump", label) + 2

    def done():
        texts = {vm.name: vm.restored_text() for vm in clones + [orig]}
        if any("@K done" not in texts[vm.name] for vm in clones + [orig]):
            return None
        targets = {label: max(post_bump_start(vm, label) for vm in bumped) + AFTER_BUMP_TICKS - 1
                   for label in LABELS}
        for vm in clones + [orig]:
            ticks = parse_ticks(texts[vm.name])
            if any(not ticks[label] or max(ticks[label]) < targets[label] for label in LABELS):
                return None
        return targets

    targets = harness.wait_for("every mode's ticks after the bumps", done, CLONE_TIMEOUT, vms, 0.05)
    for vm in clones + [orig]:
        vm.kill()
    return judge(variant, orig, clones, bumped, unbumped, snapshot_text, targets, sources, modes,
                 (reseed_kind, reseed_uptime), time.monotonic() - t0)


def judge(variant, orig, clones, bumped, unbumped, snapshot_text, targets, sources, modes,
          reseed, seconds):
    problems, lines = [], []
    everyone = clones + [orig]
    texts = {vm.name: vm.restored_text() for vm in everyone}
    ticks = {vm.name: parse_ticks(texts[vm.name]) for vm in everyone}
    samples = {vm.name: {when: set(hexes.split()) for when, hexes in G_RE.findall(texts[vm.name])}
               for vm in everyone}
    # All values a copy ever drew, per mode: the original's from boot.
    history = {vm.name: {label: set(t.values()) for label, t in ticks[vm.name].items()}
               for vm in everyone}
    for label, t in parse_ticks(snapshot_text).items():
        history[orig.name][label] |= set(t.values())

    # Each mode is what its label says (its own @S line, and `snapsafe status` under its
    # environment: the @M line).
    want = {"ck-counter": ("counter-file", ["watching: counter-file"]),
            "ck-counter-evp": ("counter-file", ["watching: counter-file", "OpenSSL EVP"]),
            "ck-auto": ("sysgenid-mmap", ["watching: sysgenid", "watching: counter-file"]),
            "ck-kernel": ("kernel", [])}
    for label, (source, phrases) in want.items():
        missing = [p for p in phrases if p not in modes.get(label, "")]
        if sources.get(label) != source or missing:
            problems.append(f"{label}: source {sources.get(label)}, want {source}; status "
                            f"{modes.get(label)!r} lacks {missing}")

    # The bumps themselves.
    for vm in bumped:
        m = re.search(r"^@K bump rc=(\d+) (.*)$", texts[vm.name], re.M)
        if not m or m.group(1) != "0" or "CRNG reseeded: yes" not in m.group(2):
            problems.append(f"{vm.name}: the bump: {m.group(0) if m else 'no @K bump line'}")

    setup_ok = not problems

    # getrandom: every copy's first draws after the restore come from one CRNG (they share
    # at least SHARED of SAMPLES values with every other copy's); after the bump, each bumped
    # clone's share nothing with anything any copy drew.
    def shared(a, b):
        return len(a & b)
    before = {vm.name: samples[vm.name].get("before", set()) for vm in everyone}
    after = {vm.name: samples[vm.name].get("after", set()) for vm in everyone}
    overlap_before = [shared(before[a.name], before[b.name])
                      for i, a in enumerate(everyone) for b in everyone[i + 1:]]
    repeats_before = all(len(before[vm.name]) == SAMPLES for vm in everyone) and \
        min(overlap_before) >= SHARED
    overlap_unbumped = [shared(after[a.name], after[b.name])
                        for i, a in enumerate(unbumped) for b in unbumped[i + 1:]]
    unbumped_repeat = min(overlap_unbumped) >= SHARED
    if not repeats_before:
        problems.append(f"getrandom before the bump: copies share {overlap_before} of {SAMPLES}"
                        f" values (want >= {SHARED} each)")
    if not unbumped_repeat:
        problems.append(f"getrandom in the unbumped copies, second sample: they share "
                        f"{overlap_unbumped} of {SAMPLES} values (want >= {SHARED})")
    overlap_after = {vm.name: sum(shared(after[vm.name], after[o.name] | before[o.name])
                                  for o in everyone if o is not vm) + shared(after[vm.name],
                                                                             before[vm.name])
                     for vm in bumped}
    distinct_after = all(len(after[vm.name]) == SAMPLES and overlap_after[vm.name] == 0
                         for vm in bumped)
    if not distinct_after:
        problems.append(f"getrandom after the bump: values also drawn elsewhere {overlap_after}")

    # snapsafe: each bumped clone's values after its bump, drawn by no other copy.
    distinct = True
    for vm in bumped:
        for label in LABELS:
            start = last_tick_before(texts[vm.name], "@K bump", label) + 2
            judged = [ticks[vm.name][label].get(t) for t in range(start, start + AFTER_BUMP_TICKS)]
            clash = [(v, o.name) for v in judged for o in everyone
                     if o is not vm and v in history[o.name][label]]
            if None in judged or clash or len(set(judged)) != len(judged):
                distinct = False
                problems.append(f"{vm.name} {label}: ticks {start}..{start + AFTER_BUMP_TICKS - 1}"
                                f" after the bump: {judged}, also drawn elsewhere: {clash[:3]}")

    # Negative control: the unbumped copies repeat each other.
    control = True
    reference, other = unbumped[0], unbumped[1]
    report = []
    for label in LABELS:
        mine, theirs = ticks[reference.name][label], ticks[other.name][label]
        common = sorted(t for t in mine if t in theirs and t <= targets[label])
        same = [t for t in common if mine[t] == theirs[t]]
        report.append(f"{label} {len(same)}/{len(common)}")
        if label in BUFFERED:
            ok = len(common) >= AFTER_BUMP_TICKS and len(same) == len(common)
        elif variant == "norand":
            # Each draw is one getrandom call: a kernel draw that comes between two ticks in
            # one copy only shifts the sequence a step there (see SAMPLES), so as sets: the
            # first ticks after the restore (well inside the kernel's reseed interval even
            # on a slow host) found among the other copy's values.
            first = common[:AFTER_BUMP_TICKS]
            found = {mine[t] for t in first} & set(theirs.values())
            ok = len(first) == AFTER_BUMP_TICKS and len(found) * 2 > len(first)
            report[-1] += f" (first {len(first)}: {len(found)} found in the other)"
        else:
            ok = True  # kernel-backed XOR RDRAND: differs without a bump, by design
        if not ok:
            control = False
            problems.append(f"negative control: {reference.name} and {other.name} {label}: "
                            f"{len(same)} of {len(common)} common ticks repeat")
    # The restore-to-bump window, reported: bumped clones' ticks before the bump that repeat.
    window = []
    for vm in bumped:
        n = sum(1 for label in LABELS for t, v in ticks[vm.name][label].items()
                if t < last_tick_before(texts[vm.name], "@K bump", label) + 2 and
                ticks[orig.name][label].get(t) == v)
        window.append(f"{vm.name} {n}")

    what = {"forced": "a forced CRNG reseed (RNDRESEEDCRNG)",
            "timer": "the kernel's timed CRNG reseed (seen in the vDSO's generation)"}
    lines.append(f"{variant} (-cpu {CPUS[variant]}): snapshot {reseed[1]:.2f} s after boot, "
                 f"just after {what[reseed[0]]}; clones {', '.join(vm.name for vm in clones)} "
                 f"with the original's GUID; {seconds:.0f} s")
    for label in LABELS:
        lines.append(f"{variant}: {label}: {modes.get(label, '?')}")
    ups = {vm.name: re.findall(r"^@U before uptime=([\d.]+)$", texts[vm.name], re.M)
           for vm in everyone}
    lines.append(f"{variant}: guest uptime at the first getrandom sample: "
                 + ", ".join(f"{name} {u[0] if u else '?'}" for name, u in ups.items()))
    lines.append(f"{variant}: bumped {', '.join(f'{vm.name} --set {vm.value}' for vm in bumped)}; "
                 f"getrandom before: pairs of the {len(everyone)} copies share "
                 f"{min(overlap_before)}-{max(overlap_before)} of {SAMPLES} values; after: "
                 f"bumped clones share {max(overlap_after.values())} with anything, unbumped "
                 f"copies {min(overlap_unbumped)}")
    lines.append(f"{variant}: unbumped {reference.name} and {other.name} repeat each other at "
                 + ", ".join(report) + " ticks (negative control)")
    lines.append(f"{variant}: ticks before the bump that repeat the original's (the "
                 f"restore-to-bump window): {', '.join(window)}")
    # What remains: a process watching SysGenID only is not reached by the bump.
    stale = []
    for vm in bumped:
        mine, theirs = ticks[vm.name][VM_ONLY], ticks[reference.name][VM_ONLY]
        start = last_tick_before(texts[vm.name], "@K bump", VM_ONLY) + 2
        after_bump = [t for t in mine if t >= start and t in theirs]
        stale.append(f"{vm.name} {sum(mine[t] == theirs[t] for t in after_bump)}/{len(after_bump)}")
    lines.append(f"{variant}: {VM_ONLY} (SysGenID only: no bump reaches it) repeats "
                 f"{reference.name} after the bump at {', '.join(stale)} ticks (what remains)")
    return {
        # The modes and the bumps must be what the scenario says, or nothing is shown.
        "distinct": distinct and control and setup_ok,
        "repeats_before": repeats_before and unbumped_repeat,
        "distinct_after": distinct_after,
        "problems": problems,
        "lines": lines,
        "clones": len(clones),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--vmlinux", required=True)
    parser.add_argument("--initrd", required=True)
    parser.add_argument("--variants", default="rdrand,norand")
    parser.add_argument("--tick", type=int, default=200, help="workload tick, ms")
    parser.add_argument("--memory", default="256M")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = {}
    start = time.monotonic()
    for variant in args.variants.split(","):
        vms = []
        try:
            results[variant] = run_variant(args, variant, vms)
        except Exception as error:  # pylint: disable=broad-except  (a bug must fail too)
            log(f"{PREFIX}: FAIL {variant}: {error}")
            for vm in vms:
                for path in (vm.out, vm.console):
                    try:
                        with open(path, "rb") as f:
                            tail = f.read()[-1500:].decode("utf-8", "replace").replace("\r", "")
                        log(f"---- {os.path.basename(path)} (last lines)\n{tail}")
                    except OSError:
                        pass
            results[variant] = None
        finally:
            for vm in vms:
                vm.kill()
    for variant, result in results.items():
        if result:
            for line in result["lines"]:
                log(f"{PREFIX}: {line}")
            for problem in result["problems"]:
                log(f"{PREFIX}: problem: {variant}: {problem}")
    log(f"{PREFIX}: {time.monotonic() - start:.0f} s for {len(results)} variants")

    def field(predicate, variants=tuple(results)):
        return "yes" if all(results.get(v) and predicate(results[v]) for v in variants) else "no"

    fields = {
        "snapsafe_distinct": field(lambda r: r["distinct"], ("rdrand",)),
        "norand_distinct": field(lambda r: r["distinct"], ("norand",)),
        "getrandom_repeats_before": field(lambda r: r["repeats_before"]),
        "getrandom_distinct_after": field(lambda r: r["distinct_after"]),
    }
    clones = min((r["clones"] for r in results.values() if r), default=0)
    log(f"{PREFIX}: clones={clones} " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if clones >= 2 and all(v == "yes" for v in fields.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
