"""Fits PlanCost's constants to `mge-bench --plan-costs` lines (scripts/calibrate-plan).

Each file is one stretch of steady load; its times are scaled to the first file's speed by the
ratio of the probes' medians over the files (MachineSpeed.reference is the first's). Least
squares on the relative error (each row weighted by 1/target), non-negative coefficients.
"""
import sys, re, itertools
import numpy as np

def parse(path):
    cases, trains = [], []
    for line in open(path):
        kind, _, rest = line.strip().partition(" ")
        if kind not in ("case", "train"): continue
        r = {}
        for kv in rest.split():
            k, _, v = kv.partition("=")
            try: r[k] = float(v)
            except ValueError: r[k] = v
        (cases if kind == "case" else trains).append(r)
    return cases, trains

def nnls_rel(X, y):
    """min Σ ((X b − y)/y)² with b ≥ 0 (active-set by brute force over subsets; few columns)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    W = X / y[:, None]; t = np.ones_like(y)
    best = None
    k = X.shape[1]
    for mask in itertools.product([0, 1], repeat=k):
        cols = [i for i in range(k) if mask[i]]
        if not cols: continue
        b, *_ = np.linalg.lstsq(W[:, cols], t, rcond=None)
        if (b < 0).any(): continue
        full = np.zeros(k); full[cols] = b
        err = ((W @ full - t) ** 2).sum()
        if best is None or err < best[0]: best = (err, full)
    return best[1]

def report(name, X, y, b, labels):
    pred = np.asarray(X) @ b
    rel = (pred - y) / y
    print(f"{name}: " + ", ".join(f"{n} = {v:.4g}" for n, v in zip(labels, b)) +
          f"   rel. error median {np.median(np.abs(rel)) * 100:.0f}%, worst {rel[np.argmax(np.abs(rel))] * 100:+.0f}%")
    return rel

def probes_of(rows):
    return [r["probe"] for r in rows] + [r["probe_after"] for r in rows if "probe_after" in r]

def main(paths):
    # Each file is one steady stretch of load: its times are scaled by the probe's median over
    # the file against the first file's (the reference speed). Dividing each time by the probe
    # taken just before it fitted worse: one probe is noisier than a stretch's load.
    cases, trains, ref = [], [], None
    for path in paths:
        c, t = parse(path)
        median = float(np.median(probes_of(c + t)))
        ref = ref or median
        for r in c + t:
            for k in list(r):
                if k.endswith("_s"): r[k] *= ref / median
            # Lines written before grouped_macs was printed counted MobileNetV2's depthwise
            # multiply-adds (5,879,808 per image) in the kernel cost at 0.117 ns each.
            if r.get("model") == "mobilenetv2" and "grouped_macs" not in r:
                r["grouped_macs"] = 5879808.0
                if "train_kernel_ns" in r:
                    r["train_kernel_ns"] -= 3 * 0.117 * r["grouped_macs"]; r["eval_kernel_ns"] -= 0.117 * r["grouped_macs"]
            r.setdefault("grouped_macs", 0.0)
        print(f"{path}: probe median {median:.4f} s over {len(probes_of(c + t))} probes; times scaled by {ref / median:.3f}")
        cases += c; trains += t
    print(f"reference: {ref:.4f} s")
    swift = [f"MachineSpeed.reference = {ref:.4g}"]
    def fit(name, rows, X, key, labels, consts):
        y = [key(r) for r in rows]
        b = nnls_rel(X, y)
        report(name, X, y, b, labels)
        for c, v in zip(consts, b): swift.append(f"{c} = {v:.4g}")
        return b
    fit("build", cases, [[1, c["weights"]] for c in cases], lambda c: c["build_s"], ["fixed", "per weight"], ["buildFixed", "buildPerWeight"])
    free = [c for c in cases if c["pruner"] in ("uniform", "erk", "er")]
    fit("prune (data-free)", free, [[1, c["weights"]] for c in free], lambda c: c["prune_s"], ["fixed", "per weight"], ["pruneFixed", "prunePerWeight"])
    snip = [c for c in cases if c["pruner"] == "snip"]
    if snip:
        fit("prune (snip scoring, 128 images)", snip, [[c["dense_macs"] * 128] for c in snip], lambda c: c["prune_s"], ["per dense MAC·image"], ["scoringPerMAC"])
        for c in snip:
            print(f"   snip {c['model']} {c['sparsity']}: cheap-pass edges {c['cheap_edges'] / c['edges']:.3f}x the real ones; cheap pass {c['cheap_s']:.2f} s, scoring {c['prune_s']:.2f} s")
    X = [[1, c["edges"], c["nodes"]] for c in cases]; y = [c["features_s"] for c in cases]
    report("features (the plan's own pass, not in the model)", X, y, nnls_rel(X, y), ["fixed", "per edge", "per node"])
    m = [c for c in cases if "topometrics_s" in c]
    if m:
        fit("unroll", m, [[c["edges"], c["nodes"]] for c in m], lambda c: c["unroll_s"], ["per edge", "per node"], ["unrollPerEdge", "unrollPerNode"])
        table, groups = [], sorted({(c["model"], c["pruner"]) for c in m})
        # A group of three or more sparsities gets its own (per edge, per node) pair; one of
        # two gets the median per-edge rate of the others and its per-node rate (two points
        # would fit two rates exactly and extrapolate wildly).
        full = [g for g in groups if len({c["sparsity"] for c in m if (c["model"], c["pruner"]) == g}) >= 3]
        def pair(g):
            rows = [c for c in m if (c["model"], c["pruner"]) == g]
            return rows, nnls_rel([[c["edges"], c["nodes"]] for c in rows], [c["topometrics_s"] for c in rows])
        shared = float(np.median([pair(g)[1][0] for g in full])) if full else None
        for g in groups:
            rows, b = pair(g)
            X = [[c["edges"], c["nodes"]] for c in rows]; y = [c["topometrics_s"] for c in rows]
            if g not in full and shared is not None:
                rest = [t - shared * c["edges"] for c, t in zip(rows, y)]
                b = np.array([shared, max(0.0, float(np.median([r / c["nodes"] for c, r in zip(rows, rest)])))])
            report(f"topometrics {g[0]} {g[1]}", X, y, b, ["per edge", "per node"])
            for c, p in zip(rows, np.asarray(X) @ b):
                print(f"   {c['sparsity']}: {c['edges'] / 1e6:7.2f} M edges, {c['topometrics_s']:7.2f} s measured, {p:7.2f} s modelled ({(p - c['topometrics_s']) / c['topometrics_s'] * 100:+.0f}%)")
            table.append(f'"{g[0]}|{g[1]}": ({b[0]:.3g}, {b[1]:.3g})')
        swift.append("topometricsRates = [" + ", ".join(table) + "]")
    if trains:
        fit("train per image", trains, [[t["train_kernel_ns"], t["grouped_macs"], t["activations"]] for t in trains],
            lambda t: (t["epoch1_s"] + t["epoch2_s"]) / 512, ["per modelled kernel ns", "per grouped MAC", "per activation"],
            ["trainPerKernelNs", "trainPerGroupedMAC", "trainPerActivation"])
        fit("evaluate per image", trains, [[t["eval_kernel_ns"], t["grouped_macs"], t["activations"]] for t in trains],
            lambda t: t["eval_s"] / 128, ["per modelled kernel ns", "per grouped MAC", "per activation"],
            ["evaluatePerKernelNs", "evaluatePerGroupedMAC", "evaluatePerActivation"])
        for t in trains:
            print(f"   {t['model']:>11} {t['pruner']:>7} {t['sparsity']}: {(t['epoch1_s'] + t['epoch2_s']) / 512 * 1e3:6.2f} ms per training image, {t['eval_s'] / 128 * 1e3:5.2f} ms per evaluated image")
        fixed = [t["wall_s"] - t["epoch1_s"] - t["epoch2_s"] - 2 * t["eval_s"] for t in trains]
        print(f"train call fixed: median {np.median(fixed):.3f} s (from {min(fixed):.2f} to {max(fixed):.2f})")
        swift.append(f"trainCallFixed = {max(0, np.median(fixed)):.3g}")
    print("\nfor PlanCost.swift:\n  " + "\n  ".join(swift))

if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--")])
