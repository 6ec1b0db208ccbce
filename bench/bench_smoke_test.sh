#!/usr/bin/env bash
# bench/ must not rot between the runs of bench/run: the benchmark binary runs every
# benchmark once and briefly, and its latency part with small counts; bench/summarize.py
# must turn that into a latest.json with every headline key and every target measured
# (a number, with its bound where it has one). Nothing here judges a time: targets belong
# to bench/run on an idle machine, never to a test. Runs from the runfiles root.
set -euo pipefail
out=${TEST_TMPDIR:-$(mktemp -d)}
bench/snapsafe_bench --benchmark_format=json --benchmark_repetitions=1 \
  --benchmark_min_time=0.001 --latency_out="$out/latency.json" --latency_bumps=50 \
  --latency_threads=5 >"$out/raw.json"
python3 bench/summarize.py --benchmarks "$out/raw.json" --latency "$out/latency.json" \
  --out "$out/latest.json" >"$out/summary.txt"
python3 - "$out/latest.json" <<'CHECK'
import json, math, sys
result = json.load(open(sys.argv[1]))
problems = []
for key in ("u64_ns", "absl_u64_ns", "fill4096_gbps", "keystream_gbps", "reseed_p50_us",
            "first_draw_ns", "getrandom32_syscall_ns"):
    if not isinstance(result.get(key), (int, float)):
        problems.append(f"headline {key}: {result.get(key)!r}")
targets = result.get("targets", [])
if len(targets) != 14:
    problems.append(f"{len(targets)} targets, expected 14")
# A target may be skipped only when its inputs can be absent from this run: the C API
# benchmark is another binary, and the rest need a CPU feature or the vDSO.
may_skip = {"capi_dlopen_u64_vs_inline", "kernel_fill16_vs_floor16",
            "reseed_p50_vs_seed_inputs", "fill4096_vs_inpage_keystream", "u64_vs_absl",
            "fill4096_vs_keystream"}
for t in targets:
    if t.get("status") == "SKIP":
        if t["name"] not in may_skip or not t.get("skip_reason"):
            problems.append(f"target {t['name']}: skipped ({t.get('skip_reason')!r})")
    elif not isinstance(t.get("measured"), (int, float)) or math.isnan(t["measured"]):
        problems.append(f"target {t.get('name')}: measured {t.get('measured')!r}")
    elif t.get("status") not in ("PASS", "FAIL"):
        problems.append(f"target {t.get('name')}: status {t.get('status')!r}")
bounded = [t["name"] for t in targets if "bound" in t]
expect_bounded = ["reseed_p50_vs_getrandom32", "reseed_p99_vs_getrandom32"]
if result["dispatch"]["limits_for"] is not None:  # with AES-NI the fill target is judged
    expect_bounded.append("fill4096_vs_keystream")
if any(t["name"] == "fill4096_vs_inpage_keystream" and t.get("status") != "SKIP"
       for t in targets):  # judged when the keystream is in the page
    expect_bounded.append("fill4096_vs_inpage_keystream")
if sorted(bounded) != sorted(expect_bounded):
    problems.append(f"targets with a bound: {bounded}")
for t in targets:
    if "bound" in t and not isinstance(t["bound"], (int, float)):
        problems.append(f"target {t['name']}: bound {t['bound']!r}")
for feature in ("aes", "vaes", "avx512f", "rdrand"):
    if not isinstance(result["dispatch"]["cpu"].get(feature), bool):
        problems.append(f"dispatch.cpu.{feature}: {result['dispatch']['cpu'].get(feature)!r}")
if not result["dispatch"].get("keystream"):
    problems.append("dispatch.keystream missing")
if "missing" in result:
    problems.append(f"missing benchmarks: {result['missing']}")
for p in problems:
    print("bench_smoke_test:", p)
print(f"bench_smoke_test: {len(targets)} targets, {len(problems)} problems")
sys.exit(1 if problems else 0)
CHECK
