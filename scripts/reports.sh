#!/usr/bin/env bash
# Remakes every committed results table from the committed run directories it was made from.
# A table results/NAME.csv lists its runs in its `run` column; the report step of the binary
# that NAME starts with (lm-, mt-, cls-) merges exactly those runs again into NAME.{csv,md} and
# NAME-budget.csv (each finding at every evaluation step; its header starts with `group,`, so it
# is never taken for a table of runs).
#   bash scripts/reports.sh           rewrite the tables in place (after a change to the report),
#                                     each with its NAME-budget.csv
#   bash scripts/reports.sh --check   rewrite nothing; fail, naming the tables, when a committed
#                                     table (or the NAME-budget.csv committed beside it) is not
#                                     what its runs give (make test runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case ${1:-} in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: bash scripts/reports.sh [--check]" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stale=()
for csv in results/*.csv; do
    head -n 1 "$csv" | grep -q '^run,' || continue    # curves and benchmark tables have no runs
    stem=$(basename "$csv" .csv)
    bin=build/${stem%%-*}
    [[ -x $bin ]] || { echo "reports.sh: $csv needs $bin (run make)" >&2; exit 1; }
    mapfile -t runs < <(tail -n +2 "$csv" | cut -d, -f1)
    "$bin" --report "${runs[@]}" --out="$tmp/$stem" > /dev/null ||
        { echo "reports.sh: cannot remake $csv from the runs it lists" >&2; exit 1; }
    same=1
    cmp -s "$tmp/$stem.csv" "$csv" && cmp -s "$tmp/$stem.md" "results/$stem.md" || same=0
    if ((!check)) || [[ -e results/$stem-budget.csv ]]; then
        cmp -s "$tmp/$stem-budget.csv" "results/$stem-budget.csv" || same=0
    fi
    ((same)) && continue
    stale+=("$stem")
    ((check)) || cp "$tmp/$stem.csv" "$tmp/$stem.md" "$tmp/$stem-budget.csv" results/
done
if ((check && ${#stale[@]})); then
    echo "reports.sh: these tables differ from what their run directories give: ${stale[*]}" >&2
    echo "reports.sh: remake them with: bash scripts/reports.sh" >&2
    exit 1
fi
echo "reports.sh: ${#stale[@]} table(s) $( ((check)) && echo "differ" || echo "rewritten")${stale[*]:+: ${stale[*]}}"
