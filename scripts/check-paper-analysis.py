#!/usr/bin/env python3
"""An independent recomputation of examples/paper-analysis.mge's table for points (a) and (d), in
pandas + PyPI's xgboost (neither is a dependency of mge; run it from a venv that has them):

    /tmp/venv/bin/python scripts/check-paper-analysis.py [path/to/paper-data]

It rebuilds the per-network features from the published CSVs (../shared/paper-data by default, or
data/paper/*.csv.zst when that is absent), with its own grouped folds (configurations shuffled with
numpy) and fixed XGBoost parameters instead of mge's search, so numbers differ slightly from mge's
table; the ordering of the feature sets is what to compare."""
import glob, io, os, subprocess, sys
import numpy as np
import pandas as pd
import xgboost as xgb

root = sys.argv[1] if len(sys.argv) > 1 else "../shared/paper-data"
net = ["model", "dataset", "pruning", "sparsity", "seed"]
bge = ["sink_nodes", "source_nodes", "disconnected_nodes", "nei_one_hop", "nei_two_hop", "bridges", "a_point",
       "coreness_all", "motifs_count", "weak_clusters", "mean_weak", "density_undirected", "avg_degree_all",
       "spectral_gap_unweighted_undirected", "spectral_radius_laplacian_unweighted_undirected"]
topo = ["sink_nodes", "source_nodes", "disc_nodes", "r-out", "r-in", "2-hop_nei", "cut-edges", "motif",
        "no_connected_components", "mean_connected_components", "avg_node_strength", "1-hop_nei", "cut-nodes",
        "k-core", "spectral_gap", "spectral_radius"]

def zst(path):
    return pd.read_csv(io.BytesIO(subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout))

if os.path.isdir(root):
    nets = pd.read_csv(f"{root}/graph_metrics/unrolled/unrolled.csv")
    def layers(enc):
        parts = [pd.read_csv(f).rename(columns={"pruning_algorithm": "pruning"}) for f in sorted(glob.glob(f"{root}/graph_metrics/{enc}/*.csv"))]
        return pd.concat([p for p in parts if "sink_nodes" in p.columns])
    rolled, channel = layers("rolled"), layers("rolled_channel")
    ram = pd.concat([pd.read_csv(f) for f in glob.glob(f"{root}/ramanunjan_results/*/*.csv")])
else:
    nets, rolled, channel, ram = (zst(f"data/paper/{n}.csv.zst") for n in ["unrolled", "rolled", "rolled_channel", "ramanujan"])
nets = nets.drop_duplicates()
agg = lambda t, p: t.groupby(net)[bge].mean().add_prefix(p).reset_index()
ram["density"] = 1 - ram["layer_sparsity"]
ram["degree_bound"] = ram["degree_bound"].replace(-np.inf, np.nan)   # 90 layers; as the example does
rkeys = ["model", "dataset", "sparsity", "seed", "accuracy"]
r = ram.groupby(rkeys).agg(gap=("iterative_spectral_gap", "mean"), bound=("iterative_degree_bound", "mean"),
                           dbound=("degree_bound", "mean"), d_mean=("density", "mean"), d_std=("density", "std"),
                           d_min=("density", "min"), d_max=("density", "max")).reset_index()
r = r.merge(nets[net + ["accuracy"]], on=rkeys)
r = r[~r.duplicated(rkeys, keep=False)].drop(columns="accuracy")
t = nets.merge(agg(rolled, "rolled_"), on=net).merge(agg(channel, "channel_"), on=net).merge(r, on=net)
t["cifar100"] = (t.dataset == "CIFAR-100").astype(float)
t["tinyimagenet"] = (t.dataset == "tinyimagenet").astype(float)
context = ["sparsity", "cifar100", "tinyimagenet"]
print(f"{len(t)} networks in every table")

config = t.groupby(["model", "dataset", "pruning", "sparsity"]).ngroup().to_numpy()
rng = np.random.default_rng(1)
fold_of_config = rng.permutation(config.max() + 1) % 5
fold = fold_of_config[config]
y = t.accuracy.to_numpy()
params = {"max_depth": 6, "eta": 0.05, "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist", "nthread": 1, "seed": 0, "verbosity": 0}
sets = {"MGE topometrics": topo, "rolled BGE": ["rolled_" + m for m in bge], "rolled-channel BGE": ["channel_" + m for m in bge],
        "Ramanujan (rolled BGE)": ["gap", "bound", "dbound"], "layer density": ["d_mean", "d_std", "d_min", "d_max"], "context only": []}
for name, feats in sets.items():
    X = t[feats + context].to_numpy(dtype=np.float32)
    oof = np.zeros(len(y))
    for k in range(5):
        b = xgb.train(params, xgb.DMatrix(X[fold != k], label=y[fold != k]), num_boost_round=300)
        oof[fold == k] = b.predict(xgb.DMatrix(X[fold == k]))
    r2 = 1 - np.sum((y - oof) ** 2) / np.sum((y - y.mean()) ** 2)
    print(f"{name:24s} {len(feats):2d} features  R² {r2:.4f}  MAE {np.mean(np.abs(y - oof)):.4f}")
