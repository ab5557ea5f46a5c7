#!/usr/bin/env bash
# The paper's finding 6 (docs/variants.md): "Synthesizers need several heads to work well".
# Trains V, R and D on Tiny Shakespeare (quick preset shapes, d=128) with 1, 2, 4 and 8 heads,
# one run directory per (heads, variant, seed) under runs/, then the report step merges them
# into results/lm-tinyshakespeare-heads.{csv,md} (one section per H, mean +- std over seeds).
#   SEEDS=1,2,3 bash scripts/heads_ablation.sh [extra build/lm flags]
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${VARIANTS:-V,R,D}
seeds=${SEEDS:-1,2,3}
dirs=()
for h in 1 2 4 8; do
    ./build/lm --data=tinyshakespeare --preset=quick --variants="$variants" --seeds="$seeds" --heads="$h" \
        --tag="heads$h" "$@" >/dev/null
    dirs+=("runs/lm-tinyshakespeare-quick-heads$h")
done
./build/lm --report --out=results/lm-tinyshakespeare-heads "${dirs[@]}"
