#!/usr/bin/env python3
"""Markdown tables of scripts/csp_study.sh's results.jsonl: per block granularity g, the WikiText-2
validation loss of the block-pruned model — plain order, CSP first, CSP calibrated with the gates held
open — before and after recovery; then how many channels of the per-channel (g = 1) plan each block
plan keeps (CSP models' channels mapped back through their permutation.json).
Usage: scripts/csp_study_table.py [runs/csp-study/results.jsonl]
       scripts/csp_study_table.py --seeds A/results.jsonl B/results.jsonl ...  (loss before recovery,
       CSP − plain per g, one column per run: several SDM seeds)"""
import json
import os
import sys

if len(sys.argv) > 2 and sys.argv[1] == "--seeds":
    runs = [{(r["granularity"], r["order"]): r for r in map(json.loads, open(f)) if "granularity" in r}
            for f in sys.argv[2:]]
    print("| g | order | " + " | ".join(f"Δ loss before recovery vs plain, run {i}" for i in range(len(runs))) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in runs) + " |")
    for g in sorted({k[0] for k in runs[0]} - {1}):
        for o in ("csp", "csp-open"):
            cells = []
            for run in runs:
                if (g, o) in run and (g, "plain") in run:
                    cells.append(f"{run[(g, o)]['loss_before'] - run[(g, 'plain')]['loss_before']:+.4f}")
                else:
                    cells.append("–")
            print(f"| {g} | {o} | " + " | ".join(cells) + " |")
    sys.exit(0)
path = sys.argv[1] if len(sys.argv) > 1 else "runs/csp-study/results.jsonl"
out = os.path.dirname(path)
rows = [json.loads(line) for line in open(path)]
base = next(r for r in rows if "granularity" not in r)
print(f"Gated model (masked, unpruned): {base['loss_before']:.4f} nats/token\n")
by = {(r["granularity"], r["order"]): r for r in rows if "granularity" in r}
orders = [o for o in ("plain", "csp", "csp-open") if any(k[1] == o for k in by)]
fmt = lambda v: "–" if v is None else f"{v:.4f}"
print("| g | order | sparsity | kept widths | loss before recovery | Δ vs plain | after recovery | Δ vs plain |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for g in sorted({k[0] for k in by}):
    p = by.get((g, "plain"))
    for o in orders:
        r = by.get((g, o))
        if not r:
            continue
        d_before = r["loss_before"] - p["loss_before"] if p else None
        d_after = r["loss_after"] - p["loss_after"] if p and r["loss_after"] is not None else None
        sign = lambda v: "–" if v is None else f"{v:+.4f}"
        print(f"| {g} | {o} | {r['sparsity']:.3f} | {r['kept_width']} | {fmt(r['loss_before'])} | {sign(d_before)} "
              f"| {fmt(r['loss_after'])} | {sign(d_after)} |")

try:
    ref = json.load(open(os.path.join(out, "g1-plain", "importance.json")))
except OSError:
    sys.exit(0)
ref_kept = [set(l["kept"]) for l in ref["layers"]]
perm = {}
for o, folder in (("csp", "sdm-csp"), ("csp-open", "sdm-csp-open")):
    try:
        perm[o] = [l["order"] for l in json.load(open(os.path.join(out, folder, "permutation.json")))["layers"]]
    except OSError:
        pass
print("\n| g | " + " | ".join(f"share of the g = 1 plan's channels kept: {o}" for o in orders) + " |")
print("| --- | " + " | ".join("---" for _ in orders) + " |")
for g in sorted({k[0] for k in by}):
    if g == 1:
        continue
    shares = []
    for o in orders:
        try:
            imp = json.load(open(os.path.join(out, f"g{g}-{o}", "importance.json")))
        except OSError:
            shares.append("–")
            continue
        hit = total = 0
        for l, layer in enumerate(imp["layers"]):
            kept = set(layer["kept"]) if o == "plain" else {perm[o][l][c] for c in layer["kept"]}
            hit += len(kept & ref_kept[l])
            total += len(ref_kept[l])
        shares.append(f"{hit / total:.3f}")
    print(f"| {g} | " + " | ".join(shares) + " |")
