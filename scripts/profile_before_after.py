#!/usr/bin/env python3
"""The before/after table of `profile` runs named BUILD-PRESET-ROUND.json (BUILD old or new), as
scripts/decode_before_after.sh writes them: per preset and case the P50 of every run (ms; a decode case's
per-token P50) and new/old, the ratio of the mean P50s.

Usage: scripts/profile_before_after.py PROFILES_DIR
"""
import collections
import glob
import json
import os
import sys


def main(directory):
    runs = collections.defaultdict(list)  # (preset, case label, build) -> P50s in file order
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        build, rest = os.path.basename(path)[: -len(".json")].split("-", 1)
        preset = rest.rsplit("-", 1)[0]
        with open(path) as f:
            profile = json.load(f)
        for case in profile["cases"]:
            result = case["results"][0]
            ms = result["per_token_ms_p50"] if case["case"] == "decode" else result["summary_ms"]["p50"]
            runs[(preset, case["label"], build)].append(ms)
    print("| preset | case | old P50 ms | new P50 ms | new/old |")
    print("| --- | --- | --- | --- | --- |")
    for preset, label in sorted({key[:2] for key in runs}):
        old, new = runs.get((preset, label, "old"), []), runs.get((preset, label, "new"), [])
        if not old or not new:
            continue
        fmt = lambda values: " / ".join("%.3f" % v for v in values)
        ratio = (sum(new) / len(new)) / (sum(old) / len(old))
        print("| %s | %s | %s | %s | %.3f |" % (preset, label, fmt(old), fmt(new), ratio))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
