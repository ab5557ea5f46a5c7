#!/usr/bin/env bash
# tests/mpi/mpi_test.sh BUILD: data-parallel training on MPI ranks (make test-mpi; docs/distributed.md).
#
# Runs BUILD/mpi_train (a tiny LM through the shared Trainer, built with MPI) and the runners
# BUILD/lm, BUILD/cls and BUILD/mt under mpirun and checks:
#   - 2 ranks x B/2 rows against 1 rank x B rows: the same 20 losses within TOL (relative); for an
#     odd B (slices of 4 and 3 rows, weighted by their targets) and 3 ranks within TOL_UNEVEN;
#   - 2 ranks twice: bit-identical losses and parameters, for --allreduce=mpi and =ordered;
#   - a 2-rank run resumed from its step-10 checkpoint: bit-identical to the uninterrupted run;
#     resumed with 1 rank: within TOL;
#   - build/lm, build/cls (ListOps) and build/mt, tiny: 2 ranks = 1 rank within TOL over 20 steps,
#     2 ranks twice bit-identical, one run directory written by rank 0 (config.json "ranks": 2);
#   - a rank that throws, and a rank killed with SIGKILL: a non-zero exit, a message naming the
#     rank on rank 0's stderr, and no output file.
# mpirun runs as root only with --allow-run-as-root (CI runs as root); --oversubscribe lets 3 ranks
# share 2 cores; --bind-to none keeps a rank's threads off a single core.
set -euo pipefail

