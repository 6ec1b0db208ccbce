#!/usr/bin/env bash
# bench/c_api_dlopen_bench must not rot between the runs of bench/run: it finds libsnapsafe.so
# in its runfiles, dlopen()s it and reports both benchmarks summarize.py reads, and their
# pair (--paired_out). Nothing here judges a time. Runs from the runfiles root.
set -euo pipefail
dir=${TEST_TMPDIR:-$(mktemp -d)}
bench/c_api_dlopen_bench --benchmark_format=json --benchmark_min_time=0.001 \
  --paired_out="$dir/paired.json" >"$dir/dlopen.json"
python3 - "$dir/dlopen.json" "$dir/paired.json" <<'CHECK'
import json, sys
names = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
for name in ("BM_CApiDlopenU64", "BM_InlineU64"):
    b = names.get(name)
    if b is None or b.get("error_occurred") or not b.get("real_time", 0) > 0:
        sys.exit(f"c_api_dlopen_bench: {name}: {b!r}")
pair = json.load(open(sys.argv[2])).get("capi_dlopen_u64_vs_inline", {})
if not pair.get("pairs") or not pair.get("ratio_p50", 0) > 0:
    sys.exit(f"c_api_dlopen_bench: the pair capi_dlopen_u64_vs_inline: {pair!r}")
print("c_api_dlopen_bench: ok")
CHECK
