#!/usr/bin/env bash
# bench_mixers.sh: training and inference throughput of several sequence mixers at one LM shape,
# rounds interleaved (each round runs every variant once, in a rotated order) so that drifting
# machine load hits all alike; medians over the rounds, and each variant's ratio to the first.
# This is the speed side of the paper's baseline claim (R vs DynamicConv and V, docs/variants.md).
#
#   bash scripts/bench_mixers.sh [VARIANTS=R,V,DynamicConv,LightConv] [ROUNDS=5] [LM FLAGS...] > results/bench-mixers.md
#   bash scripts/bench_mixers.sh R,V,D 5 --data=ptb --vocab=10000 > results/bench-ptb-mixers.md
#
# LM FLAGS go to every `build/lm --bench` (--data=ptb takes PTB's full preset: batch 32, dropout
# 0.2; --vocab sizes the output layer). Environment: BENCH_PRESET [full] (build/lm's preset
# giving the shape: full = Tiny Shakespeare's full preset), BENCH_THREADS [1], SYNTH_BUILD [build].
set -euo pipefail
variants=${1:-R,V,DynamicConv,LightConv} rounds=${2:-5}
flags=("${@:3}")
preset=${BENCH_PRESET:-full} threads=${BENCH_THREADS:-1} lm=${SYNTH_BUILD:-build}/lm
[[ -x $lm ]] || { echo "error: $lm is not built (make)" >&2; exit 1; }
((rounds >= 1)) || { echo "error: ROUNDS=$rounds must be at least 1" >&2; exit 1; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
IFS=, read -ra vs <<<"$variants"
n=${#vs[@]}
for ((r = 0; r < rounds; ++r)); do
    for ((i = 0; i < n; ++i)); do
        v=${vs[$(((i + r) % n))]}
        echo "bench_mixers: round $((r + 1))/$rounds $v" >&2
        "$lm" --bench --preset="$preset" --threads="$threads" --variants="$v" "${flags[@]}" | grep '^{' >>"$raw"
    done
done
load="$load_before to $(cut -d' ' -f1 /proc/loadavg)"
python3 - "$raw" "$variants" "$rounds" "$preset" "$threads" "$load" "${flags[*]}" <<'EOF'
import json, statistics, sys, subprocess
raw, variants, rounds, preset, threads, load, flags = sys.argv[1], sys.argv[2].split(","), *sys.argv[3:]
rows = [json.loads(l) for l in open(raw)]
by = {v: [r for r in rows if r["variant"] == v] for v in variants}
first = rows[0]
tok = first["batch"] * first["seq"]
med = {v: (statistics.median(r["train_tokens_per_s"] for r in rs), statistics.median(r["infer_tokens_per_s"] for r in rs))
       for v, rs in by.items()}
base = variants[0]
print(f"# Sequence mixers: throughput at one LM shape\n")
extra = f" {flags}" if flags else ""
print(f"`bash scripts/bench_mixers.sh {','.join(variants)} {rounds}{extra}` with `build/lm --bench --preset={preset} "
      f"--threads={threads}{extra}`: d={first['d_model']}, {first['layers']} layers, {first['heads']} heads, d_ff={first['d_ff']}, "
      f"seq {first['seq']}, batch {first['batch']} ({tok} tokens per step), vocab {first['vocab']}. "
      f"Median of {rounds} interleaved rounds; machine: {first['cpu']} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
      f"CPUs), OpenBLAS kernel {first['kernel']}; 1-minute load average {load} (other jobs share the CPUs when it "
      f"exceeds the thread count: the ratios, from interleaved rounds, are the robust figures).\n")
print(f"| variant | params | train tok/s | train steps/s | infer tok/s | train vs {base} | infer vs {base} |")
print("|---|---|---|---|---|---|---|")
for v in variants:
    t, i = med[v]
    print(f"| {v} | {by[v][0]['params']} | {t:,.0f} | {t / tok:.2f} | {i:,.0f} | {t / med[base][0]:.2f}x | {i / med[base][1]:.2f}x |")
if "R" in med and "DynamicConv" in med:
    print(f"\nThe paper (C4 pre-training, T5-base scale on TPU): R 4.26 steps/s, DynamicConv 2.65, Transformer 3.90, so "
          f"R / DynamicConv = 1.61x and R / V = 1.09x. Here, training: R / DynamicConv = "
          f"{med['R'][0] / med['DynamicConv'][0]:.2f}x" + (f", R / V = {med['R'][0] / med['V'][0]:.2f}x." if "V" in med else "."))
EOF
