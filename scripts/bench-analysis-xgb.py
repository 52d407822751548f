#!/usr/bin/env python3
"""The fit part of scripts/bench-analysis in PyPI's xgboost (1.7.4): the same rows, folds and trial
parameters as mge's run (read from the CSVs it wrote), folds trained two at a time with nthread=1 as
mge does. Prints the median wall time and the largest |R² difference| from mge's trials."""
import csv, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import xgboost as xgb

data_path, trials_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(data_path) as f:
    rows = list(csv.reader(f))
header, body = rows[0], rows[1:]
fold = np.array([int(r[header.index("fold")]) for r in body])
y = np.array([float(r[header.index("accuracy")]) for r in body], dtype=np.float32)
features = [i for i, h in enumerate(header) if h not in ("accuracy", "fold")]
X = np.array([[float(r[i]) if r[i] != "" else np.nan for i in features] for r in body], dtype=np.float32)
with open(trials_path) as f:
    trials = list(csv.DictReader(f))
folds = sorted(set(fold))

def r2(truth, pred):
    return 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)

def one_fold(params, rounds, k):
    train, test = fold != k, fold == k
    booster = xgb.train(params, xgb.DMatrix(X[train], label=y[train], missing=np.nan), num_boost_round=rounds)
    return k, booster.predict(xgb.DMatrix(X[test], missing=np.nan))

def search():
    worst = 0.0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for trial in trials:
            params = {"tree_method": "hist", "nthread": 1, "seed": 0, "verbosity": 0}
            for name in ("max_depth", "eta", "subsample", "colsample_bytree", "min_child_weight", "lambda", "alpha"):
                params[name] = int(float(trial[name])) if name == "max_depth" else float(trial[name])
            oof = np.zeros(len(y))
            for k, pred in pool.map(lambda k: one_fold(params, int(float(trial["rounds"])), k), folds):
                oof[fold == k] = pred
            worst = max(worst, abs(r2(y, oof) - float(trial["r2"])))
    return worst

times, worst = [], 0.0
for _ in range(runs):
    start = time.perf_counter()
    worst = search()
    times.append(time.perf_counter() - start)
print(f"Python xgboost {xgb.__version__}, same rows, folds and {len(trials)} trials (without mge's final refit): "
      f"median {statistics.median(times):.2f} s over {runs} runs; largest |R² difference| from mge's trials {worst:.2e}")
