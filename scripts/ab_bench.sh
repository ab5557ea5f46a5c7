#!/usr/bin/env bash
# ab_bench.sh: before/after throughput of two builds of build/lm on the benchmark shape of
# `make bench` (d_model 256, 4 layers, 4 heads, d_ff 1024, seq 128, batch 32, no dropout),
# alternating A and B so that drifting machine load hits both alike. Median of the runs.
#
#   bash scripts/ab_bench.sh OLD_LM NEW_LM [VARIANTS] [REPS] > results/bench-before-after.md
#
# Environment: AB_THREADS [2], AB_STEPS [10], AB_INFER_STEPS [20], AB_WAIT_POLICY [ACTIVE]
# (OMP_WAIT_POLICY of both builds; ACTIVE is the faster on an idle machine, see bench.sh),
# AB_SEQ [128] (sequence length; the batch keeps 4096 tokens per step).
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 OLD_LM NEW_LM [VARIANTS=V,R,D] [REPS=3]" >&2; exit 1; }
old=$1 new=$2 variants=${3:-V,R,D} reps=${4:-3}
threads=${AB_THREADS:-2} steps=${AB_STEPS:-10} infer=${AB_INFER_STEPS:-20} policy=${AB_WAIT_POLICY:-ACTIVE}
seq=${AB_SEQ:-128}
((seq > 0 && 4096 % seq == 0)) || { echo "error: AB_SEQ=$seq must divide 4096" >&2; exit 1; }
for bin in "$old" "$new"; do [[ -x $bin ]] || { echo "error: $bin is not an executable" >&2; exit 1; }; done
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
run() {  # run LABEL BINARY VARIANT
    OMP_WAIT_POLICY="$policy" "$2" --bench --preset=none --vocab=65 --d-model=256 --layers=4 --heads=4 --d-ff=1024 \
        --dropout=0 --attn-dropout=0 --threads="$threads" --seq="$seq" --batch=$((4096 / seq)) --variants="$3" \
        --bench-steps="$steps" --bench-infer-steps="$infer" | grep '^{' | sed "s/^{/{\"build\":\"$1\",/" >>"$raw"
}
IFS=, read -ra vs <<<"$variants"
for ((r = 0; r < reps; ++r)); do
    for v in "${vs[@]}"; do
        echo "ab_bench: rep $((r + 1))/$reps $v" >&2
        run before "$old" "$v"
        run after "$new" "$v"
    done
done
echo "# Before/after: build/lm --bench"
echo
echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ); CPU: $(nproc) x $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "- before: \`$old\`; after: \`$new\`; seq $seq, batch $((4096 / seq)), $threads threads, OMP_WAIT_POLICY=$policy, $reps alternating runs each, median shown"
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$raw" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| variant | train tok/s before | after | ratio | infer tok/s before | after | ratio | peak RSS MB before | after |")
print("|---|---|---|---|---|---|---|---|---|")
for v in dict.fromkeys(r["variant"] for r in rows):
    m = {b: {k: st.median(r[k] for r in rows if r["variant"] == v and r["build"] == b)
             for k in ("train_tokens_per_s", "infer_tokens_per_s", "peak_rss_mb")} for b in ("before", "after")}
    b, a = m["before"], m["after"]
    print(f"| {v} | {b['train_tokens_per_s']:.0f} | {a['train_tokens_per_s']:.0f} | "
          f"{a['train_tokens_per_s'] / b['train_tokens_per_s']:.2f}x | {b['infer_tokens_per_s']:.0f} | "
          f"{a['infer_tokens_per_s']:.0f} | {a['infer_tokens_per_s'] / b['infer_tokens_per_s']:.2f}x | "
          f"{b['peak_rss_mb']:.0f} | {a['peak_rss_mb']:.0f} |")
PY
