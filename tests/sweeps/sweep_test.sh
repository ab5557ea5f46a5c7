#!/usr/bin/env bash
# tests/sweeps/sweep_test.sh: scripts/sweep itself, in a second, against the test double
# tests/sweeps/fake_runner.sh: the commands and run names, the sweep file and --grid agreeing,
# errors, threads, resuming, failed runs, and the Slurm batch script (--dry-run, no Slurm).
source "$(dirname "$0")/common.sh"
W=$(mktemp -d /tmp/synth-sweep.XXXXXX)
trap 'rm -rf "$W"' EXIT
sweep=scripts/sweep
fake=tests/sweeps/fake_runner.sh

cat >"$W/g.sweep" <<SWEEP
# comment
binary: $fake
fixed: --steps=5   --preset=quick
grid: --variants=V,R+V
grid: --seeds=1,2
grid: --data=a/b.txt,c
SWEEP

# The commands: one per run, first axis slowest, names from the axis values, deterministic.
expected=""
for v in V R+V; do for s in 1 2; do for d in a/b.txt c; do
    expected+="$fake --steps=5 --preset=quick --variants=$v --seeds=$s --data=$d --run-dir=runs/g/variants-${v}_seeds-${s}_data-${d//\//_}"$'\n'
done; done; done
got=$("$sweep" commands "$W/g.sweep")
[[ "$got"$'\n' == "$expected" ]] || { diff <(echo "$got") <(printf %s "$expected") >&2; fail "commands"; }
[[ $("$sweep" commands "$W/g.sweep") == "$got" ]] || fail "commands are not deterministic"

# The same grid from the command line.
cli=$("$sweep" commands --name=g --binary="$fake" --fixed='--steps=5 --preset=quick' \
    --grid=--variants=V,R+V --grid --seeds=1,2 --grid=--data=a/b.txt,c)
[[ $cli == "$got" ]] || fail "--grid/--fixed/--name differ from the sweep file"
[[ $("$sweep" commands --name=one --fixed=--steps=1) == "build/lm --steps=1 --run-dir=runs/one/run" ]] ||
    fail "a sweep without axes is one run named 'run'"

# Errors: exit 2 and a message.
must_fail() {
    local what=$1; shift
    if out=$("$@" 2>&1); then fail "$what: succeeded"; fi
    [[ $out == scripts/sweep:* ]] || fail "$what: no message ($out)"
}
must_fail "two axes for one flag" "$sweep" commands "$W/g.sweep" --grid=--seeds=3
must_fail "an axis that is also fixed" "$sweep" commands "$W/g.sweep" --grid=--steps=1,2
must_fail "--run-dir given" "$sweep" commands "$W/g.sweep" --fixed=--run-dir=x
must_fail "run names that collide" "$sweep" commands --name=x --grid=--data=a/b,a_b
must_fail "an empty value" "$sweep" commands --name=x --grid=--heads=1,,2
must_fail "no name" "$sweep" commands --grid=--heads=1,2
must_fail "-j 0" "$sweep" local "$W/g.sweep" -j 0
printf 'binary: lm\nsteps: 5\n' >"$W/bad.sweep"
must_fail "an unknown key" "$sweep" commands "$W/bad.sweep"
[[ $("$sweep" --help) == 'Usage: scripts/sweep'* ]] || fail "--help"

