#!/usr/bin/env bash
# bench_mt_mixers.sh: training throughput of several sequence mixers in the Multi30k translation
# model (the full preset's shape, its real batches), rounds interleaved as in bench_mixers.sh so
# that drifting machine load hits all alike; medians over the rounds and each variant's ratio to
# the first. The speed side of the baseline claim on translation, measured on one machine, where
# the sweeps' own tokens/s may come from several (docs/sweeps.md).
#
#   bash scripts/bench_mt_mixers.sh [VARIANTS=R,V,DynamicConv] [ROUNDS=3] > results/bench-mt-mixers.md
#
# Environment: BENCH_STEPS [300] training steps per run (the same batches for every variant: one
# seed), BENCH_THREADS [1], SYNTH_BUILD [build].
set -euo pipefail
variants=${1:-R,V,DynamicConv} rounds=${2:-3}
steps=${BENCH_STEPS:-300} threads=${BENCH_THREADS:-1} mt=${SYNTH_BUILD:-build}/mt
[[ -x $mt ]] || { echo "error: $mt is not built (make)" >&2; exit 1; }
((rounds >= 1)) || { echo "error: ROUNDS=$rounds must be at least 1" >&2; exit 1; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IFS=, read -ra vs <<<"$variants"
n=${#vs[@]}
for ((r = 0; r < rounds; ++r)); do
    for ((i = 0; i < n; ++i)); do
        v=${vs[$(((i + r) % n))]}
        echo "bench_mt_mixers: round $((r + 1))/$rounds $v" >&2
        # Decoding one sentence per set at beam 1 keeps the run to its training.
        "$mt" --data=multi30k --preset=full --steps="$steps" --decode-limit=1 --beam=1 --threads="$threads" \
            --variants="$v" --run-dir="$tmp/run" --overwrite 2>"$tmp/err" | grep '^{' >>"$tmp/raw"
    done
done
load="$load_before to $(cut -d' ' -f1 /proc/loadavg)"
kernel=$(grep -m1 -o 'OpenBLAS kernel [^,]*' "$tmp/err" || echo "OpenBLAS kernel unknown")
python3 - "$tmp/raw" "$variants" "$rounds" "$steps" "$threads" "$load" "$kernel" <<'EOF'
import json, statistics, sys, subprocess
raw, variants, rounds, steps, threads, load, kernel = sys.argv[1], sys.argv[2].split(","), *sys.argv[3:]
rows = [json.loads(l) for l in open(raw)]
by = {v: [r for r in rows if r["variant"] == v] for v in variants}
info = dict(l.split(":", 1) for l in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines() if ":" in l)
info = {k.strip(): v.strip() for k, v in info.items()}
cpu = f"{info.get('model name', 'unknown')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
med = {v: (statistics.median(r["train_tgt_tok_s"] for r in rs), statistics.median(r["steps_s"] for r in rs)) for v, rs in by.items()}
base = variants[0]
print("# Sequence mixers: training throughput in the Multi30k translation model\n")
print(f"`bash scripts/bench_mt_mixers.sh {','.join(variants)} {rounds}`: `build/mt --data=multi30k --preset=full "
      f"--steps={steps} --threads={threads}` per variant (the full preset's model and batches, one seed), the mixer "
      f"in the encoder's and the decoder's self-attention. Median of {rounds} interleaved rounds of the steps' own time (no validation, no "
      f"decoding); machine: {cpu} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} CPUs), "
      f"{kernel}; "
      f"1-minute load average {load}.\n")
print(f"| variant | params | train tgt tok/s | train steps/s | vs {base} |")
print("|---|---|---|---|---|")
for v in variants:
    t, s = med[v]
    print(f"| {v} | {by[v][0]['params']} | {t:,.0f} | {s:.2f} | {s / med[base][1]:.2f}x |")
if "R" in med and "DynamicConv" in med:
    print(f"\nThe paper (C4 pre-training, T5-base scale on TPU): R / DynamicConv = 1.61x steps/s. Here: "
          f"R / DynamicConv = {med['R'][1] / med['DynamicConv'][1]:.2f}x" +
          (f", R / V = {med['R'][1] / med['V'][1]:.2f}x." if "V" in med else "."))
EOF
