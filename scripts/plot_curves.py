#!/usr/bin/python3
"""plot_curves.py: the loss curves of a sweep, one line per variant (mean over seeds, band = min..max).

    /usr/bin/python3 scripts/plot_curves.py OUT.png RUN_DIR_OR_SWEEP_DIR...

Reads every run directory under the given paths (one with config.json and metrics.jsonl,
src/runs/run_dir.h), finished or not: a run still training is drawn up to its last logged step
and marked "running" with its progress, so the script can be re-run to watch a sweep live. Left:
training loss (smoothed over 20 steps); middle or right: validation loss at its evaluation steps;
right, for a classifier (metrics with val_acc): validation accuracy in percent. Runs are
grouped by variant within one configuration (config.json's group_hash); several configurations
get one figure row each, titled by the flags in which they differ (heads=1, lr=0.003). The
figure's title names the data set and the budget (steps, batch, sequence length).

Needs matplotlib: Debian's python3-matplotlib, installed for /usr/bin/python3 (a `python3` earlier
on PATH, such as pyenv's, may not have it; `SYNTH_WITH_PLOTS=1 bash scripts/deps.sh` installs it);
exits 3 with a message if it is missing. The image is written to a temporary file and renamed.
"""
import json
import os
import sys
import textwrap

EXIT_NO_MATPLOTLIB = 3
# Flags that differ between the runs of one configuration, or name where a run lives: never a
# difference between configurations worth a title.
PER_RUN = {"seed", "seeds", "variants", "run-dir", "runs-dir", "tag", "resume", "out", "overwrite", "force",
           "checkpoint", "checkpoint-dir", "report", "generate", "prompt", "sample", "dump-attention", "log-every",
           "save-every", "keep-last", "verbose", "profile", "config"}


def read_jsonl(path):
    """The complete lines of a JSON-lines file; a line being written (no newline yet) is left out."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                if line.strip():
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def runs_under(paths):
    """[(config, result or None, metrics rows)] of every run directory under paths."""
    dirs = []
    for p in paths:
        if not os.path.isdir(p):
            sys.exit(f"plot_curves.py: '{p}' is not a directory of runs")
        for root, _, files in os.walk(p):
            if "config.json" in files:
                dirs.append(root)
    if not dirs:
        sys.exit("plot_curves.py: no run directory (one with config.json) under the given paths")
    runs = []
    for d in sorted(set(dirs)):
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        result = None
        if os.path.exists(os.path.join(d, "result.json")):
            with open(os.path.join(d, "result.json")) as f:
                result = json.load(f)
        rows = read_jsonl(os.path.join(d, "metrics.jsonl"))
        if rows:
            runs.append((config, result, rows))
    if not runs:
        sys.exit("plot_curves.py: no run has logged a step yet")
    return runs


def flags_of(config):
    return {k[len("flag."):]: v for k, v in config.items() if k.startswith("flag.")}


def differing_flags(groups):
    """{group_hash: "heads=1, lr=0.003"}: the model and training flags whose values differ between groups."""
    flags = {gh: flags_of(g["config"]) for gh, g in groups.items()}
    keys = sorted(set().union(*(f.keys() for f in flags.values())) - PER_RUN)
    differ = [k for k in keys if len({f.get(k) for f in flags.values()}) > 1]
    return {gh: ", ".join(f"{k}={f.get(k, '?')}" for k in differ) or gh for gh, f in flags.items()}


def budget_title(groups):
    """'tinyshakespeare, 2000 steps of 12 x 64 tokens' (a value that differs between rows says 'per row')."""
    def common(key, unit=""):
        vals = {flags_of(g["config"]).get(key, "?") for g in groups.values()}
        return (vals.pop() + unit) if len(vals) == 1 else f"{key} per row"
    # build/cls names its task (listops) in --task; its --data is the matching task's corpus.
    has_task = any("task" in flags_of(g["config"]) for g in groups.values())
    data = common("task") if has_task else common("data")
    length = f"length up to {common('max-len')}" if has_task else f"seq {common('seq')}"
    return f"{data}, {common('steps', ' steps')} of batch {common('batch')} x {length}"


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
    series = {k: s for k, s in series.items() if s}
    if not series:
        return [], [], [], []
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
        print(f"plot_curves.py: matplotlib is not importable by {sys.executable} ({e}); run it with "
              "/usr/bin/python3 after `apt-get install python3-matplotlib`", file=sys.stderr)
        sys.exit(EXIT_NO_MATPLOTLIB)
    groups = {}
    for config, result, rows in runs_under(paths):
        flags = flags_of(config)
        g = groups.setdefault(config.get("group_hash", "?"), {"config": config, "variants": {}})
        variant = result["variant"] if result else flags.get("variants", "?")
        seed = result["seed"] if result else flags.get("seed", "?")
        v = g["variants"].setdefault(variant, {"train": {}, "val": {}, "acc": {}, "running": []})
        train_rows = [r for r in rows if "train_loss" in r]
        train = smooth([r["train_loss"] for r in train_rows])
        v["train"][seed] = {r["step"]: x for r, x in zip(train_rows, train)}
        v["val"][seed] = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
        v["acc"][seed] = {r["step"]: 100.0 * r["val_acc"] for r in rows if "val_acc" in r}
        if result is None:
            v["running"].append(f"{rows[-1]['step']}/{flags.get('steps', '?')}")
    titles = differing_flags(groups)
    parts = ["train", "val"]
    if any(s for g in groups.values() for v in g["variants"].values() for s in v["acc"].values()):
        parts.append("acc")
    labels = {"train": ("training", "training loss (20-step mean), nats"), "val": ("validation", "validation loss, nats"),
              "acc": ("validation accuracy", "validation accuracy, %")}
    fig, axes = plt.subplots(len(groups), len(parts), figsize=(5.5 * len(parts), 4 * len(groups) + 0.6),
                             squeeze=False)
    for row, (gh, g) in enumerate(sorted(groups.items(), key=lambda kv: titles[kv[0]])):
        for col, part in enumerate(parts):
            ax = axes[row][col]
            for name, curves in sorted(g["variants"].items()):
                steps, mean, lo, hi = band(curves[part])
                if not steps:
                    continue
                n = len(curves[part])
                running = f", running {' '.join(curves['running'])}" if curves["running"] else ""
                line, = ax.plot(steps, mean, label=f"{name} (n={n}{running})", marker=None if part == "train" else "o",
                                markersize=3)
                if n > 1:
                    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
            ax.set_xlabel("step")
            what, ylabel = labels[part]
            ax.set_ylabel(ylabel)
            ax.set_title(textwrap.fill(f"{titles[gh]}: {what}", 60) if len(groups) > 1 else what, fontsize=9)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle(budget_title(groups))
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(f"plot_curves.py: wrote {out}")


if __name__ == "__main__":
    main()
