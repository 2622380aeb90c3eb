#!/usr/bin/env python3
"""Prints each case of a multi-model `mamba-codesign profile` JSON: the P50 of every model and each one's
ratio to the first model's P50 (the pruned-against-dense training curves of the GPU call scripts).

    python3 scripts/profile_ratios.py PROFILE.json
"""
import json
import sys

d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    p = [r["summary_ms"]["p50"] for r in c["results"]]
    print(c["label"], " ".join("%.3f" % x for x in p), "| ratios", " ".join("%.4f" % (x / p[0]) for x in p[1:]),
          flush=True)
