#!/usr/bin/env bash
# bench/c_api_dlopen_bench must not rot between the runs of bench/run: it finds libsnapsafe.so
# in its runfiles, dlopen()s it and reports both benchmarks summarize.py reads. Nothing here
# judges a time. Runs from the runfiles root.
set -euo pipefail
out=${TEST_TMPDIR:-$(mktemp -d)}/dlopen.json
bench/c_api_dlopen_bench --benchmark_format=json --benchmark_min_time=0.001 >"$out"
python3 - "$out" <<'CHECK'
import json, sys
names = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
for name in ("BM_CApiDlopenU64", "BM_InlineU64"):
    b = names.get(name)
    if b is None or b.get("error_occurred") or not b.get("real_time", 0) > 0:
        sys.exit(f"c_api_dlopen_bench: {name}: {b!r}")
print("c_api_dlopen_bench: ok")
CHECK
