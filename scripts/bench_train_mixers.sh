#!/usr/bin/env bash
# bench_train_mixers.sh: training throughput of several sequence mixers in a runner's own model and
# batches, rounds interleaved as in bench_mixers.sh so that drifting machine load hits all alike;
# medians over the rounds and each variant's ratio to the first. The speed side of the paper's
# claims (R vs V, R vs DynamicConv) measured on one machine, where a sweep's own tokens/s may come
# from several and carry the load of the runs beside them (docs/sweeps.md).
#
#   bash scripts/bench_train_mixers.sh mt [VARIANTS=R,V,DynamicConv] [ROUNDS=3] > results/bench-mt-mixers.md
#   bash scripts/bench_train_mixers.sh cls R,V,D,DynamicConv 3 > results/bench-listops-mixers.md
#
# mt: the Multi30k translation model at the full preset, the mixer in the encoder's and the
# decoder's self-attention; cls: the ListOps classifier at the cpu preset. Environment:
# BENCH_STEPS [300] training steps per run (the same batches for every variant: one seed),
# BENCH_THREADS [1], SYNTH_BUILD [build].
set -euo pipefail
task=${1:-}
case $task in
    # Decoding one sentence per set at beam 1 keeps a translation run to its training.
    mt) flags=(--data=multi30k --preset=full --decode-limit=1 --beam=1) tok_key=train_tgt_tok_s tok_name="train tgt tok/s"
        title="the Multi30k translation model" ;;
    cls) flags=(--task=listops --preset=cpu) tok_key=train_tok_s tok_name="train tok/s" title="the ListOps classifier" ;;
    *) echo "usage: bash scripts/bench_train_mixers.sh mt|cls [VARIANTS] [ROUNDS]" >&2; exit 2 ;;
esac
variants=${2:-R,V,DynamicConv} rounds=${3:-3}
steps=${BENCH_STEPS:-300} threads=${BENCH_THREADS:-1} bin=${SYNTH_BUILD:-build}/$task
[[ -x $bin ]] || { echo "error: $bin is not built (make)" >&2; exit 1; }
((rounds >= 1)) || { echo "error: ROUNDS=$rounds must be at least 1" >&2; exit 1; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IFS=, read -ra vs <<<"$variants"
n=${#vs[@]}
for ((r = 0; r < rounds; ++r)); do
    for ((i = 0; i < n; ++i)); do
        v=${vs[$(((i + r) % n))]}
        echo "bench_train_mixers: round $((r + 1))/$rounds $v" >&2
        "$bin" "${flags[@]}" --steps="$steps" --threads="$threads" --variants="$v" --run-dir="$tmp/run" --overwrite --verbose \
            2>"$tmp/err" | grep '^{' >>"$tmp/raw"
    done
done
load="$load_before to $(cut -d' ' -f1 /proc/loadavg)"
kernel=$(grep -m1 -o 'OpenBLAS kernel [^,]*' "$tmp/err" || echo "OpenBLAS kernel unknown")
cpu=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["cpu"])' "$tmp/run/config.json")
python3 - "$tmp/raw" "$variants" "$rounds" "$steps" "$threads" "$load" "$kernel" "$cpu" "$task" "${flags[*]}" \
    "$tok_key" "$tok_name" "$title" <<'EOF'
import json, statistics, sys, subprocess
raw, variants, rounds, steps, threads, load, kernel, cpu, task, flags, tok_key, tok_name, title = sys.argv[1:]
variants = variants.split(",")
rows = [json.loads(l) for l in open(raw)]
by = {v: [r for r in rows if r["variant"] == v] for v in variants}
med = {v: (statistics.median(r[tok_key] for r in rs), statistics.median(r["steps_s"] for r in rs)) for v, rs in by.items()}
base = variants[0]
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"# Sequence mixers: training throughput in {title}\n")
print(f"`bash scripts/bench_train_mixers.sh {task} {','.join(variants)} {rounds}`: `build/{task} {flags} --steps={steps} "
      f"--threads={threads}` per variant (the preset's model and batches, one seed). Median of {rounds} interleaved rounds "
      f"of the steps' own time (no evaluation, no decoding); machine: {cpu} ({nproc} CPUs), {kernel}; 1-minute load "
      f"average {load}.\n")
print(f"| variant | params | {tok_name} | train steps/s | vs {base} |")
print("|---|---|---|---|---|")
for v in variants:
    t, s = med[v]
    print(f"| {v} | {by[v][0]['params']} | {t:,.0f} | {s:.2f} | {s / med[base][1]:.2f}x |")
if "R" in med and "DynamicConv" in med:
    print(f"\nThe paper (C4 pre-training, T5-base scale on TPU): R / DynamicConv = 1.61x steps/s. Here: "
          f"R / DynamicConv = {med['R'][1] / med['DynamicConv'][1]:.2f}x" +
          (f", R / V = {med['R'][1] / med['V'][1]:.2f}x." if "V" in med else "."))
EOF