build=${1:-build}
bin=$build/mpi_train
[[ -x $bin ]] || { echo "mpi_test: $bin not built (make MPI=1 $bin)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpi_test: mpirun not found (SYNTH_WITH_MPI=1 bash scripts/deps.sh)" >&2; exit 1; }
# 20 steps of a 70k-parameter LM: the ranks' summation orders differ (GEMMs over fewer rows, the
# ranks' sum), which moves losses by float ulps; AdamW then divides near-zero gradients by their
# own size, so a rounding difference there becomes a step of lr and grows. A batch the ranks split
# unevenly (7 rows: 4 + 3, or 3 + 2 + 2) grows most: on some OpenBLAS kernels a row of a product
# rounds differently for another number of rows. Measured: 2 ranks of an 8-row batch <= 1.1e-7
# relative (AMD EPYC Zen 5 and Zen 3); a 7-row batch, 3 ranks 7.6e-5 (Zen 5), 2 ranks 7.5e-5
# (Zen 3, OpenBLAS kernel Zen). TOL (even splits) and TOL_UNEVEN leave room.
TOL=${MPI_TEST_TOL:-1e-5}
TOL_UNEVEN=${MPI_TEST_TOL_UNEVEN:-1e-3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi=(mpirun --oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && mpi+=(--allow-run-as-root)
export OMPI_MCA_mpi_yield_when_idle=1  # a waiting rank yields its core (the ranks share 2 here)
common=(--threads=1 --steps=20 --warmup=5 --prefix="$tmp/ckpt")
failures=0

ok() { echo "ok   $*"; }
bad() {
    echo "FAIL $*"
    failures=$((failures + 1))
}
run() {  # run NAME RANKS ARGS...: rank 0 writes $tmp/NAME
    local name=$1 n=$2
    shift 2
    if ((n == 1)); then
        "$bin" "${common[@]}" --out="$tmp/$name" "$@" >"$tmp/$name.log" 2>&1
    else
        "${mpi[@]}" -np "$n" "$bin" "${common[@]}" --out="$tmp/$name" "$@" >"$tmp/$name.log" 2>&1
    fi || { cat "$tmp/$name.log"; bad "$name: exit status $?"; return 1; }
}
# close A B: every step's loss and the validation loss within TOL, relative.
close() {
    awk -v tol="${3:-$TOL}" 'NR == FNR { if ($1 == "params") next; a[FNR] = $NF; n = FNR; next }
        $1 != "params" { d = $NF - a[FNR]; if (d < 0) d = -d; r = d / (a[FNR] < 0 ? -a[FNR] : a[FNR]);
                         if (r > worst) worst = r; m++ }
        END { printf "%d values, worst relative difference %.2e\n", m, worst; exit !(m == n && worst <= tol) }' "$1" "$2"
}

# --- 2 (and 3) ranks against 1 -----------------------------------------------------------------------
for b in 8 7; do
    run one-b$b 1 --batch=$b && run two-b$b 2 --batch=$b || continue
    tol=$TOL; ((b % 2 == 0)) || tol=$TOL_UNEVEN
    if msg=$(close "$tmp/one-b$b" "$tmp/two-b$b" "$tol"); then ok "batch $b: 2 ranks = 1 rank within $tol ($msg)"
    else bad "batch $b: 2 ranks differ from 1 rank ($msg)"; paste "$tmp/one-b$b" "$tmp/two-b$b"; fi
done
if run three-b7 3 --batch=7; then
    if msg=$(close "$tmp/one-b7" "$tmp/three-b7" "$TOL_UNEVEN"); then ok "batch 7: 3 ranks = 1 rank within $TOL_UNEVEN ($msg)"
    else bad "batch 7: 3 ranks differ from 1 rank ($msg)"; fi
fi

# --- 2 ranks twice -----------------------------------------------------------------------------
for how in mpi ordered; do
    run twice-$how-a 2 --batch=7 --allreduce=$how && run twice-$how-b 2 --batch=7 --allreduce=$how || continue
    if cmp -s "$tmp/twice-$how-a" "$tmp/twice-$how-b"; then ok "--allreduce=$how: 2 ranks twice are bit-identical"
    else bad "--allreduce=$how: 2 ranks twice differ"; fi
done
if msg=$(close "$tmp/one-b7" "$tmp/twice-ordered-a" "$TOL_UNEVEN"); then ok "--allreduce=ordered: 2 ranks = 1 rank within $TOL_UNEVEN ($msg)"
else bad "--allreduce=ordered: 2 ranks differ from 1 rank ($msg)"; fi

# --- resume --------------------------------------------------------------------------------------
if run full 2 --batch=8 --save-every=10 && [[ -f $tmp/ckpt-step10.ckpt ]]; then
    if run resumed 2 --batch=8 --resume="$tmp/ckpt-step10.ckpt"; then
        # The resumed run's file holds steps 11-20: the uninterrupted run's last 10 lines and more.
        if cmp -s <(tail -n 12 "$tmp/full") "$tmp/resumed"; then ok "2 ranks resumed at step 10 = uninterrupted, bit for bit"
        else bad "2 ranks resumed at step 10 differ from the uninterrupted run"; paste <(tail -n 12 "$tmp/full") "$tmp/resumed"; fi
    fi
    if run resumed-one 1 --batch=8 --resume="$tmp/ckpt-step10.ckpt"; then
        if msg=$(close <(tail -n 12 "$tmp/full") "$tmp/resumed-one"); then ok "2-rank checkpoint resumed on 1 rank: within $TOL ($msg)"
        else bad "2-rank checkpoint resumed on 1 rank differs ($msg)"; fi
    fi
else
    bad "the 2-rank run wrote no step-10 checkpoint"
fi

# --- the runners: build/lm, build/cls, build/mt ----------------------------------------------------------
# Each tiny (20 steps, 1 thread per rank, no dropout): 2 ranks against 1 rank, the per-step train
# losses of metrics.jsonl within TOL; 2 ranks twice bit-identical (metrics.jsonl, final.ckpt); one
# run directory, written by rank 0 alone, whose config.json says "ranks": 2, and one JSON line
# (--verbose prints each run's result line on stdout: rank 0 alone prints it).
runner() {  # runner NAME RANKS BINARY ARGS...: the run directory $tmp/NAME
    local name=$1 n=$2 b=$3
    shift 3
    # The same --run-dir for every run of a binary (checkpoints record the flags), moved away after.
    local cmd=("$build/$b" --threads=1 --steps=20 --variants=V --verbose --run-dir="$tmp/run-$b" "$@")
    ((n == 1)) || cmd=("${mpi[@]}" -np "$n" "${cmd[@]}")
    "${cmd[@]}" >"$tmp/$name.out" 2>"$tmp/$name.log" || { cat "$tmp/$name.log"; bad "$name: exit status $?"; return 1; }
    mv "$tmp/run-$b" "$tmp/$name"
}
losses() {  # losses RUN_DIR: "step train_loss" and "vstep val_loss" lines
    awk -F'[:,] *' '{ for (i = 1; i < NF; ++i) { if ($i == "\"step\"") s = $(i + 1)
                                                 if ($i == "{\"step\"") s = $(i + 1)
                                                 if ($i == "\"train_loss\"") print s, $(i + 1)
                                                 if ($i == "\"val_loss\"") print "v" s, $(i + 1) } }' "$1/metrics.jsonl"
}
check_runner() {  # check_runner NAME BINARY ARGS...
    local name=$1 b=$2 msg
    shift 2
    runner "$name-1" 1 "$b" "$@" && runner "$name-2" 2 "$b" "$@" && runner "$name-2b" 2 "$b" "$@" || return 0
    if msg=$(close <(losses "$tmp/$name-1") <(losses "$tmp/$name-2")) && (($(losses "$tmp/$name-1" | wc -l) >= 21)); then
        ok "build/$b: 2 ranks = 1 rank within $TOL ($msg)"
    else bad "build/$b: 2 ranks differ from 1 rank ($msg)"; paste <(losses "$tmp/$name-1") <(losses "$tmp/$name-2"); fi
    if cmp -s "$tmp/$name-2/metrics.jsonl" "$tmp/$name-2b/metrics.jsonl" && cmp -s "$tmp/$name-2/final.ckpt" "$tmp/$name-2b/final.ckpt"
    then ok "build/$b: 2 ranks twice are bit-identical (metrics.jsonl, final.ckpt)"
    else bad "build/$b: 2 ranks twice differ"; fi
    local d=$tmp/$name-2 stray
    stray=$(find "$d" -name '*.tmp.*' | head -1)
    if grep -q '"ranks": 2' "$d/config.json" && [[ -s $d/result.json && -z $stray ]] &&
        (($(grep -c '"variant"' "$tmp/$name-2.out") == 1)) && ! grep -q "rank 1" "$tmp/$name-2.log"; then
        ok "build/$b: one run directory (config.json \"ranks\": 2, result.json), one JSON line"
    else bad "build/$b: the 2-rank run directory or output"; ls -la "$d"; cat "$tmp/$name-2.out"; fi
}
if [[ -x $build/lm && -x $build/cls && -x $build/mt ]]; then
    check_runner lm lm --preset=quick --d-model=32 --layers=1 --batch=8 --seq=32 --warmup=5
    check_runner cls cls --task=listops --preset=quick --warmup=5 --listops-dir="$tmp/listops"
    m30k=data/cache/multi30k_en_de
    if [[ -f $m30k/train.en ]]; then
        mkdir -p "$tmp/m30k"  # 400 lines of each split: a BPE learned in no time
        for f in train val test2016; do for l in en de; do head -n 400 "$m30k/$f.$l" >"$tmp/m30k/$f.$l"; done; done
        check_runner mt mt --data="$tmp/m30k" --preset=quick --warmup=5 --test-sets=test2016 --bpe-vocab=500 \
            --batch-tokens=512 --decode-limit=10
    else echo "skip build/mt: no $m30k (make data)"; fi
