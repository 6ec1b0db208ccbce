#!/usr/bin/env python3
"""Renders docs/performance.svg from bench/results/latest.json (stdlib only, no matplotlib).

Two horizontal bar panels on a log scale: nanoseconds per u64 and per 16-byte fill, for
snapsafe with each generation source and for the alternatives, from the same run.

Usage: plot.py [LATEST_JSON] [OUT_SVG]   (defaults: bench/results/latest.json,
                                          docs/performance.svg)
"""

import json
import math
import sys
from xml.sax.saxutils import escape

# (implementation suffix of the benchmark name, label, group)
ROWS = [
    ("snapsafe_sysgenid_mmap", "snapsafe, SysGenID mmap", "snapsafe"),
    ("snapsafe_counter_file", "snapsafe, counter file", "snapsafe"),
    ("snapsafe_nocheck", "snapsafe, no check (baseline)", "baseline"),
    ("snapsafe_sysgenid_syscall", "snapsafe, SysGenID syscall", "snapsafe"),
    ("snapsafe_kernel", "snapsafe, kernel-backed", "snapsafe"),
    ("vdso_getrandom", "vDSO getrandom", "kernel"),
    ("getrandom", "getrandom(2)", "kernel"),
    ("arc4random", "glibc arc4random_buf", "kernel"),
    ("random_device", "std::random_device", "kernel"),
    ("openssl_rand", "OpenSSL RAND_bytes", "userspace"),
    ("absl_bitgen", "absl::BitGen", "userspace"),
    ("mt19937_64", "std::mt19937_64 (not crypto)", "baseline"),
]
COLORS = {
    "snapsafe": "#1f77b4",
    "kernel": "#ff7f0e",
    "userspace": "#2ca02c",
    "baseline": "#9a9a9a",
}
LEGEND = [
    ("snapsafe", "snapsafe"),
    ("kernel", "kernel-backed"),
    ("userspace", "userspace CSPRNG"),
    ("baseline", "baseline / not snapshot-safe"),
]

LABEL_W, BAR_W, VALUE_W = 250, 520, 90
ROW_H, TOP, PANEL_GAP = 22, 70, 60


def panel(svg, y0, title, op, medians):
    values = []
    for suffix, label, group in ROWS:
        entry = medians.get(f"{op}/{suffix}/real_time")
        if entry and "real_time_ns" in entry:
            values.append((label, group, entry["real_time_ns"]))
    if not values:
        return y0
    lo = 10 ** math.floor(math.log10(min(v for _, _, v in values)))
    hi = 10 ** math.ceil(math.log10(max(v for _, _, v in values)))
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def x(v):
        return LABEL_W + BAR_W * (math.log10(max(v, lo)) - math.log10(lo)) / span

    svg.append(f'<text x="{LABEL_W}" y="{y0}" font-size="14" font-weight="bold">'
               f'{escape(title)}</text>')
    y = y0 + 14
    height = len(values) * ROW_H
    decade = lo
    while decade <= hi * 1.0001:  # grid lines at each decade
        gx = x(decade)
        svg.append(f'<line x1="{gx:.1f}" y1="{y}" x2="{gx:.1f}" y2="{y + height}" '
                   f'stroke="#dddddd"/>')
        text = f"{decade:g} ns" if decade < 1000 else f"{decade / 1000:g} us"
        svg.append(f'<text x="{gx:.1f}" y="{y + height + 14}" font-size="11" '
                   f'text-anchor="middle" fill="#555">{text}</text>')
        decade *= 10
    for i, (label, group, v) in enumerate(values):
        ry = y + i * ROW_H
        svg.append(f'<text x="{LABEL_W - 8}" y="{ry + 15}" font-size="12" '
                   f'text-anchor="end">{escape(label)}</text>')
        svg.append(f'<rect x="{LABEL_W}" y="{ry + 3}" width="{max(x(v) - LABEL_W, 1):.1f}" '
                   f'height="{ROW_H - 6}" fill="{COLORS[group]}"/>')
        text = f"{v:.3g} ns" if v < 1000 else f"{v / 1000:.3g} us"
        svg.append(f'<text x="{x(v) + 5:.1f}" y="{ry + 15}" font-size="11">{text}</text>')
    return y + height + 20


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    out = sys.argv[2] if len(sys.argv) > 2 else "docs/performance.svg"
    with open(src) as f:
        data = json.load(f)
    medians = data["medians"]
    machine = data.get("machine", {})
    svg = []
    y = panel(svg, TOP, "Nanoseconds per u64 (median, log scale; shorter is faster)", "u64",
              medians)
    y = panel(svg, y + PANEL_GAP - 20, "Nanoseconds per 16-byte fill (a UUID's bytes)",
              "fill16", medians)
    lx = LABEL_W
    for group, text in LEGEND:
        svg.append(f'<rect x="{lx}" y="{y + 4}" width="12" height="12" '
                   f'fill="{COLORS[group]}"/>')
        svg.append(f'<text x="{lx + 16}" y="{y + 14}" font-size="11">{escape(text)}</text>')
        lx += 30 + 7 * len(text)
    width = LABEL_W + BAR_W + VALUE_W
    height = y + 30
    subtitle = (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
                f"Linux {machine.get('kernel', '?')}; {data.get('run', {}).get('date', '')}")
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="24" font-size="16" font-weight="bold">'
        'snapsafe per-draw cost against the alternatives</text>',
        f'<text x="10" y="44" font-size="11" fill="#555">{escape(subtitle)}</text>',
    ]
    with open(out, "w") as f:
        f.write("\n".join(head + svg + ["</svg>"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
