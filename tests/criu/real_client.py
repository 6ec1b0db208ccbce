#!/usr/bin/python3
"""tests/criu/real_client.py: a real python3 process (Debian's, linking the system OpenSSL
3) for tests/criu/run's real-clients part. It knows nothing of snapsafe: ssl.RAND_bytes is
OpenSSL's RAND_bytes, which the shipped provider/openssl-snapsafe.cnf (OPENSSL_CONF)
routes to the snapsafe provider.

  real_client.py DIR [VALUES]

The handshake of tests/criu/clone_probe.cc: warm-up draws, DIR/ready ("pid N"), then
polls DIR/go every 2 ms; the first line of DIR/go is the output path, written via
PATH.tmp and rename. Output lines:
  ssl ...                   VALUES tokens of ssl.RAND_bytes(16), hex
  provider loaded|absent    whether snapsafe.so is mapped into the process
  end
"""
import os
import ssl
import sys
import time

K_POLL_SECONDS = 0.002
K_MAX_POLLS = 30000  # ~60 s of polls (counted: a restored copy's clock moved on)


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def draws(values):
    return "ssl " + " ".join(ssl.RAND_bytes(16).hex() for _ in range(values)) + "\n"


def provider_line():
    with open("/proc/self/maps") as maps:
        loaded = "/snapsafe.so" in maps.read()
    return "provider " + ("loaded" if loaded else "absent") + "\n"


def main():
    directory = sys.argv[1]
    values = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    try:
        draws(values)  # warm-up
        write_atomically(directory + "/ready", "pid %d\n" % os.getpid())
    except Exception as e:  # noqa: BLE001 - reported to the driver
        write_atomically(directory + "/ready", "error warm-up: %s\n" % e)
        return 1
    # The checkpoint is taken somewhere in this wait.
    out_path = ""
    polls = 0
    while not out_path:
        if polls >= K_MAX_POLLS:
            return 3
        polls += 1
        try:
            with open(directory + "/go") as go:
                out_path = go.readline().rstrip("\n")
        except OSError:
            time.sleep(K_POLL_SECONDS)
    try:
        text = draws(values) + provider_line()
    except Exception as e:  # noqa: BLE001 - reported to the driver
        text = "error draw: %s\n" % e
    write_atomically(out_path, text + "end\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
