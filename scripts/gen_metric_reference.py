#!/usr/bin/env python3
"""Reference values for tests/eval (issue: metrics checked against scikit-learn / scipy on random
predictions, computed once and committed as data). Run where scikit-learn and scipy are installed:
    python3 scripts/gen_metric_reference.py > tests/eval/data/metric_reference.json
The cases are drawn from Python's own seeded generator, so they are reproducible without numpy."""
import json
import random
import sys

import scipy.stats
import sklearn
import sklearn.metrics

rng = random.Random(20261202)
cases = []
for i in range(12):
    n = rng.choice([5, 17, 64, 250])
    classes = rng.choice([2, 2, 3, 5])
    labels = [rng.randrange(classes) for _ in range(n)]
    # Predictions correlated with the labels (some right, some random) so every metric is informative.
    predictions = [l if rng.random() < 0.6 else rng.randrange(classes) for l in labels]
    case = {"labels": labels, "predictions": predictions, "classes": classes,
            "accuracy": sklearn.metrics.accuracy_score(labels, predictions),
            "matthews_correlation": float(sklearn.metrics.matthews_corrcoef(labels, predictions))}
    if classes == 2:
        case["f1"] = float(sklearn.metrics.f1_score(labels, predictions, pos_label=1, zero_division=0))
    cases.append(case)
regression = []
for i in range(8):
    n = rng.choice([5, 30, 200])
    x = [round(rng.uniform(0, 5), rng.choice([0, 1, 3])) for _ in range(n)]  # rounding makes ties
    y = [round(v + rng.gauss(0, 1.5), rng.choice([0, 2])) for v in x]
    regression.append({"x": x, "y": y, "pearson": float(scipy.stats.pearsonr(x, y)[0]),
                       "spearman": float(scipy.stats.spearmanr(x, y)[0])})
json.dump({"generator": "scripts/gen_metric_reference.py", "scikit_learn": sklearn.__version__,
           "scipy": scipy.__version__, "classification": cases, "regression": regression}, sys.stdout)
sys.stdout.write("\n")