# local: every run, with cores / N threads, then the report.
cat >"$W/t.sweep" <<SWEEP
binary: $fake
grid: --variants=V,R
grid: --seeds=1,2
SWEEP
R="$W/runs/t"
"$sweep" local "$W/t.sweep" -j 2 --runs-dir="$W/runs" 2>"$W/out" || fail "local: $(cat "$W/out")"
check_report "$R/report" 4
t=$(($(nproc) / 2)); ((t >= 1)) || t=1
grep -q -- "--threads=$t" "$R/variants-V_seeds-1/config.json" || fail "local -j 2 did not give --threads=$t"
# Resuming: nothing to run, then only the run whose result.json is gone.
"$sweep" local "$W/t.sweep" -j 2 --runs-dir="$W/runs" 2>"$W/out"
grep -q '4 runs, 0 to run' "$W/out" || fail "a finished sweep ran again: $(cat "$W/out")"
rm "$R/variants-R_seeds-2/result.json"
"$sweep" local "$W/t.sweep" --runs-dir="$W/runs" 2>"$W/out"
grep -q '4 runs, 1 to run' "$W/out" && grep -q '\[1/1\] variants-R_seeds-2' "$W/out" || fail "resume: $(cat "$W/out")"
grep -q -- "--threads=$(nproc)" "$R/variants-R_seeds-2/config.json" || fail "local -j 1 did not give every core"
# The seeds are fixed at the first launch (seeds.plan): more seeds later are refused.
[[ $(cat "$R/seeds.plan") == 1,2 ]] || fail "seeds.plan: $(cat "$R/seeds.plan" 2>&1)"
sed 's/--seeds=1,2/--seeds=1,2,3/' "$W/t.sweep" >"$W/t3.sweep"
must_fail "seeds grown after the first launch" "$sweep" local "$W/t3.sweep" --name=t --runs-dir="$W/runs"

# A failed run: the others finish, the report has them, the exit status says so.
rm -rf "$R"
if FAKE_RUNNER_FAIL=--variants=R "$sweep" local "$W/t.sweep" -j 2 --threads=1 --runs-dir="$W/runs" 2>"$W/out"; then
    fail "a sweep with failed runs exited 0"
fi
grep -q 'run variants-R_seeds-1 failed (exit 3), log: ' "$W/out" || fail "the failure is not reported: $(cat "$W/out")"
grep -q 'failing as FAKE_RUNNER_FAIL asks' "$R/logs/variants-R_seeds-1.log" || fail "the run's log"
check_report "$R/report" 2
# Run again, an interrupted run with step checkpoints continues from the newest one (by step,
# not by name; never a best-parameters companion); one without checkpoints starts afresh.
d="$R/variants-R_seeds-1"
touch "$d/checkpoint-step4.ckpt" "$d/checkpoint-step12.ckpt" "$d/checkpoint-step12.best.ckpt" "$d/checkpoint-step8.ckpt"
"$sweep" local "$W/t.sweep" --threads=1 --runs-dir="$W/runs" 2>"$W/out" || fail "resume from a step checkpoint: $(cat "$W/out")"
grep -qF -- "--resume=$d/checkpoint-step12.ckpt" "$d/config.json" || fail "not resumed from the newest: $(cat "$d/config.json")"
if grep -qF -- "--resume" "$R/variants-R_seeds-2/config.json"; then fail "a run without checkpoints was resumed"; fi
# The resumed run's log keeps its first attempt; the run that started afresh has a fresh log.
{ grep -q 'failing as FAKE_RUNNER_FAIL asks' "$R/logs/variants-R_seeds-1.log" &&
    grep -qF -- "--resume=$d/checkpoint-step12.ckpt" "$R/logs/variants-R_seeds-1.log"; } || fail "the resumed run's log: $(cat "$R/logs/variants-R_seeds-1.log")"
if grep -q 'failing as FAKE_RUNNER_FAIL asks' "$R/logs/variants-R_seeds-2.log"; then fail "a fresh run appended to its old log"; fi
# --only: just the selected runs, the report still of every finished run of the grid.
rm -rf "$R"
"$sweep" local "$W/t.sweep" --only=--variants=R --threads=1 --runs-dir="$W/runs" 2>"$W/out" || fail "--only: $(cat "$W/out")"
grep -q '4 runs, 2 selected by --only, 2 to run' "$W/out" || fail "--only's count: $(cat "$W/out")"
[[ -e $R/variants-R_seeds-1/result.json && -e $R/variants-R_seeds-2/result.json && ! -e $R/variants-V_seeds-1 ]] || fail "--only ran the wrong runs"
grep -q '2 runs outside --only have not finished: variants-V_seeds-1 variants-V_seeds-2' "$W/out" || fail "--only's report: $(cat "$W/out")"
check_report "$R/report" 2
[[ $("$sweep" commands "$W/t.sweep" --only=--seeds=2 --only=--variants=V) == *"--variants=V --seeds=2 --run-dir="*variants-V_seeds-2 ]] ||
    fail "--only on two axes: $("$sweep" commands "$W/t.sweep" --only=--seeds=2 --only=--variants=V)"
