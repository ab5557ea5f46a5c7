#!/usr/bin/python3
"""plot_attention.py: heat maps of attention dumps, and mixture weights over training.

    scripts/plot_attention.py maps OUT.png DUMP.json [DUMP.json...]
    scripts/plot_attention.py alphas OUT.png DUMP.json [DUMP.json...]
    scripts/plot_attention.py lags OUT.md DUMP.json [DUMP.json...]

A dump is what `build/lm --dump-attention=DUMP.json --checkpoint=CKPT` writes (docs/analysis.md).

maps:   one block of rows per dump (its variant and step in the row label), one row per layer,
        one column per head: the attention probabilities averaged over validation sequences,
        query position down, key position across (the layout of the paper's figures). For R
        and Rfix this is softmax of the learned matrix itself, which no input changes.
alphas: the mixture weights alpha (docs/variants.md) of every layer and head against the
        checkpoint's training step, one panel per layer, one line per (head, component); give
        the dumps of a run's step checkpoints. Dumps without a mixture are an error.
lags:   the maps as numbers, a Markdown table: per dump, layer and head, how the attention of
        the queries at positions >= LAG_FROM splits over the distance back to the key (lag 0 is
        the query's own position), and the mean lag. Needs no matplotlib.

Needs matplotlib (Debian: python3-matplotlib; `SYNTH_WITH_PLOTS=1 bash scripts/deps.sh`), which
is why it runs as the system's /usr/bin/python3 rather than whatever `python3` comes first; it
exits 3 with a message if they are missing. The image is written to a temporary file and renamed.
"""
import json
import os
import sys

EXIT_NO_MATPLOTLIB = 3


def load(paths):
    dumps = []
    for p in paths:
        try:
            with open(p) as f:
                dumps.append(json.load(f))
        except (OSError, ValueError) as e:
            sys.exit(f"plot_attention.py: cannot read {p}: {e}")
    return dumps


def save(fig, out):
    tmp = f"{out}.tmp.{os.getpid()}.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, out)
    print(f"wrote {out}")


def plot_maps(plt, dumps, out):
    rows = [(d, l) for d in dumps for l, m in enumerate(d["maps"]) if m is not None]
    if not rows:
        sys.exit("plot_attention.py: no dump holds an attention map (sequence mixers without one give null)")
    H = max(d["heads"] for d, _ in rows)
    fig, axes = plt.subplots(len(rows), H, figsize=(2.1 * H, 2.1 * len(rows)), squeeze=False)
    for r, (d, l) in enumerate(rows):
        for h in range(H):
            ax = axes[r][h]
            ax.set_xticks([])
            ax.set_yticks([])
            if h >= d["heads"]:
                ax.axis("off")
                continue
            m = d["maps"][l][h]
            # A causal map's first rows hold all their mass in one or two keys; a colour
            # scale up to the 99th percentile keeps the rest of the map readable.
            flat = sorted(v for row in m for v in row if v > 0)
            vmax = flat[int(0.99 * (len(flat) - 1))] if flat else 1.0
            ax.imshow(m, cmap="viridis", interpolation="nearest", vmin=0, vmax=vmax)
            if r == 0:
                ax.set_title(f"head {h}", fontsize=9)
            if h == 0:
                ax.set_ylabel(f"{d['variant']} step {d['step']}\nlayer {l}", fontsize=8)
    # 0.7 inch above the first row: the head titles take its lower half, the figure title the upper.
    height = 2.1 * len(rows)
    fig.subplots_adjust(top=1 - 0.7 / height, hspace=0.15, wspace=0.08)
    fig.suptitle("mean attention on validation text (query down, key across)", fontsize=10,
                 y=1 - 0.25 / height, va="bottom")
    save(fig, out)


