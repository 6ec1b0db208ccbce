"""A Python process that uses only the snapsafe binding, for CRIU clones
(tests/bindings/criu_run): python3 criu_probe.py DIR VALUES.

Draws once from snapsafe and from the control (random.random: the module's Mersenne
Twister, seeded once at import, a snapshot-unaware generator), writes DIR/ready ("pid
PID"), then waits for DIR/go, which names the output file, and writes there:
  source NAME GENERATION-UNUSED
  snapsafe HEX...      VALUES token_hex(16) draws
  snapsafe-id UUID...  VALUES uuid4() draws
  control FLOAT...     VALUES random.random() draws (must repeat in every clone)
  end
and exits LINGER seconds later. With SNAPSAFE_PROBE_CACHE=1 (the suite's negative control)
the snapsafe lines are drawn before the checkpoint and served from memory afterwards, as
a binding with an entropy cache would: every clone must then repeat them. The original (checkpointed with --leave-running) and every restored copy do
the same from the same memory.
"""
import os
import random
import sys
import time

import snapsafe

# Seconds to stay alive after writing: CRIU detaches the restored threads one by one
# after resuming them, and fails the restore ("Unable to detach") if the process has
# already exited by then.
LINGER = 0.3


def main():
    directory, values = sys.argv[1], int(sys.argv[2])
    snapsafe.token_bytes(16)  # the library's per-thread state exists before the dump
    random.random()
    cached = None
    if os.environ.get("SNAPSAFE_PROBE_CACHE") == "1":
        cached = ([snapsafe.token_hex(16) for _ in range(values)],
                  [str(snapsafe.uuid4()) for _ in range(values)])
    with open(os.path.join(directory, "ready.tmp"), "w") as f:
        f.write(f"pid {os.getpid()}\n")
    os.rename(os.path.join(directory, "ready.tmp"), os.path.join(directory, "ready"))
    go = os.path.join(directory, "go")
    deadline = time.monotonic() + 600
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.01)
    with open(go) as f:
        out = f.read().strip()
    tokens, ids = cached or ([snapsafe.token_hex(16) for _ in range(values)],
                             [str(snapsafe.uuid4()) for _ in range(values)])
    lines = [
        f"source {snapsafe.source_name()}",
        "snapsafe " + " ".join(tokens),
        "snapsafe-id " + " ".join(ids),
        "control " + " ".join(repr(random.random()) for _ in range(values)),
        "end",
    ]
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(out + ".tmp", out)
    time.sleep(LINGER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