[[ $("$sweep" commands "$W/t.sweep" --only=--seeds=2 | wc -l) == 2 ]] || fail "commands with --only"
must_fail "--only of a flag that is no axis" "$sweep" commands "$W/t.sweep" --only=--heads=1
must_fail "--only of a value not in the axis" "$sweep" commands "$W/t.sweep" --only=--variants=D
must_fail "two --only for one axis" "$sweep" commands "$W/t.sweep" --only=--variants=V --only=--variants=R
# The sweep's own --threads wins over the back-end's.
rm -rf "$R"
"$sweep" local "$W/t.sweep" --fixed=--threads=7 -j 2 --runs-dir="$W/runs" 2>/dev/null
[[ $(grep -o -- '--threads=[0-9]*' "$R/variants-V_seeds-1/config.json") == --threads=7 ]] || fail "--threads in the sweep"
# report alone: a partial report exits 1, a missing sweep too.
rm "$R/variants-V_seeds-2/result.json"
if "$sweep" report "$W/t.sweep" --runs-dir="$W/runs" --out="$W/partial" 2>"$W/out"; then fail "a partial report exited 0"; fi
check_report "$W/partial" 3
grep -q '1 runs have not finished.*variants-V_seeds-2' "$W/out" || fail "the missing run is not named"
must_fail "a report of nothing" "$sweep" report "$W/t.sweep" --runs-dir="$W/none"

