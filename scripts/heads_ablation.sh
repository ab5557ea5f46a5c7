#!/usr/bin/env bash
# The paper's finding 6 (docs/variants.md): "Synthesizers need several heads to work well".
# Trains V, R and D on Tiny Shakespeare (quick preset shapes, d=128) with 1, 2, 4 and 8 heads
# and collects the validation losses into results/lm-tinyshakespeare-heads.md.
#   bash scripts/heads_ablation.sh [extra build/lm flags]
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${VARIANTS:-V,R,D}
out=results/lm-tinyshakespeare-heads.md
for h in 1 2 4 8; do
    ./build/lm --data=tinyshakespeare --preset=quick --variants="$variants" --heads="$h" --tag="heads$h" "$@" >/dev/null
done
{
    echo "# Heads ablation (the paper's finding 6, docs/variants.md): Tiny Shakespeare, quick preset shapes"
    echo
    echo "Produced by \`bash scripts/heads_ablation.sh\`: \`build/lm --preset=quick --variants=$variants --heads=H\`"
    echo "for H in 1, 2, 4, 8 (d_model 128, so d_h = 128 / H). Validation loss in nats (bpc in brackets)."
    echo
    printf '| variant |'; for h in 1 2 4 8; do printf ' H=%s |' "$h"; done; echo
    printf '|---|'; for h in 1 2 4 8; do printf -- '---|'; done; echo
    for v in ${variants//,/ }; do
        printf '| %s |' "$v"
        for h in 1 2 4 8; do
            awk -F, -v v="$v" 'NR > 1 && $1 == v { printf " %s (%s) |", $3, $4 }' "results/lm-tinyshakespeare-quick-heads$h.csv"
        done
        echo
    done
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
