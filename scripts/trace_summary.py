#!/usr/bin/env python3
"""Sums the GPU kernel time of a Chrome trace (bench_model --trace, or torch.profiler's
export_chrome_trace) by kernel and by kind, so a training step's time can be split into
matrix products, our fused kernels, elementwise work and the rest.

    python3 scripts/trace_summary.py trace.json.dense [--top 30] [--json out.json]
"""
import argparse
import json
import re
from collections import defaultdict

KINDS = [  # first match wins
    ("scan (ours)", r"selective_scan"),
    ("conv (ours)", r"causal_conv"),
    ("matmul", r"gemm|xmma|cutlass|sm90_|ampere_|Kernel2|cublas|nvjet"),
    ("reduction", r"reduce_kernel|Reduce|softmax|logsumexp|norm"),
    ("copy / cast", r"copy|cast|Memcpy|memcpy|fill|Memset"),
    ("elementwise", r"elementwise|vectorized|unrolled|Elementwise|CatArray|index|scatter|gather"),
]


def kind_of(name: str) -> str:
    for k, pat in KINDS:
        if re.search(pat, name):
            return k
    return "other"


def short(name: str) -> str:
    name = re.sub(r"<.*>", "<…>", name)
    return name[:110]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with open(a.trace) as f:
        events = json.load(f)
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    by_name, by_kind, count = defaultdict(float), defaultdict(float), defaultdict(int)
    t_min, t_max = float("inf"), 0.0
    for e in events:
        if e.get("ph") != "X" or e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        d = float(e.get("dur", 0.0))
        n = e.get("name", "?")
        by_name[short(n)] += d
        by_kind[kind_of(n)] += d
        count[short(n)] += 1
        t_min = min(t_min, float(e["ts"]))
        t_max = max(t_max, float(e["ts"]) + d)
    total = sum(by_kind.values())
    span = t_max - t_min if t_max > t_min else 0.0
    print(f"GPU busy {total / 1e3:.2f} ms of a {span / 1e3:.2f} ms span ({100 * total / max(span, 1e-9):.0f}%)")
    for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<14} {v / 1e3:9.2f} ms  {100 * v / max(total, 1e-9):5.1f}%")
    print(f"top {a.top} kernels:")
    for n, v in sorted(by_name.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"  {v / 1e3:8.2f} ms {count[n]:6d}×  {n}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"busy_us": total, "span_us": span, "by_kind_us": by_kind, "by_name_us": by_name}, f, indent=1)


if __name__ == "__main__":
    main()
