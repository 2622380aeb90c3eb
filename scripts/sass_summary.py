#!/usr/bin/env python3
"""Summarises one kernel's SASS-level Nsight Compute counters: executed warp instructions by
opcode, stall reasons, and the hottest runs of instructions that share an execution count (in
practice basic blocks and unrolled loop bodies; count / warps says how often each runs per warp).

    ncu --kernel-name-base mangled -k regex:SeqBwdPlan -c 1 --section SourceCounters \\
        --import-source yes -o prof build-gpu/bench/bench_ops --no-composite --reps 2
    ncu -i prof.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 scripts/sass_summary.py sass.csv [--top 20] [--show FIRST LAST]
"""
import argparse
import collections
import csv
import re


def load(path):
    rows = list(csv.reader(open(path)))
    header = rows[1]  # row 0 names the kernel
    col = {h: i for i, h in enumerate(header)}
    data = [r for r in rows[2:] if len(r) >= len(header)]
    return header, col, data


def opcode(sass: str) -> str:
    sass = re.sub(r"^@!?U?P\w+\s+", "", sass.strip())  # drop the predicate
    return sass.split()[0] if sass else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--show", type=int, nargs=2, metavar=("FIRST", "LAST"), help="print these instructions")
    a = ap.parse_args()
    header, col, data = load(a.csv)
    count = lambda r: int(r[col["Instructions Executed"]] or 0)
    samples = lambda r: int(r[col["Warp Stall Sampling (All Samples)"]] or 0)
    if a.show:
        for k in range(a.show[0], a.show[1] + 1):
            r = data[k]
            print(f"{k:6d} {count(r):10d} {samples(r):6d}  {r[col['Source']].strip()}")
        return
    total = sum(count(r) for r in data)
    all_samples = sum(samples(r) for r in data) or 1
    by_op = collections.Counter()
    for r in data:
        by_op[opcode(r[col["Source"]]).split(".")[0]] += count(r)
    print(f"{total / 1e6:.1f} M warp instructions")
    for op, n in by_op.most_common(a.top):
        print(f"  {op:10s} {n / 1e6:8.1f} M  {100 * n / total:5.1f} %")
    stalls = collections.Counter()
    for h in header:
        if h.startswith("stall_") and "Not Issued" not in h:
            stalls[h] = sum(int(r[col[h]] or 0) for r in data)
    print("stall samples:")
    for h, n in stalls.most_common(8):
        print(f"  {h:25s} {100 * n / all_samples:5.1f} %")
    runs = []  # [first, last, count, total]
    for k, r in enumerate(data):
        c = count(r)
        if runs and runs[-1][2] == c and runs[-1][1] == k - 1:
            runs[-1][1] = k
            runs[-1][3] += c
        else:
            runs.append([k, k, c, c])
    print("hottest runs of equal counts (first, last, instructions, count each, share):")
    for first, last, c, t in sorted(runs, key=lambda x: -x[3])[: a.top]:
        print(f"  [{first:5d}, {last:5d}] {last - first + 1:4d} × {c:9d}  {100 * t / total:5.1f} %")


if __name__ == "__main__":
    main()
