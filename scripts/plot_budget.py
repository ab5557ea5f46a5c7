#!/usr/bin/python3
"""plot_budget.py: each finding's paired gap across the training budget, from a report's STEM-budget.csv.

    /usr/bin/python3 scripts/plot_budget.py OUT.png results/NAME-budget.csv

The report step (`build/lm --report RUNS... --out=STEM`, and build/mt, build/cls) writes
STEM-budget.csv beside STEM.csv: for every pair of variants a finding judges, the paired per-seed
gap a - b of the validation loss at every evaluation step, with its 95% t interval
(docs/statistics.md, "Across the budget"). One figure row per group of runs (a group of more
than four pairs wraps), titled by the flags in which the groups differ (the CSV's `group`
column), one panel per pair: the mean gap in nats against the step, the interval as a band, 0 as
a solid line and the finding's margin (where its verdict is on the loss) as dashed lines at
+-margin. A gap whose band leaves 0 only late, or crosses it, is a verdict that depends on when
training stopped.

Needs matplotlib: Debian's python3-matplotlib, installed for /usr/bin/python3 (a `python3` earlier
on PATH, such as pyenv's, may not have it; `SYNTH_WITH_PLOTS=1 bash scripts/deps.sh` installs it);
exits 3 with a message if it is missing. The image is written to a temporary file and renamed.
"""
import csv
import os
import sys

EXIT_NO_MATPLOTLIB = 3
MAX_COLS = 4
COLUMNS = ["group", "a", "b", "step", "n", "mean_gap", "lo", "hi", "margin"]


def read_budget(path):
    """{group: {(a, b): [row, ...] by step}} of a STEM-budget.csv, in the file's order."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                sys.exit(f"plot_budget.py: {path} is not a report's -budget.csv (no column {', '.join(missing)})")
            rows = list(reader)
    except OSError as e:
        sys.exit(f"plot_budget.py: cannot read {path}: {e.strerror}")
    if not rows:
        sys.exit(f"plot_budget.py: {path} has no finding followed across the budget (no pair with common seeds)")
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], {}).setdefault((r["a"], r["b"]), []).append(r)
    for pairs in groups.values():
        for pts in pairs.values():
            pts.sort(key=lambda r: int(r["step"]))
    return groups


def number(s):
    return float(s) if s != "" else None


def draw_pair(ax, title, pts, first_col):
    """One pair: the mean gap against the step, its 95% band, 0 and the margin."""
    ax.axis("on")
    steps = [int(r["step"]) for r in pts]
    ax.plot(steps, [float(r["mean_gap"]) for r in pts], marker="o", markersize=3, label=f"n = {pts[-1]['n']}")
    banded = [(s, number(r["lo"]), number(r["hi"])) for s, r in zip(steps, pts) if r["lo"] != ""]
    if banded:
        ax.fill_between([x[0] for x in banded], [x[1] for x in banded], [x[2] for x in banded], alpha=0.25,
                        label="95% interval")
    ax.axhline(0, color="black", linewidth=0.8)
    margin = number(pts[-1]["margin"])
    if margin is not None:
        for m in (-margin, margin):
            ax.axhline(m, color="gray", linestyle="--", linewidth=0.8)
        ax.lines[-1].set_label(f"margin +-{margin:g}")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step")
    if first_col:
        ax.set_ylabel("validation loss gap, nats")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, path = sys.argv[1], sys.argv[2]
    groups = read_budget(path)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_budget.py: matplotlib is not importable by {sys.executable} ({e}); run it with "
              "/usr/bin/python3 after `apt-get install python3-matplotlib`", file=sys.stderr)
        sys.exit(EXIT_NO_MATPLOTLIB)
    # Each group starts a row of its own and wraps after MAX_COLS pairs.
    cols = min(MAX_COLS, max(len(pairs) for pairs in groups.values()))
    panels = []  # (row, col, group, (a, b), points)
    row = 0
    for group, pairs in groups.items():
        for i, (pair, pts) in enumerate(pairs.items()):
            panels.append((row + i // cols, i % cols, group, pair, pts))
        row += (len(pairs) + cols - 1) // cols
    fig, axes = plt.subplots(row, cols, figsize=(3.8 * cols, 3.0 * row + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, c, group, (a, b), pts in panels:
        draw_pair(axes[r][c], f"{group}: {a} - {b}" if len(groups) > 1 and group else f"{a} - {b}", pts, c == 0)
    fig.suptitle(f"{os.path.basename(path)}: paired gap a - b across the budget")
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, out)
    print(f"plot_budget.py: wrote {out}")


if __name__ == "__main__":
    main()
