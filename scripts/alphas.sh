#!/usr/bin/env bash
# The mixture weights alpha over training (docs/analysis.md) of finished LM runs of a mixture
# (R+V, D+V, R+D) that saved step checkpoints (--save-every=N; --keep-last=0 keeps them all):
#
#   bash scripts/alphas.sh OUT_STEM RUN_DIR [RUN_DIR...]
#
# dumps every step checkpoint of each run (build/lm --dump-attention), then writes
#   OUT_STEM.csv               one row per (run, step, layer, head, component): alpha
#   OUT_STEM.md                the last step's alpha per layer and head, mean +- std over the runs
#                              (and, given step checkpoints, how far alpha has moved at each step)
#   OUT_STEM-<run name>.png    alpha against step, one panel per layer (plot_attention.py), for
#                              a run with two step checkpoints or more
# The dumps themselves (attention maps of every step, large) stay in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
out=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
csv="$tmp/alphas.csv"
echo "run,step,layer,head,component,alpha" >"$csv"
for run in "$@"; do
    [ -f "$run/result.json" ] || { echo "alphas.sh: $run is not a finished run directory (no result.json)" >&2; exit 1; }
    name=$(basename "$run")
    mkdir -p "$tmp/$name"
    shopt -s nullglob
    ckpts=()
    for c in "$run"/*-step*.ckpt; do [[ $c == *.best.ckpt ]] || ckpts+=("$c"); done
    shopt -u nullglob
    [ ${#ckpts[@]} -ge 1 ] || { echo "alphas.sh: $run has no step checkpoint; train with --save-every=N" >&2; exit 1; }
    # The dump runs validation text of the run's own data set (its vocabulary must match).
    data=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["flag.data"])' "$run/config.json")
    for c in "${ckpts[@]}"; do
        # Alpha does not depend on the input: one validation batch is enough for the dump.
        ./build/lm --dump-attention="$tmp/$name/$(basename "$c" .ckpt).json" --checkpoint="$c" --data="$data" \
            --eval-batches=1 2>"$tmp/dump.log" || { cat "$tmp/dump.log" >&2; exit 1; }
    done
    python3 - "$name" "$tmp/$name"/*.json >>"$csv" <<'EOF'
import json, sys
name = sys.argv[1]
for p in sys.argv[2:]:
    d = json.load(open(p))
    if len(d["components"]) < 2:
        sys.exit(f"alphas.sh: {p}: {d['variant']} is not a mixture")
    for l, layer in enumerate(d["alphas"]):
        for h, a in enumerate(layer):
            for c, comp in enumerate(d["components"]):
                print(f"{name},{d['step']},{l},{h},{comp},{a[c]:.6f}")
EOF
    if [ ${#ckpts[@]} -ge 2 ]; then
        ./scripts/plot_attention.py alphas "$out-$name.png" "$tmp/$name"/*.json
    else  # the last step's weights still go into the table
        echo "alphas.sh: $run keeps one step checkpoint, so no picture over training (--keep-last=0 keeps them all)" >&2
    fi
done
# Stable (-s): the components keep the order of the variant's name (R+D: R first).
sort -s -t, -k1,1 -k2,2n -k3,3n -k4,4n "$csv" -o "$csv.sorted"
{ head -1 "$csv"; grep -v '^run,' "$csv.sorted"; } >"$out.csv.tmp"
mv "$out.csv.tmp" "$out.csv"
python3 - "$out.csv" >"$out.md.tmp" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = {}
for r in rows:
    last[r["run"]] = max(last.get(r["run"], 0), int(r["step"]))
final = [r for r in rows if int(r["step"]) == last[r["run"]]]
comps = list(dict.fromkeys(r["component"] for r in final))
layers = sorted({int(r["layer"]) for r in final})
heads = sorted({int(r["head"]) for r in final})
print(f"# Mixture weights at the end of training: alpha of {comps[0]} (of {'+'.join(comps)})\n")
print(("Mean +- sample std over {} runs".format(len(last)) if len(last) > 1 else "One run") +
      f" ({', '.join(sorted(last))}), at {'their' if len(last) > 1 else 'its'} last step "
      f"checkpoint (step {', '.join(sorted({str(s) for s in last.values()}))}). alpha = softmax(w) starts at "
      f"1/{len(comps)}; the other components share the rest (scripts/alphas.sh, docs/analysis.md).\n")
print("| layer | " + " | ".join(f"head {h}" for h in heads) + " |")
print("|---|" + "---|" * len(heads))
for l in layers:
    cells = []
    for h in heads:
        a = [float(r["alpha"]) for r in final if int(r["layer"]) == l and int(r["head"]) == h and r["component"] == comps[0]]
        cells.append(f"{statistics.mean(a):.3f}" + (f" +- {statistics.stdev(a):.3f}" if len(a) > 1 else ""))
    print(f"| {l} | " + " | ".join(cells) + " |")
# How far the weights have moved from their start, step by step (a run with step checkpoints).
steps = sorted({int(r["step"]) for r in rows})
if len(steps) > 1:
    def moved(s):
        a = [float(r["alpha"]) for r in rows if int(r["step"]) == s and r["component"] == comps[0]]
        return statistics.mean(abs(x - 1 / len(comps)) for x in a)
    print(f"\nMean |alpha - 1/{len(comps)}| of {comps[0]} over every layer and head"
          f"{' and run' if len(last) > 1 else ''}, by step: " + ", ".join(f"{s}: {moved(s):.3f}" for s in steps) + ".")
EOF
mv "$out.md.tmp" "$out.md"
echo "wrote $out.csv and $out.md"
