#!/usr/bin/env python3
"""A minimal QMP client for tests/vm/run (standard library only).

    qmp.py SOCKET COMMAND [JSON-ARGUMENTS]   run one command, print its "return" as JSON
    qmp.py SOCKET wait-status STATUS...      wait until query-status is one of STATUS
    qmp.py SOCKET save URI                   stop, migrate to URI, wait until completed

Every call is bounded by QMP_TIMEOUT seconds (default 60); exit status 1 on an error
reply or a timeout, with the reason on stderr.
"""
import json
import os
import socket
import sys
import time

TIMEOUT = float(os.environ.get("QMP_TIMEOUT", "60"))
DEADLINE = time.monotonic() + TIMEOUT


class Qmp:
    def __init__(self, path):
        while True:  # QEMU creates the socket shortly after it starts
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(max(0.1, DEADLINE - time.monotonic()))
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > DEADLINE:
                    raise TimeoutError("no QMP socket at " + path)
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            message = json.loads(line)
            if "event" not in message:
                return message

    def command(self, name, arguments=None):
        request = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")


def poll(qmp, what, done, interval=0.05):
    while True:
        value = what()
        if done(value):
            return value
        if time.monotonic() > DEADLINE:
            raise TimeoutError(f"still {value!r} after {TIMEOUT:.0f} s")
        time.sleep(interval)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    qmp = Qmp(argv[1])
    verb = argv[2]
    if verb == "wait-status":
        poll(qmp, lambda: qmp.command("query-status")["status"], lambda s: s in argv[3:])
    elif verb == "save":
        qmp.command("stop")
        qmp.command("migrate", {"uri": argv[3]})
        status = poll(qmp, lambda: qmp.command("query-migrate").get("status"),
                      lambda s: s in ("completed", "failed", "cancelled"))
        if status != "completed":
            raise RuntimeError("migration " + status)
    else:
        result = qmp.command(verb, json.loads(argv[3]) if len(argv) > 3 else None)
        print(json.dumps(result))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as error:  # pylint: disable=broad-except
        print(f"qmp.py {' '.join(sys.argv[2:3])}: {error}", file=sys.stderr)
        sys.exit(1)
