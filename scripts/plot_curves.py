#!/usr/bin/python3
"""plot_curves.py: the loss curves of a sweep, one line per variant (mean over seeds, band = min..max).

    python3 scripts/plot_curves.py OUT.png RUN_DIR_OR_SWEEP_DIR...

Reads every finished run directory (one with result.json) under the given paths: its
config.json and metrics.jsonl (src/runs/run_dir.h). Left: training loss (smoothed over 20 steps);
right: validation loss at its evaluation steps. Runs are grouped by variant within one config
(result.json's group_hash); several configs get one figure row each. Needs matplotlib
(Debian: python3-matplotlib; `SYNTH_WITH_PLOTS=1 bash scripts/deps.sh`); exits 3 with a message
if it is missing. The image is written to a temporary file and renamed.
"""
import json
import os
import sys

EXIT_NO_MATPLOTLIB = 3


def finished_runs(paths):
    dirs = []
    for p in paths:
        if not os.path.isdir(p):
            sys.exit(f"plot_curves.py: '{p}' is not a directory of runs")
        for root, _, files in os.walk(p):
            if "result.json" in files:
                dirs.append(root)
    if not dirs:
        sys.exit("plot_curves.py: no finished run (a directory with result.json) under the given paths")
    runs = []
    for d in sorted(set(dirs)):
        with open(os.path.join(d, "result.json")) as f:
            result = json.load(f)
        rows = []
        with open(os.path.join(d, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        runs.append((result, rows))
    return runs


def smooth(xs, w=20):
    out, s = [], 0.0
    for i, x in enumerate(xs):
        s += x
        if i >= w:
            s -= xs[i - w]
        out.append(s / min(i + 1, w))
    return out


def band(series):
    """series: {seed: {step: value}} -> (steps, mean, lo, hi) over the steps every seed has."""
    steps = sorted(set.intersection(*(set(s) for s in series.values())))
    vals = [[s[t] for s in series.values()] for t in steps]
    return steps, [sum(v) / len(v) for v in vals], [min(v) for v in vals], [max(v) for v in vals]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_curves.py: matplotlib is not importable ({e}); apt-get install python3-matplotlib",
              file=sys.stderr)
        sys.exit(EXIT_NO_MATPLOTLIB)
    groups = {}
    for result, rows in finished_runs(paths):
        g = groups.setdefault(result["group_hash"], {})
        v = g.setdefault(result["variant"], {"train": {}, "val": {}})
        train = smooth([r["train_loss"] for r in rows])
        v["train"][result["seed"]] = {r["step"]: x for r, x in zip(rows, train)}
        v["val"][result["seed"]] = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 4 * len(groups)), squeeze=False)
    for row, (gh, variants) in enumerate(sorted(groups.items())):
        for col, part in enumerate(("train", "val")):
            ax = axes[row][col]
            for name, curves in sorted(variants.items()):
                steps, mean, lo, hi = band(curves[part])
                n = len(curves[part])
                line, = ax.plot(steps, mean, label=f"{name} (n={n})", marker="o" if part == "val" else None,
                                markersize=3)
                if n > 1:
                    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
            ax.set_xlabel("step")
            ax.set_ylabel(("training loss (20-step mean)" if part == "train" else "validation loss") + ", nats")
            ax.set_title(f"config {gh}" if len(groups) > 1 else ("training" if part == "train" else "validation"))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(f"plot_curves.py: wrote {out}")


if __name__ == "__main__":
    main()