def plot_alphas(plt, dumps, out):
    dumps = sorted(dumps, key=lambda d: d["step"])
    if any(len(d["components"]) < 2 for d in dumps):
        sys.exit("plot_attention.py: alphas needs dumps of a mixture (e.g. R+V)")
    names, layers, H = dumps[0]["components"], dumps[0]["layers"], dumps[0]["heads"]
    steps = [d["step"] for d in dumps]
    fig, axes = plt.subplots(1, layers, figsize=(3.2 * layers, 2.8), squeeze=False, sharey=True)
    styles = ["-", "--", ":", "-."]
    for l in range(layers):
        ax = axes[0][l]
        for h in range(H):
            for c, name in enumerate(names):
                ax.plot(steps, [d["alphas"][l][h][c] for d in dumps], styles[c % len(styles)],
                        color=f"C{h}", label=f"h{h} {name}")
        ax.set_title(f"layer {l}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("alpha")
    axes[0][-1].legend(fontsize=6, ncol=len(names))
    fig.suptitle(f"{dumps[0]['variant']}: mixture weights per head over training", fontsize=10, y=1.04)
    save(fig, out)


# Queries this far in or later have at least 16 keys to choose from, so their lag profile is
# not shaped by a short prefix (the first query can only look at itself).
LAG_FROM = 16
LAG_BINS = [(0, 0), (1, 1), (2, 3), (4, 15), (16, None)]


def lag_bin(lag):
    return next(k for k, (lo, hi) in enumerate(LAG_BINS) if lag >= lo and (hi is None or lag <= hi))


def lag_profile(m):
    """(mass per bin of LAG_BINS, mean lag) of one (L, L) map, over the queries i >= LAG_FROM."""
    mass = [0.0] * len(LAG_BINS)
    mean_lag = 0.0
    for i in range(LAG_FROM, len(m)):
        for j in range(i + 1):
            mass[lag_bin(i - j)] += m[i][j]
            mean_lag += (i - j) * m[i][j]
    n = len(m) - LAG_FROM
    return [x / n for x in mass], mean_lag / n


def write_lags(dumps, out):
    maps = [m for d in dumps for layer in d["maps"] if layer is not None for m in layer]
    if not maps:
        sys.exit("plot_attention.py: no dump holds an attention map (sequence mixers without one give null)")
    L = len(maps[0])
    if L <= LAG_FROM:
        sys.exit(f"plot_attention.py: lags needs maps longer than {LAG_FROM} positions (these have {L})")
    bins = [f"lag {lo}" if lo == hi else (f"lag {lo}-{hi}" if hi is not None else f"lag >= {lo}")
            for lo, hi in LAG_BINS]
    lines = [f"Attention mass by distance from the query (lag = query position - key position), "
             f"averaged over the queries at positions >= {LAG_FROM} and the dump's validation "
             f"sequences (`scripts/plot_attention.py lags`, docs/analysis.md).", "",
             "| variant | step | layer | head | " + " | ".join(bins) + " | mean lag |",
             "|---|---:|---:|---:|" + "---:|" * (len(bins) + 1)]
    # The yardstick: uniform causal averaging, which Rfix at its N(0, 0.02) start amounts to.
    mass, mean_lag = lag_profile([[1.0 / (i + 1) if j <= i else 0.0 for j in range(L)] for i in range(L)])
    lines.append("| uniform causal average | | | | " + " | ".join(f"{x:.3f}" for x in mass)
                 + f" | {mean_lag:.1f} |")
    for d in dumps:
        for l, layer in enumerate(d["maps"]):
            if layer is None:
                continue
            for h, m in enumerate(layer):
                mass, mean_lag = lag_profile(m)
                lines.append(f"| {d['variant']} | {d['step']} | {l} | {h} | "
                             + " | ".join(f"{x:.3f}" for x in mass) + f" | {mean_lag:.1f} |")
    tmp = f"{out}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}")


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("maps", "alphas", "lags"):
        sys.exit(__doc__)
    if sys.argv[1] == "lags":
        write_lags(load(sys.argv[3:]), sys.argv[2])
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_attention.py: matplotlib is not importable by {sys.executable} ({e}); run it with "
              "/usr/bin/python3 after `apt-get install python3-matplotlib`", file=sys.stderr)
        sys.exit(EXIT_NO_MATPLOTLIB)
    dumps = load(sys.argv[3:])
    (plot_maps if sys.argv[1] == "maps" else plot_alphas)(plt, dumps, sys.argv[2])


if __name__ == "__main__":
    main()
