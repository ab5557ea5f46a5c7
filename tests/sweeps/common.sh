# tests/sweeps/common.sh: sourced by the sweep tests. The tiny sweep every back-end runs, and
# the comparison of merged reports.
#   SWEEP_TEST_RUNNER   the runner the sweeps use: lm (default, the real build/lm) or a path;
#                       tests/sweeps/fake_runner.sh (the test double) checks the tests themselves
#   SWEEP_TEST_OUT      where each back-end's report is copied (default build/test-sweeps)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
RUNNER=${SWEEP_TEST_RUNNER:-lm}
REPORTS=${SWEEP_TEST_OUT:-$ROOT/build/test-sweeps}
mkdir -p "$REPORTS"

say() { echo "${0##*/}: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# The real runner must have the run-directory interface scripts/sweep builds on.
check_runner() {
    if [[ $RUNNER == lm || $RUNNER == mt ]]; then
        [[ -x build/$RUNNER ]] || fail "build/$RUNNER is missing (make -j2 all)"
        # Not `--help | grep -q`: grep exits at the first match and, under pipefail, the runner's
        # SIGPIPE on the rest of its help would fail the check.
        [[ $(build/"$RUNNER" --help 2>&1) == *run-dir* ]] ||
            fail "build/$RUNNER has no --run-dir yet (the run-directory work is not in this tree);" \
                 "SWEEP_TEST_RUNNER=tests/sweeps/fake_runner.sh runs this test against the test double"
    fi
}

# tiny_sweep: writes $REPORTS/tiny.sweep and the small generated corpus it trains on, at the
# same paths for every test (the reports may record the flags): 2 variants x 2 seeds, a few
# steps of a one-block model, one thread per run so that every back-end computes the same
# numbers. Prints the sweep file's path.
tiny_sweep() {
    for i in $(seq 1 2000); do echo "the quick brown fox $i jumps over the lazy dog; so it goes."; done >"$REPORTS/tiny.txt"
    cat >"$REPORTS/tiny.sweep" <<SWEEP
# The sweep of tests/sweeps: 4 runs of a few seconds each.
name: tiny
binary: $RUNNER
fixed: --data=$REPORTS/tiny.txt --preset=quick --steps=6 --warmup=2 --eval-every=3 --eval-batches=2
fixed: --d-model=32 --layers=1 --heads=2 --d-ff=64 --seq=32 --batch=4
grid: --variants=V,R
grid: --seeds=1,2
SWEEP
    echo "$REPORTS/tiny.sweep"
}

# normalised STEM.csv: the report without the columns that differ between two executions of
# the same runs (wall time, throughput, dates, hosts, paths), rows sorted. A column is dropped
# when its header names one of those. perl-base is Essential in Debian, so it is always there.
normalised() {
    perl -e '
        sub fields { my @f; my $l = $_[0]; while ($l =~ /\G("(?:[^"]|"")*"|[^,]*)(,|$)/g) { push @f, $1; last if $2 eq ""; } @f }
        my $volatile = qr/(wall|time|tok_s|per_s|_s$|^s$|sec|date|host|dir|path|pid|rss)/i;
        my $h = <STDIN>; chomp $h; $h =~ s/\r$//; my @h = fields($h);
        my @keep = grep { $h[$_] !~ $volatile } 0 .. $#h;
        print join(",", @h[@keep]), "\n";
        my @rows;
        while (my $l = <STDIN>) { chomp $l; $l =~ s/\r$//; next if $l eq ""; my @f = fields($l); push @rows, join(",", @f[@keep]); }
        print "$_\n" for sort @rows;
    ' <"$1"
}

# same_reports A.csv B.csv: the two reports agree on every column that is not volatile.
same_reports() {
    local a b
    a=$(normalised "$1") b=$(normalised "$2")
    [[ $(wc -l <<<"$a") -ge 2 ]] || fail "$1 has no rows"
    if [[ $a != "$b" ]]; then
        diff <(echo "$a") <(echo "$b") >&2 || true
        fail "the reports $1 and $2 differ"
    fi
}

# check_report STEM RUNS: STEM.csv has one row per run and STEM.md exists.
check_report() {
    [[ -s $1.csv && -s $1.md ]] || fail "no report $1.csv / $1.md"
    local rows; rows=$(($(grep -c . "$1.csv") - 1))
    [[ $rows == "$2" ]] || fail "$1.csv has $rows rows, not one per run ($2)"
}

# keep_report STEM RUNS_DIR NAME: copies STEM.csv and STEM.md to $REPORTS/NAME.{csv,md} with the
# test's temporary runs directory written as RUNS, so that reports naming their run
# directories compare equal across back-ends.
keep_report() {
    local ext
    for ext in csv md; do sed "s|$2|RUNS|g" "$1.$ext" >"$REPORTS/$3.$ext"; done
}
