#!/usr/bin/env python3
"""Makes the reference fixtures of the analysis tests (run once; the tests read the CSVs, not Python).

    python3 -m venv /tmp/xgb && /tmp/xgb/bin/pip install xgboost==1.7.4 scipy numpy
    /tmp/xgb/bin/python Tests/KernelsTests/Fixtures/analysis/make_reference.py

xgboost_data.csv      features f0..f4 (float32 values, some missing), target y, fold (0..3)
xgboost_expected.csv  per row: oof (out-of-fold prediction with the fold's model), full (prediction of
                      the model fitted on all rows), shap_f0..shap_f4, shap_bias (pred_contribs of `full`)
rank_data.csv         model, sparsity, pruning, seed, score, accuracy (ties included)
rank_expected.csv     model, sparsity, kendall, spearman: scipy on per-pruner means within each group
pairs_data.csv        set, x, y; pairs_expected.csv: set, kendall, spearman (scipy, ties included)
"""
import csv, os
import numpy as np
import scipy.stats
import xgboost as xgb

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240)
PARAMS = {"max_depth": 4, "eta": 0.1, "subsample": 0.8, "colsample_bytree": 0.9, "lambda": 1.0,
          "min_child_weight": 1, "nthread": 1, "seed": 0, "verbosity": 0}
ROUNDS = 40

n, k = 240, 5
X = rng.normal(size=(n, k)).astype(np.float32)
X[:, 3] = np.round(X[:, 3] * 3).astype(np.float32)  # a column with ties
y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * X[:, 3] + 0.05 * rng.normal(size=n)).astype(np.float32)
missing = rng.random(size=(n, k)) < 0.05
X[missing] = np.nan
fold = rng.integers(0, 4, size=n)

def cell(v):
    return "" if np.isnan(v) else repr(float(v))

with open(os.path.join(here, "xgboost_data.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"f{j}" for j in range(k)] + ["y", "fold"])
    for i in range(n):
        w.writerow([cell(X[i, j]) for j in range(k)] + [repr(float(y[i])), int(fold[i])])

oof = np.zeros(n)
for f_ in range(4):
    train, test = fold != f_, fold == f_
    booster = xgb.train(PARAMS, xgb.DMatrix(X[train], label=y[train], missing=np.nan), num_boost_round=ROUNDS)
    oof[test] = booster.predict(xgb.DMatrix(X[test], missing=np.nan))
full = xgb.train(PARAMS, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=ROUNDS)
pred = full.predict(xgb.DMatrix(X, missing=np.nan))
shap = full.predict(xgb.DMatrix(X, missing=np.nan), pred_contribs=True)
with open(os.path.join(here, "xgboost_expected.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["oof", "full"] + [f"shap_f{j}" for j in range(k)] + ["shap_bias"])
    for i in range(n):
        w.writerow([repr(float(oof[i])), repr(float(pred[i]))] + [repr(float(v)) for v in shap[i]])

# Ranking pruners within hidden groups: per-pruner means over seeds, then scipy's tau-b and rho.
pruners = ["snip", "grasp", "synflow", "er", "erk", "prospr", "uniform"]
rows = []
for model in ["A", "B", "C"]:
    for sparsity in [0.6, 0.9, 0.98]:
        for p in pruners:
            for seed in range(3):
                acc = round(float(rng.integers(0, 6)) / 10 + 0.05 * seed, 4)   # coarse: ties between pruners
                score = round(float(rng.integers(0, 5)), 1)
                rows.append((model, sparsity, p, seed, score, acc))
with open(os.path.join(here, "rank_data.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["model", "sparsity", "pruning", "seed", "score", "accuracy"])
    w.writerows(rows)
with open(os.path.join(here, "rank_expected.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["model", "sparsity", "kendall", "spearman"])
    for model in ["A", "B", "C"]:
        for sparsity in [0.6, 0.9, 0.98]:
            xs, ys = [], []
            for p in pruners:
                sel = [r for r in rows if r[0] == model and r[1] == sparsity and r[2] == p]
                xs.append(np.mean([r[4] for r in sel]))
                ys.append(np.mean([r[5] for r in sel]))
            w.writerow([model, sparsity, repr(float(scipy.stats.kendalltau(xs, ys).correlation)),
                        repr(float(scipy.stats.spearmanr(xs, ys).correlation))])

with open(os.path.join(here, "pairs_data.csv"), "w", newline="") as f, \
        open(os.path.join(here, "pairs_expected.csv"), "w", newline="") as g:
    w, e = csv.writer(f), csv.writer(g)
    w.writerow(["set", "x", "y"]); e.writerow(["set", "kendall", "spearman"])
    for s in range(12):
        m = int(rng.integers(5, 60))
        x = rng.integers(0, 4 + s, size=m).astype(float)   # many ties in small sets
        yy = x * (s % 3 - 1) + rng.integers(0, 5, size=m)
        for a, b in zip(x, yy):
            w.writerow([s, repr(float(a)), repr(float(b))])
        e.writerow([s, repr(float(scipy.stats.kendalltau(x, yy).correlation)), repr(float(scipy.stats.spearmanr(x, yy).correlation))])
