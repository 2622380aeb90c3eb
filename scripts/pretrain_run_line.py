#!/usr/bin/env python3
"""One JSON line summing up a timed pre-training run (scripts/pretrain_timed_run.sh) for the
comparison scripts (pretrain_before_after.sh, pretrain_memory_plans.sh): the mean tokens/s of the
logged steps after step 20 (the warm-up), the peak memory in GiB, the exit status.

    python3 scripts/pretrain_run_line.py METRICS_JSONL KEY LABEL PRESET ROUND RC
    (KEY: the label's field name, e.g. build or plan)
"""
import json
import sys

path, key, label, preset, rnd, rc = sys.argv[1:]
try:
    rows = [json.loads(l) for l in open(path) if '"loss"' in l]
except OSError:
    rows = []
rows = [r for r in rows if r["step"] > 20]
rate = sum(r["tokens_per_s"] for r in rows) / len(rows) if rows else None
mem = max(r["peak_memory_bytes"] for r in rows) / 2**30 if rows else None
print(json.dumps({key: label, "preset": preset, "round": int(rnd), "rc": int(rc),
                  "tokens_per_s": rate, "peak_gib": mem, "steps_measured": len(rows)}))
