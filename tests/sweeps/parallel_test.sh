#!/usr/bin/env bash
# tests/sweeps/parallel_test.sh: the tiny sweep of tests/sweeps/common.sh through GNU parallel
# and through scripts/sweep's own local pool, and the check that their merged reports agree
# with each other and with slurm_test.sh's (build/test-sweeps/slurm.csv) on every column but
# timings: three ways of running the same runs give the same numbers. Without slurm.csv it
# compares the two and says so, unless SWEEP_TEST_REQUIRE_SLURM=1 (make test-sweeps).
source "$(dirname "$0")/common.sh"
command -v parallel >/dev/null && [[ $(parallel --version 2>/dev/null) == *'GNU parallel'* ]] ||
    SYNTH_WITH_SWEEPS=1 bash scripts/deps.sh
check_runner

W=$(mktemp -d /tmp/synth-parallel.XXXXXX)
trap 'rm -rf "$W"' EXIT
sweep=$(tiny_sweep)

start=$SECONDS
scripts/sweep parallel "$sweep" --runs-dir="$W/parallel" -j 2 --threads=1
say "GNU parallel took $((SECONDS - start)) s"
check_report "$W/parallel/tiny/report" 4
[[ -n $(find "$W/parallel/tiny/logs" -name 'parallel-*.joblog') ]] || fail "no GNU parallel joblog"

start=$SECONDS
scripts/sweep local "$sweep" --runs-dir="$W/local" -j 2 --threads=1
say "the local pool took $((SECONDS - start)) s"
check_report "$W/local/tiny/report" 4

keep_report "$W/parallel/tiny/report" "$W/parallel" parallel
keep_report "$W/local/tiny/report" "$W/local" local
same_reports "$REPORTS/parallel.csv" "$REPORTS/local.csv"
if [[ -e $REPORTS/slurm.csv && $REPORTS/slurm.csv -nt $ROOT/build/lm ]]; then
    same_reports "$REPORTS/parallel.csv" "$REPORTS/slurm.csv"
    say "ok: the GNU parallel, local and Slurm reports agree"
elif [[ ${SWEEP_TEST_REQUIRE_SLURM:-0} == 1 ]]; then
    fail "no $REPORTS/slurm.csv newer than build/lm (run tests/sweeps/slurm_test.sh first)"
else
    say "ok: the GNU parallel and local reports agree (no slurm.csv from slurm_test.sh to compare)"
fi
