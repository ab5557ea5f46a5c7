#!/usr/bin/env bash
# tests/sweeps/slurm_test.sh: scripts/sweep on a real Slurm. Starts MUNGE, slurmctld and slurmd
# on this machine as root (a one-node cluster whose configuration, state and logs all live in a
# temporary directory), submits the tiny sweep of tests/sweeps/common.sh as a job array with
# --wait, checks the merged report and copies it to build/test-sweeps/slurm.{csv,md} for
# parallel_test.sh to compare. The daemons are stopped by their PIDs on exit, failure included.
# Needs root (the daemons run as root here) and installs slurm-wlm and munge when missing.
source "$(dirname "$0")/common.sh"
[[ $(id -u) == 0 ]] || fail "needs root: it starts munged, slurmctld and slurmd"
SYNTH_WITH_SWEEPS=1 bash scripts/deps.sh
check_runner

W=$(mktemp -d /tmp/synth-slurm.XXXXXX)
chmod 755 "$W"
pids=()
cleanup() {
    local status=$?
    for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
    for p in ${pids[@]+"${pids[@]}"}; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if ((status != 0)); then
        for log in "$W"/log/*.log; do [[ -e $log ]] && { echo "--- $log"; tail -n 20 "$log"; } >&2; done
    fi
    rm -rf "$W"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nobody listens on, from $1 up.
free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

mkdir -p "$W/munge" "$W/log" "$W/state" "$W/spool" "$W/run"
chmod 755 "$W/munge"   # munged wants its socket directory searchable by all
mungekey --create --keyfile="$W/munge/munge.key"
munged --foreground --key-file="$W/munge/munge.key" --socket="$W/munge/munge.socket" \
    --pid-file="$W/munge/munged.pid" --seed-file="$W/munge/munged.seed" --log-file="$W/log/munged.log" \
    >>"$W/log/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $W/munge/munge.socket ]] && break; sleep 0.1; done
[[ -S $W/munge/munge.socket ]] || fail "munged did not start"

node=$(hostname -s)
ctld_port=$(free_port 16817)
slurmd_port=$(free_port $((ctld_port + 1)))
export SLURM_CONF="$W/slurm.conf"
cat >"$SLURM_CONF" <<CONF
# A one-node cluster for tests/sweeps/slurm_test.sh.
ClusterName=synthtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge/munge.socket
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/run/slurmctld.pid
SlurmdPidFile=$W/run/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=500 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -f "$SLURM_CONF" >>"$W/log/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$node" >>"$W/log/slurmd.log" 2>&1 &
pids+=($!)

say "waiting for node $node to be idle"
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.5
done
[[ $state == idle ]] || fail "node $node is '$state', not idle, after 30 s"

sweep=$(tiny_sweep)
start=$SECONDS
scripts/sweep slurm "$sweep" --runs-dir="$W/runs" --cpus-per-task=1 --wait --time=10
say "the Slurm array took $((SECONDS - start)) s"
check_report "$W/runs/tiny/report" 4
n_tasks=$(find "$W/runs/tiny/logs" -name 'slurm-*_*.out' | wc -l)
[[ $n_tasks == 4 ]] || fail "expected 4 array tasks' output files, found $n_tasks"
grep -q -- '--array=0-3$' "$W"/runs/tiny/slurm/*.sh || fail "the batch script does not ask for --array=0-3"

# Resumable: with every run finished, submitting again submits nothing.
again=$(scripts/sweep slurm "$sweep" --runs-dir="$W/runs" --wait 2>&1)
[[ $again == *"all 4 runs have finished"* ]] || fail "a finished sweep was submitted again: $again"

keep_report "$W/runs/tiny/report" "$W/runs" slurm
say "ok (report in $(realpath --relative-to="$ROOT" "$REPORTS")/slurm.csv)"
