#!/usr/bin/python3
"""plot_scaling.py: tokens/s against sequence length, one line per variant (results/bench-scaling.png).

    python3 scripts/plot_scaling.py RAW.jsonl OUT.png

RAW.jsonl is what scripts/bench.sh collects: one JSON object per benchmark run with the keys of
`build/lm --bench` plus "impl" (synth or torch) and "part"; the rows with part == "scaling"
(tokens per step held at 4096 while the sequence length grows) are drawn, the best run of each
(impl, variant, seq), training and inference side by side. synth is drawn solid, PyTorch dashed.
Needs matplotlib (Debian: python3-matplotlib); exits 3 with a message if it is missing.
The image is written to a temporary file and renamed, so OUT.png is never half-written.
"""
import json
import os
import sys

EXIT_NO_MATPLOTLIB = 3


ORDER = ["V", "R", "FR", "D", "R+V"]  # the scaling variants of scripts/bench.sh


def best_runs(path):
    """({(impl, variant): {seq: (train tok/s, infer tok/s)}}, best over repeated runs; one record)."""
    best, any_record = {}, None
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("part") != "scaling":
                continue
            any_record = r
            cell = best.setdefault((r["impl"], r["variant"]), {})
            old = cell.get(r["seq"], (0.0, 0.0))
            cell[r["seq"]] = (max(old[0], r["train_tokens_per_s"]), max(old[1], r["infer_tokens_per_s"]))
    return best, any_record


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    raw, out = sys.argv[1], sys.argv[2]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_scaling.py: matplotlib is not importable by {sys.executable} ({e}); run it with /usr/bin/python3 "
              "after `apt-get install python3-matplotlib`", file=sys.stderr)
        return EXIT_NO_MATPLOTLIB
    runs, r = best_runs(raw)
    if not runs:
        print(f"plot_scaling.py: {raw} has no scaling runs", file=sys.stderr)
        return 1
    variants = sorted({v for _, v in runs}, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v))
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, which, title in [(axes[0], 0, "training"), (axes[1], 1, "inference (forward only)")]:
        for (impl, variant), cell in sorted(runs.items(), key=lambda kv: (variants.index(kv[0][1]), kv[0][0] != "synth")):
            seqs = sorted(cell)
            ax.plot(seqs, [cell[s][which] for s in seqs], marker="o", color=colors[variant],
                    linestyle="-" if impl == "synth" else "--", label=f"{variant} ({impl})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({s for cell in runs.values() for s in cell}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("sequence length T (batch = tokens per step / T)")
        ax.set_ylabel("tokens / s")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"Throughput against sequence length at {r['batch'] * r['seq']} tokens per step "
                 f"(d={r['d_model']}, {r['layers']} layers, {r['heads']} heads, d_ff={r['d_ff']}, {r['threads']} threads)")
    fig.tight_layout()
    tmp = f"{out}.tmp.{os.getpid()}.png"
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