# slurm --dry-run: the batch script and its commands file, without Slurm.
rm -rf "$R"
"$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --cpus-per-task=2 --partition=p --time=5 -j 3 --dry-run >"$W/out" 2>/dev/null
script=$(ls "$R"/slurm/*.sh) cmds=$(ls "$R"/slurm/*.commands)
grep -qx -- '#SBATCH --array=0-3%3' "$script" && grep -qx -- '#SBATCH --cpus-per-task=2' "$script" &&
    grep -qx -- '#SBATCH --partition=p' "$script" && grep -qx -- '#SBATCH --time=5' "$script" || fail "batch script: $(cat "$script")"
[[ $(wc -l <"$cmds") == 4 ]] || fail "the commands file has not 4 lines"
grep -qF -- '--threads="${SLURM_CPUS_PER_TASK:-1}"' "$cmds" || fail "Slurm runs do not take --cpus-per-task as --threads"
[[ $(cat "$W/out") == "sbatch $script " ]] || fail "dry run: $(cat "$W/out")"
# Task 2 of the array runs run 2 (line 3), as Slurm would start it.
SLURM_ARRAY_TASK_ID=2 SLURM_CPUS_PER_TASK=2 bash "$script"
[[ -e $R/variants-R_seeds-1/result.json && ! -e $R/variants-V_seeds-2/result.json ]] || fail "task 2 ran the wrong run"
grep -q -- '--threads=2' "$R/variants-R_seeds-1/config.json" || fail "task did not pass SLURM_CPUS_PER_TASK"

# slurm --ntasks-per-run: each array task is one run on N MPI ranks, started by srun.
rm -rf "$R"
"$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --cpus-per-task=4 --ntasks-per-run=3 --dry-run >/dev/null 2>&1 ||
    fail "slurm --ntasks-per-run --dry-run"
script=$(ls "$R"/slurm/*.sh) cmds=$(ls "$R"/slurm/*.commands)
grep -qx -- '#SBATCH --ntasks=3' "$script" && grep -qx -- '#SBATCH --cpus-per-task=4' "$script" ||
    fail "batch script with --ntasks-per-run: $(cat "$script")"
[[ $(grep -c "srun --mpi=pmix --cpu-bind=none $fake " "$cmds") == 4 ]] || fail "the runs are not started by srun: $(cat "$cmds")"
grep -qF -- '--threads="${SLURM_CPUS_PER_TASK:-1}"' "$cmds" || fail "ranks do not take --cpus-per-task as --threads"
# The commands recorded for the finished-run check are the runner's, without srun.
if grep -qs srun "$R"/logs/*.command; then fail "srun reached a run's recorded command"; fi
must_fail "--ntasks-per-run outside slurm" "$sweep" local "$W/t.sweep" --runs-dir="$W/runs" --ntasks-per-run=2
must_fail "--ntasks-per-run=0" "$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --ntasks-per-run=0 --dry-run
rm -rf "$R"

# ---- issue 40: one sweep at a time, killed sweeps, hostile values, bounded work ----------------
say "hostile cases"
# An empty sweep file, a directory, a missing runner: errors at once, naming what is wrong.
: >"$W/empty.sweep"
printf '# only a comment\n\n' >"$W/comment.sweep"
for f in empty comment; do
    must_fail "an empty sweep file ($f)" "$sweep" commands "$W/$f.sweep"
    must_fail "an empty sweep file ($f), local" "$sweep" local "$W/$f.sweep" --runs-dir="$W/runs"
    [[ $out == *"is empty"* ]] || fail "empty sweep file: $out"
done
must_fail "a directory as the sweep file" "$sweep" commands "$W"
[[ $out == *"is a directory, not a sweep file"* && $out != *"unbound variable"* ]] || fail "directory: $out"
must_fail "a missing SYNTH_BUILD runner" env SYNTH_BUILD=no/such/build "$sweep" local --name=x --runs-dir="$W/runs"
[[ $out == *"no/such/build/lm"*"not an executable"* ]] || fail "missing runner: $out"
[[ ! -e $W/runs/x ]] || fail "a sweep with a missing runner created its directory"
# No CLI text reaches a batch script or shell line unquoted: a newline or a ';' in a Slurm
# option is refused, and nothing runs.
cd "$W"
for bad in $'cpu\ntouch INJECTED' 'cpu;touch INJECTED' 'cpu touch INJECTED' '$(touch INJECTED)'; do
    must_fail "--partition='$bad'" "$ROOT/$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --partition="$bad" --dry-run
    must_fail "--account='$bad'" "$ROOT/$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --account "$bad" --dry-run
done
must_fail "a newline in --runs-dir" "$ROOT/$sweep" slurm "$W/t.sweep" --runs-dir=$'x\ntouch INJECTED' --dry-run
must_fail "a newline in --sbatch" "$ROOT/$sweep" slurm "$W/t.sweep" --runs-dir="$W/runs" --sbatch=$'-x\ntouch INJECTED' --dry-run
cd "$ROOT"
[[ ! -e $W/INJECTED ]] || fail "a Slurm option value ran as a command"
if grep -rqs INJECTED "$W/runs"/*/slurm/; then fail "a refused value reached a batch script"; fi
# A grid of 10^10 runs fails at once, before expanding anything; --max-runs raises the limit.
big=() ; for a in 1 2 3 4 5 6 7 8 9 10; do big+=("--grid=--a$a=0,1,2,3,4,5,6,7,8,9"); done
start=$SECONDS
must_fail "a grid of 10^10 runs" timeout 20 "$sweep" commands --name=big "${big[@]}"
((SECONDS - start <= 5)) || fail "a grid of 10^10 runs took $((SECONDS - start)) s to refuse"
[[ $out == *"more than --max-runs=10000 runs"* ]] || fail "10^10 grid: $out"
[[ $("$sweep" commands --name=big "${big[@]:0:4}" | wc -l) == 10000 ]] || fail "a 10^4 grid is not 10^4 commands"
must_fail "--max-runs below the grid" "$sweep" commands "$W/g.sweep" --max-runs=7
[[ $("$sweep" commands "$W/g.sweep" --max-runs=8 | wc -l) == 8 ]] || fail "--max-runs at the grid's size"

# Two sweeps of the same runs at once: the second is refused, naming the first; every run is
# trained once and no log is cut.
rm -rf "$R"
FAKE_RUNNER_SLEEP=2 "$sweep" local "$W/t.sweep" -j 4 --threads=1 --runs-dir="$W/runs" 2>"$W/first" &
first=$!
for _ in $(seq 50); do [[ -s $R/.sweep.pid ]] && break; sleep 0.1; done
if "$sweep" local "$W/t.sweep" -j 4 --threads=1 --runs-dir="$W/runs" 2>"$W/second"; then fail "a second sweep of the same runs ran"; fi
grep -q "sweep 't' is already running in .*: pid $first on host" "$W/second" || fail "the refusal does not name the first sweep: $(cat "$W/second")"
wait "$first" || fail "the first sweep failed: $(cat "$W/first")"
check_report "$R/report" 4
for l in "$R"/logs/*.log; do [[ $(grep -c '^fake_runner: ' "$l") == 1 ]] || fail "$l: a run started twice: $(cat "$l")"; done

# A sweep killed with TERM stops the runs it started; one killed with -9 cannot, and the sweep
# started again does not start a second runner on their directories (their claims refuse it),
# loses no result, and finishes them when run once more.
rm -rf "$R"
FAKE_RUNNER_SLEEP=30 "$sweep" local "$W/t.sweep" -j 2 --threads=1 --runs-dir="$W/runs" 2>/dev/null &
victim=$!
for _ in $(seq 50); do (($(ls "$R"/*/claim.json 2>/dev/null | wc -l) == 2)) && break; sleep 0.1; done
kill -TERM "$victim"; wait "$victim" 2>/dev/null || true
sleep 0.5
if pgrep -f "fake_runner.sh.*--run-dir=.*$R/" >/dev/null; then fail "a TERM-killed sweep left its runs going"; fi
rm -rf "$R"
FAKE_RUNNER_SLEEP=8 setsid "$sweep" local "$W/t.sweep" -j 2 --threads=1 --runs-dir="$W/runs" 2>/dev/null &
victim=$!
for _ in $(seq 50); do (($(ls "$R"/*/claim.json 2>/dev/null | wc -l) == 2)) && break; sleep 0.1; done
kill -9 "$victim"; wait "$victim" 2>/dev/null || true
live=$(ls -d "$R"/*/claim.json | xargs -n1 dirname)
if "$sweep" local "$W/t.sweep" -j 2 --threads=1 --runs-dir="$W/runs" 2>"$W/out"; then fail "the restarted sweep ran over live runs: $(cat "$W/out"; cat "$R"/logs/*)"; fi
for d in $live; do
    grep -q "is in use by another run" "$R/logs/$(basename "$d").log" || fail "$d: no refusal in the restarted run's log"
    [[ $(grep -c '^fake_runner: ' "$R/logs/$(basename "$d").log.prev") == 1 ]] || fail "$d: the first runner's log was cut"
done
for _ in $(seq 150); do (($(ls "$R"/*/result.json 2>/dev/null | wc -l) == 4)) && break; sleep 0.1; done
"$sweep" local "$W/t.sweep" --runs-dir="$W/runs" 2>"$W/out" || fail "after the killed sweep's runs ended: $(cat "$W/out")"
grep -q '4 runs, 0 to run' "$W/out" || fail "runs were lost or run again: $(cat "$W/out")"

# A sweep whose file changed since its runs finished says so instead of reusing them.
sed 's/^grid: --seeds=1,2$/grid: --seeds=1,2\nfixed: --steps=9/' "$W/t.sweep" >"$W/t2.sweep"
printf 'name: t\n' >>"$W/t2.sweep"
must_fail "a changed sweep file" "$sweep" local "$W/t2.sweep" --runs-dir="$W/runs"
[[ $out == *"4 finished runs were run with other flags than the sweep now gives"* ]] || fail "changed sweep: $out"
must_fail "a report of a changed sweep" "$sweep" report "$W/t2.sweep" --runs-dir="$W/runs"
say ok
