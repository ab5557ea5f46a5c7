#!/usr/bin/env bash
# TEST DOUBLE, not a runner: stands in for build/lm and build/mt in tests/sweeps/sweep_test.sh,
# which checks scripts/sweep itself (names, resuming, failures, the batch script) in seconds.
# It takes the runner interface scripts/sweep relies on:
#   fake_runner.sh [--key=value ...] --run-dir=DIR      writes DIR/config.json, then DIR/result.json
#   fake_runner.sh --report DIR [DIR ...] --out=STEM    STEM.csv (one row per run dir found) and STEM.md
# Its "loss" is a checksum of the flags other than --threads and --run-dir, so it is deterministic.
#   FAKE_RUNNER_FAIL=TEXT   a run whose flags contain TEXT exits 3 without result.json
#   FAKE_RUNNER_SLEEP=S     each run sleeps S seconds first
# Like the real runners it claims its run directory for its lifetime (src/runs/run_claim.h): a
# second fake runner on a directory whose first is still going exits 2 naming it.
set -euo pipefail

if [[ ${1:-} == --report ]]; then
    shift
    dirs=() out=""
    for a in "$@"; do
        case $a in --out=*) out=${a#--out=} ;; *) dirs+=("$a") ;; esac
    done
    [[ -n $out && ${#dirs[@]} -gt 0 ]] || { echo "fake_runner: --report DIR... --out=STEM" >&2; exit 2; }
    rows=$(find "${dirs[@]}" -name result.json -exec dirname {} \; | sort -u | while read -r d; do
        sed -n 's/^{"flags":"\(.*\)","loss":\([0-9]*\),"wall_s":\([0-9]*\)}$/"\1",\2,\3/p' "$d/result.json"
    done | sort)
    { echo "flags,loss,wall_s"; echo "$rows"; } >"$out.csv"
    { echo "# fake report"; echo; echo "$rows" | sed 's/,[0-9]*$//; s/^/- /'; } >"$out.md"
    exit 0
fi

run_dir="" flags=()
for a in "$@"; do
    case $a in
        --run-dir=*) run_dir=${a#--run-dir=} ;;
        --threads=*) ;;
        --*) flags+=("$a") ;;
        *) echo "fake_runner: unexpected argument '$a'" >&2; exit 2 ;;
    esac
done
[[ -n $run_dir ]] || { echo "fake_runner: --run-dir=DIR is required" >&2; exit 2; }
echo "fake_runner: $* (pid $$)"
mkdir -p "$run_dir"
exec 8>>"$run_dir/.claim.lock"
if ! flock -n 8; then
    echo "fake_runner: run directory $run_dir is in use by another run: $(cat "$run_dir/claim.json" 2>/dev/null)" >&2
    exit 2
fi
echo "{\"pid\": $$}" >"$run_dir/claim.json"
sleep "${FAKE_RUNNER_SLEEP:-0}"
printf '{"argv":"%s"}\n' "$*" >"$run_dir/config.json"
if [[ -n ${FAKE_RUNNER_FAIL:-} && "${flags[*]}" == *"$FAKE_RUNNER_FAIL"* ]]; then
    echo "fake_runner: failing as FAKE_RUNNER_FAIL asks" >&2
    exit 3
fi
loss=$(printf '%s\n' "${flags[@]}" | sort | cksum | cut -d' ' -f1)
printf '{"flags":"%s","loss":%s,"wall_s":%s}\n' "${flags[*]}" "$loss" "$RANDOM" >"$run_dir/result.json.tmp"
mv "$run_dir/result.json.tmp" "$run_dir/result.json"
rm -f "$run_dir/claim.json"
