#!/usr/bin/env python3
"""GPU time by kernel from Chrome traces written by `mamba-codesign profile --trace` (Kineto).

Usage: scripts/trace_kernels.py TRACE.json [TRACE.json ...]
For each trace: the device's busy time (the union of kernel intervals), the sum of kernel times,
and the kernels grouped by a short name (template arguments and parameters dropped), largest
first, with calls, total and mean microseconds and share of the kernel sum; then the device copies
and memsets (not kernels, so outside those sums). A prefill's breakdown (issue 14: where 1 x 4096
spends what the scan does not) is read from this.
"""
import json
import re
import sys


def short_name(name):
    name = name.replace("(anonymous namespace)", "")
    if name.endswith(")"):  # the parameter list: back to its matching parenthesis
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    while True:  # innermost template arguments first, until none are left
        stripped = re.sub(r"<[^<>]*>", "", name)
        if stripped == name:
            break
        name = stripped
    name = re.sub(r"^void ", "", name)
    return name.split("::")[-1] or name


def summarize(path):
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    kernels = [e for e in events if e.get("cat") == "kernel" and "dur" in e]
    if not kernels:
        print(f"{path}: no kernel events (a legacy, host-only trace?)")
        return
    spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in kernels)
    busy, end = 0.0, None
    for a, b in spans:
        if end is None or a > end:
            busy += b - a
            end = b
        elif b > end:
            busy += b - end
            end = b
    first, last = spans[0][0], max(b for _, b in spans)
    groups = {}
    for e in kernels:
        g = groups.setdefault(short_name(e["name"]), [0, 0.0])
        g[0] += 1
        g[1] += float(e["dur"])
    total = sum(g[1] for g in groups.values())
    print(f"{path}: {len(kernels)} kernels, first start to last end {last - first:.1f} us, "
          f"device busy {busy:.1f} us, kernel sum {total:.1f} us")
    print(f"{'kernel':<60} {'calls':>6} {'total us':>10} {'mean us':>9} {'share':>6}")
    for name, (calls, t) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print(f"{name[:60]:<60} {calls:>6} {t:>10.1f} {t / calls:>9.2f} {100 * t / total:>5.1f}%")
    for cat in ("gpu_memcpy", "gpu_memset"):
        spans = [float(e["dur"]) for e in events if e.get("cat") == cat and "dur" in e]
        if spans:
            print(f"{'(' + cat + ', not in the sums above)':<60} {len(spans):>6} {sum(spans):>10.1f} "
                  f"{sum(spans) / len(spans):>9.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarize(p)