else
    bad "build/lm, build/cls or build/mt not built (make MPI=1 all)"
fi

# --- failures --------------------------------------------------------------------------------------
status=0
"${mpi[@]}" -np 2 "$bin" "${common[@]}" --batch=8 --fail-at=5 --out="$tmp/failed" >"$tmp/failed.log" 2>&1 || status=$?
if ((status != 0)) && grep -q "error: \[rank 1 of 2" "$tmp/failed.log" && [[ ! -e $tmp/failed ]]; then
    ok "a rank that throws: exit $status, its message, no output"
else
    bad "a rank that throws: exit $status"; cat "$tmp/failed.log"
fi

mkdir -p "$tmp/pids"
status=0
"${mpi[@]}" -np 2 "$bin" "${common[@]}" --batch=8 --steps=1000000 --pid-dir="$tmp/pids" --out="$tmp/killed" \
    >"$tmp/killed.log" 2>&1 &
job=$!
for _ in $(seq 600); do [[ -s $tmp/pids/rank1.pid ]] && grep -q "step " "$tmp/killed.log" && break; sleep 0.1; done
kill -9 "$(cat "$tmp/pids/rank1.pid")"
wait "$job" || status=$?
if ((status != 0)) && grep -q "error: \[rank 0 of 2.*\(SIGTERM\|MPI failed\)" "$tmp/killed.log" && [[ ! -e $tmp/killed ]]; then
    ok "a rank killed: exit $status, rank 0 says so, no output"
else
    bad "a rank killed: exit $status"; cat "$tmp/killed.log"
fi

if ((failures)); then
    echo "mpi_test: $failures failed"
    exit 1
fi
echo "mpi_test: all passed"
