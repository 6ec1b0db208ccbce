#!/usr/bin/env python3
"""Turns one run of //bench:snapsafe_bench into bench/results/latest.json (stdlib only).

Inputs: the binary's --benchmark_format=json output (run with repetitions and
--benchmark_report_aggregates_only=true, so each benchmark has a "median" aggregate) and
its --latency_out file. Output: the headline keys (README of the keys below), the target
ratios with pass/fail, the per-benchmark medians and a "machine" object.

Headline keys (all from the same run; snapsafe numbers use the simulated SysGenID page in
mmap mode unless the name says otherwise; times are wall-clock medians):
  u64_ns             snapsafe::random_u64()
  absl_u64_ns        absl::BitGen()()
  fill16_ns          snapsafe::fill(16 bytes)
  vdso16_ns          the vDSO getrandom, 16 bytes
  fill4096_gbps      snapsafe::fill(4096 bytes), 10^9 bytes/s
  keystream_gbps     OpenSSL EVP AES-256-CTR over a 16 KiB buffer in place, 10^9 bytes/s
  check_mmap_ns      draw_with<true>(8) with sysgenid-mmap  - draw_with<false>(8)
  check_syscall_ns   draw_with<true>(8) with sysgenid-syscall - draw_with<false>(8)
  reseed_p50_us, reseed_p99_us   bump of the page -> next u64 draw completed
  first_draw_ns      p50 of a new thread's first 16-byte draw (threads one after another:
                     each takes the state its predecessor pooled and seeded at exit;
                     extra.first_draw_empty_pool_p50_us: the same with the pool emptied)
  threads2_speedup   u64 throughput with 2 threads / with 1 thread (snapsafe)

Paired ratios (latency.paired): the four ratio targets of issue 15 (u64 vs absl, 4096-byte
fill vs keystream, reseed p50 and p99 vs one getrandom(32) call), the kernel-backed 16-byte
draw vs the vDSO (when the machine has both the vDSO getrandom and RDRAND) and the
generation check's cost (a u64 draw with and without it) compare two operations that
Google Benchmark times seconds apart, and this host's speed moves within seconds. The
binary also times each pair in alternating bursts on one thread; those targets use the
median of the per-pair ratios (for the check, of the per-pair differences), and
extra.*_separate keeps the value from the two separate medians for comparison.

Usage: summarize.py --benchmarks FILE --latency FILE --out FILE
                    [--compiler TEXT] [--loadavg-before TEXT] [--loadavg-after TEXT]
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def medians(benchmarks):
    """{run_name: {real_time_ns, cpu_time_ns, bytes_per_second, items_per_second,
    real_time_cv_percent}}."""
    out = {}
    cvs = {}
    for b in benchmarks["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("error_occurred"):
            out[name] = {"error": b.get("error_message", "error")}
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "cv":
            cvs[name] = round(b["real_time"] * 100.0, 2)  # the cv aggregate is a fraction
            continue
        is_median = b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"
        single = b.get("run_type") == "iteration" and name not in out
        if not (is_median or single):
            continue
        scale = TIME_UNIT_NS[b.get("time_unit", "ns")]
        entry = {
            "real_time_ns": round(b["real_time"] * scale, 4),
            "cpu_time_ns": round(b["cpu_time"] * scale, 4),
        }
        for counter in ("bytes_per_second", "items_per_second"):
            if counter in b:
                entry[counter] = round(b[counter], 1)
        if is_median or name not in out:
            out[name] = entry
    for name, cv in cvs.items():
        if name in out and "error" not in out[name]:
            out[name]["real_time_cv_percent"] = cv
    return out


def machine(args):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass

    def package_version(name):
        try:
            return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                                  capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    hypervisor = None
    try:
        with open("/sys/hypervisor/type") as f:
            hypervisor = f.read().strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_features": sorted(f for f in ("aes", "vaes", "avx2", "avx512f", "rdrand",
                                           "rdseed", "sha_ni", "hypervisor") if f in flags),
        "hypervisor": hypervisor,
        "kernel": platform.release(),
        "compiler": args.compiler or "unknown",
        "glibc": " ".join(os.confstr("CS_GNU_LIBC_VERSION").split()[1:]) or None,
        "openssl": package_version("libssl3"),
        "abseil": package_version("libabsl-dev"),
        "google_benchmark": package_version("libbenchmark-dev"),
        "loadavg_before": args.loadavg_before,
        "loadavg_after": args.loadavg_after,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", required=True)
    parser.add_argument("--latency", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--compiler")
    parser.add_argument("--loadavg-before")
    parser.add_argument("--loadavg-after")
    args = parser.parse_args()

    with open(args.benchmarks) as f:
        raw = json.load(f)
    with open(args.latency) as f:
        latency = json.load(f)
    m = medians(raw)

    missing = []

    def run_name(name):  # Google Benchmark puts /real_time before /threads:N
        base, sep, threads = name.rpartition("/threads:")
        return f"{base}/real_time/threads:{threads}" if sep else name + "/real_time"

    def t(name):  # median wall-clock ns of one benchmark
        entry = m.get(run_name(name))
        if entry is None or "real_time_ns" not in entry:
            missing.append(name)
            return float("nan")
        return entry["real_time_ns"]

    def ips(name):
        entry = m.get(run_name(name))
        if entry is None or "items_per_second" not in entry:
            missing.append(name)
            return float("nan")
        return entry["items_per_second"]

    def gbps(name, size):
        return size / t(name)  # bytes per ns = 10^9 bytes per second

    keys = {
        "u64_ns": t("u64/snapsafe_sysgenid_mmap"),
        "absl_u64_ns": t("u64/absl_bitgen"),
        "fill16_ns": t("fill16/snapsafe_sysgenid_mmap"),
        "vdso16_ns": t("fill16/vdso_getrandom"),
        "fill4096_gbps": gbps("fill4096/snapsafe_sysgenid_mmap", 4096),
        "keystream_gbps": gbps("keystream/aes256ctr_16k", 16384),
        "check_mmap_ns": t("u64/snapsafe_draw_sysgenid_mmap") - t("u64/snapsafe_nocheck"),
        "check_syscall_ns": t("u64/snapsafe_draw_sysgenid_syscall") - t("u64/snapsafe_nocheck"),
        "kernel_fill16_ns": t("fill16/snapsafe_kernel"),
        "getrandom32_syscall_ns": t("fill32/getrandom"),
        "reseed_p50_us": latency["reseed"]["p50_us"],
        "reseed_p99_us": latency["reseed"]["p99_us"],
        "first_draw_ns": latency["first_draw_new_thread"]["p50_us"] * 1000,
        "threads2_speedup": ips("u64_threads/snapsafe_sysgenid_mmap/threads:2")
        / ips("u64_threads/snapsafe_sysgenid_mmap/threads:1"),
    }
    extra = {
        "fill32_ns": t("fill32/snapsafe_sysgenid_mmap"),
        "uuid_string_ns": t("uuid_string/snapsafe_sysgenid_mmap"),
        "u64_draw_mmap_ns": t("u64/snapsafe_draw_sysgenid_mmap"),
        "u64_draw_syscall_ns": t("u64/snapsafe_draw_sysgenid_syscall"),
        "u64_nocheck_ns": t("u64/snapsafe_nocheck"),
        "u64_syscall_ns": t("u64/snapsafe_sysgenid_syscall"),
        "u64_counter_file_ns": t("u64/snapsafe_counter_file"),
        "u64_kernel_ns": t("u64/snapsafe_kernel"),
        "vdso_u64_ns": t("u64/vdso_getrandom"),
        "getrandom16_ns": t("fill16/getrandom"),
        "openssl16_ns": t("fill16/openssl_rand"),
        "keystream_aes128ctr_gbps": gbps("keystream/aes128ctr_16k", 16384),
        "keystream_chacha20_gbps": gbps("keystream/chacha20_16k", 16384),
        "reseed_max_us": latency["reseed"]["max_us"],
        "first_draw_new_thread_p50_us": latency["first_draw_new_thread"]["p50_us"],
        "first_draw_empty_pool_p50_us": latency.get("first_draw_new_thread_empty_pool", {}).get("p50_us"),
        "first_draw_kernel_p50_us": latency.get("first_draw_new_thread_kernel", {}).get("p50_us"),
        "first_draw_kernel_empty_pool_p50_us":
            latency.get("first_draw_new_thread_kernel_empty_pool", {}).get("p50_us"),
        "generate_random_1024_ns": t("generate_random/bulk_1024"),
        "generate_random_loop_1024_ns": t("generate_random/loop_1024"),
        "generate_random_128_ns": t("generate_random/bulk_128"),
        "generate_random_loop_128_ns": t("generate_random/loop_128"),
        "openssl_threads2_speedup": ips("u64_threads/openssl_rand/threads:2")
        / ips("u64_threads/openssl_rand/threads:1"),
        "absl_threads2_speedup": ips("u64_threads/absl_bitgen/threads:2")
        / ips("u64_threads/absl_bitgen/threads:1"),
    }

    paired = latency.get("paired", {})

    def paired_value(name, key, fallback=float("nan"), optional=False):
        # Missing: the fallback, and noted unless the pair is optional (the kernel-backed
        # pairs need the vDSO getrandom and RDRAND, which not every machine has).
        entry = paired.get(name)
        if entry is None:
            if not optional:
                missing.append("latency.paired." + name)
            return fallback
        return entry[key]

    def keystream_share(name, fallback=float("nan")):
        # A 4096-byte op against 16 KiB of keystream, per pair: (4096 B / op time) /
        # (16384 B / keystream time), from the pair's time ratio op / keystream.
        return 0.25 / paired_value(name, "ratio_p50", 0.25 / fallback)

    extra["u64_vs_absl_separate"] = keys["u64_ns"] / keys["absl_u64_ns"]
    extra["fill4096_vs_keystream_separate"] = keys["fill4096_gbps"] / keys["keystream_gbps"]
    extra["check_mmap_ns_separate"] = keys["check_mmap_ns"]
    extra["kernel_fill16_vs_vdso16_separate"] = keys["kernel_fill16_ns"] / keys["vdso16_ns"]
    extra["reseed_p50_vs_getrandom32_separate"] = (
        keys["reseed_p50_us"] * 1000 / keys["getrandom32_syscall_ns"])
    extra["reseed_p99_vs_getrandom32_separate"] = (
        keys["reseed_p99_us"] * 1000 / keys["getrandom32_syscall_ns"])
    # What hole 4 leaves of the keystream for a 4096-byte request: the bulk step alone
    # (in the page: expand, keystream to the output, wipe; evp: re-key, keystream, park),
    # and the keystream in 4 KiB calls.
    extra["bulk_step_4096_vs_keystream"] = gbps("component/bulk_step_4096", 4096) / keys["keystream_gbps"]
    extra["keystream_4k_vs_keystream"] = gbps("keystream/aes256ctr_4k", 4096) / keys["keystream_gbps"]
    extra["derive_seed_ns"] = t("component/derive_seed")
    extra["step_fixed_ns"] = t("component/step_fixed")

    # Bounds: the same ratio for the part of the operation that no implementation can skip
    # while the restore-proof core's holes stay closed, timed in the same loops (a floor
    # for a time ratio, a ceiling for a throughput ratio).
    bounds = {
        "fill4096_vs_keystream": (
            keystream_share("bulk_step4096_vs_keystream16k"),
            "the bulk step alone: key schedule, keystream straight to the output, schedule "
            "wiped (in the page) or parked (evp) (hole 4)"),
        "reseed_p50_vs_getrandom32": (
            paired_value("reseed_vs_getrandom32", "floor_p50_ratio"),
            "derive_seed (system call, not vDSO: hole 1; RDRAND: hole 2; SHA-256) and a "
            "16-byte reseed step with its schedule wipe or park (hole 4)"),
        "reseed_p99_vs_getrandom32": (
            paired_value("reseed_vs_getrandom32", "floor_p99_ratio"), "the same, p99"),
    }
    if "masked_floor16_vs_vdso16" in paired:
        bounds["kernel_fill16_vs_vdso16"] = (
            paired_value("masked_floor16_vs_vdso16", "ratio_p50"),
            "the vDSO call and two raw RDRAND words XORed over it (the mask a replayed vDSO "
            "state needs), no health check, call or wipe")

    def target(name, measured, op, limit, what):
        ok = measured <= limit if op == "<=" else measured >= limit
        result = {"name": name, "what": what, "measured": round(measured, 4), "op": op,
                  "limit": limit, "pass": bool(ok)}
        if name in bounds:
            bound, bound_what = bounds[name]
            result["bound"] = bound
            result["bound_what"] = bound_what
            result["limit_past_bound"] = bool(bound > limit if op == "<=" else bound < limit)
        return result

    targets = [
        target("u64_vs_absl",
               paired_value("u64_vs_absl", "ratio_p50", extra["u64_vs_absl_separate"]),
               "<=", 1.0, "u64 draw time / absl::BitGen u64 time, paired (stretch: 0.8)"),
        target("first_draw_vs_reseed", keys["first_draw_ns"] / (keys["reseed_p50_us"] * 1000),
               "<=", 2.0, "p50 first 16-byte draw on a new thread / p50 reseed"),
        target("fill16_vs_vdso16", keys["fill16_ns"] / keys["vdso16_ns"], "<=", 0.25,
               "16-byte fill time / vDSO getrandom(16) time"),
        target("fill4096_vs_keystream",
               keystream_share("fill4096_vs_keystream16k",
                               extra["fill4096_vs_keystream_separate"]),
               ">=", 0.95,
               "4096-byte fill throughput / raw AES-256-CTR keystream throughput, paired"),
        target("check_mmap_ns",
               paired_value("check_mmap", "diff_p50_ns", keys["check_mmap_ns"]), "<=", 0.5,
               "ns the mmap generation check adds per u64 draw, paired"),
        target("reseed_p50_us", keys["reseed_p50_us"], "<=", 2.0,
               "median us from a generation bump to the next u64 draw's completion"),
        target("reseed_p99_us", keys["reseed_p99_us"], "<=", 10.0,
               "99th percentile of the same"),
        target("kernel_fill16_vs_vdso16",
               paired_value("kernel_fill16_vs_vdso16", "ratio_p50",
                            extra["kernel_fill16_vs_vdso16_separate"], optional=True),
               "<=", 3.0, "kernel-backed 16-byte draw (kernel RNG XOR RDRAND) / vDSO "
               "getrandom(16), paired"),
        target("reseed_p50_vs_getrandom32",
               paired_value("reseed_vs_getrandom32", "p50_ratio",
                            extra["reseed_p50_vs_getrandom32_separate"]),
               "<=", 1.5, "median reseed after a bump / median getrandom(32) system call, "
               "timed alternately"),
        target("reseed_p99_vs_getrandom32",
               paired_value("reseed_vs_getrandom32", "p99_ratio",
                            extra["reseed_p99_vs_getrandom32_separate"]),
               "<=", 3.0, "99th percentile reseed / median getrandom(32) system call, "
               "timed alternately"),
        target("threads2_speedup", keys["threads2_speedup"], ">=", 1.9,
               "u64 throughput, 2 threads / 1 thread"),
    ]

    def clean(v):  # NaN (a missing benchmark) becomes null: strict JSON
        if isinstance(v, float):
            return None if v != v else round(v, 4)
        return v

    def rounded(d):
        return {k: clean(v) for k, v in d.items()}

    for x in targets:
        x["measured"] = clean(x["measured"])
        if "bound" in x:
            x["bound"] = clean(x["bound"])

    result = {"schema": "snapsafe-bench/1"}
    result.update(rounded(keys))
    result["extra"] = rounded(extra)
    result["targets"] = targets
    result["targets_passed"] = sum(1 for x in targets if x["pass"])
    result["targets_total"] = len(targets)
    result["latency"] = latency
    result["machine"] = machine(args)
    context = raw.get("context", {})
    result["run"] = {
        "date": context.get("date") or datetime.datetime.now().isoformat(timespec="seconds"),
        "benchmark_library_build_type": context.get("library_build_type"),
        "num_cpus": context.get("num_cpus"),
        "mhz_per_cpu": context.get("mhz_per_cpu"),
        "statistic": "median of repetitions (bench/run: 9, randomly interleaved), "
                     "wall-clock (UseRealTime); real_time_cv_percent is their spread; "
                     "the targets marked paired: median of per-pair ratios (the check: "
                     "differences) of alternating bursts (latency.paired)",
    }
    result["medians"] = m
    if missing:
        result["missing"] = sorted(set(missing))

    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")
    os.replace(tmp, args.out)

    # A readable summary on stdout.
    for k, v in keys.items():
        print(f"{k:18s} {v:10.4f}")
    for n in (1, 2, 8, 64):
        p = latency.get(f"parallel_reseed_threads_{n}")
        if p:
            print(f"parallel reseed, {n:2d} threads: per-thread p50 {p['per_thread']['p50_us']:.2f} us"
                  f" p99 {p['per_thread']['p99_us']:.2f} us (no bump: "
                  f"{p['control_no_bump']['p50_us']:.2f} us); bump to last done p50 "
                  f"{p['round_bump_to_last_done']['p50_us']:.2f} us")
    if "first_draw_new_thread_empty_pool" in latency:
        print(f"first draw on a new thread: p50 {latency['first_draw_new_thread']['p50_us']:.2f} us"
              f" (a state pooled and seeded by an exited thread), "
              f"{latency['first_draw_new_thread_empty_pool']['p50_us']:.2f} us (pool empty)")
    if "first_draw_new_thread_kernel_empty_pool" in latency:
        print(f"first kernel-backed draw on a new thread: p50 "
              f"{latency['first_draw_new_thread_kernel']['p50_us']:.2f} us (a vDSO state pooled by an "
              f"exited thread), {latency['first_draw_new_thread_kernel_empty_pool']['p50_us']:.2f} us "
              f"(pool empty: a new mapping)")
    if "keystream" in latency:
        print(f"keystream of the draw path: {latency['keystream']} (evp: OpenSSL's EVP context)")
    if "memory_per_thread" in latency:
        print("memory per thread: " + ", ".join(
            f"{k} {v}" for k, v in latency["memory_per_thread"].items()))
    for words in (128, 1024):
        bulk, loop = extra[f"generate_random_{words}_ns"], extra[f"generate_random_loop_{words}_ns"]
        print(f"generate_random {words:4d} words: bulk {bulk:.0f} ns, loop of draws {loop:.0f} ns"
              f" ({loop / bulk:.1f}x)")
    for name, x in paired.items():
        if "ratio_p50" in x:
            print(f"paired {name}: time ratio p50 {x['ratio_p50']:.4f} (p10 "
                  f"{x['ratio_p10']:.4f}, p90 {x['ratio_p90']:.4f}) over {x['pairs']} pairs")
        else:
            print(f"paired {name}: reseed p50 {x['reseed_p50_ns']:.0f} ns, floor "
                  f"{x['floor_p50_ns']:.0f} ns, getrandom(32) {x['getrandom32_p50_ns']:.0f} ns"
                  f" over {x['rounds']} rounds")
    for x in targets:
        measured = "n/a" if x["measured"] is None else f"{x['measured']:.4f}"
        bound = ""
        if x.get("bound") is not None:
            bound = f"  (bound {x['bound']:.4f}" + (
                ": the limit is past what the closed holes allow)" if x["limit_past_bound"]
                else ")")
        print(f"target {x['name']:24s} {measured:>9s} {x['op']} {x['limit']:<5} "
              f"{'PASS' if x['pass'] else 'FAIL'}{bound}")
    if missing:
        print("missing benchmarks: " + ", ".join(sorted(set(missing))), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
