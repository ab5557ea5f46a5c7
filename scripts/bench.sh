#!/usr/bin/env bash
# bench.sh: synth's benchmarks (make bench). Writes, each file atomically:
#   results/bench-gemm.md       GEMM GFLOP/s of the OpenBLAS kernel in use (build/bench)
#   results/bench.md            LM training / inference tokens/s, peak RSS and model FLOP
#                               utilisation of synth (build/lm --bench) against the same model in
#                               PyTorch (scripts/torch_reference.py bench), every default variant;
#                               and tokens/s against sequence length
#   results/bench-scaling.png   that scaling, drawn by scripts/plot_scaling.py
#   results/bench-raw.jsonl     every run's JSON line, to re-plot or re-read
#
#   bash scripts/bench.sh [build/bench flags, e.g. --reps=20]
#   BENCH_QUICK=1 bash scripts/bench.sh     smoke test of this script: 1 timed step, 1 run, batch 4,
#                                           2 lengths; writes build/bench-quick/, never results/
#
# The machine is shared: timings are only meaningful when it is otherwise idle, so the load
# average at the start (before the first benchmark run) and before and after the model runs is
# recorded in each report.
#
# Environment, default in brackets (the second value with BENCH_QUICK=1):
#   BENCH_OUT [results | build/bench-quick]  output directory
#   BENCH_THREADS [2]                        threads for synth and for PyTorch
#   BENCH_REPS [3 | 1]                       alternating runs per variant and implementation;
#                                            the best run is reported
#   BENCH_STEPS [10 | 1], BENCH_INFER_STEPS [20 | 1]
#                                            timed steps per run (after 3 and 2 warm-up steps)
#   BENCH_VARIANTS [V,R,Rfix,D,FR,FD,R+V,D+V,R+D]
#   BENCH_PRECISIONS [fp32,bf16]             the model runs' precisions: synth --precision=bf16 (its
#                                            provider, docs/precision.md) and PyTorch bf16 autocast
#   BENCH_TORCH_PRECISIONS [BENCH_PRECISIONS] PyTorch's precisions: on a CPU without bf16 units its
#                                            bf16 autocast takes minutes per run (fp32 alone there)
#   BENCH_SCALING_VARIANTS [V,R,FR,D,R+V]
#   BENCH_BATCH [32 | 4]                     sequences of 128 tokens per step (the benchmark shape
#                                            is batch 32; quick runs shrink it)
#   BENCH_SCALING_SEQS ["64 128 256 512 1024" | "64 256"]
#                                            at BENCH_SCALING_TOKENS [4096 | 512] tokens per step
#   BENCH_SYNTH_WAIT_POLICY [auto], BENCH_TORCH_WAIT_POLICY [auto]
#                                            OMP_WAIT_POLICY of each side (synth's also for build/bench):
#                                            PASSIVE, ACTIVE, '' (libgomp's default, spin then sleep), or
#                                            auto: each side gets its own best, measured first on V
#                                            (alternating PASSIVE and ACTIVE runs, 2 rounds, the higher
#                                            geometric mean of training and inference tokens/s).
#                                            On an idle machine ACTIVE usually wins for both; on busy
#                                            cores spinning cost synth 8x (100 vs 810 tok/s training V)
#   BENCH_GEMM_ONLY [0]                      1: only section 1 (results/bench-gemm.md)
#   BENCH_TORCH [auto]                       1: require PyTorch, 0: synth only, auto: if importable
#   BENCH_SCALING_TORCH [0]                  1: PyTorch in the scaling runs too
#   PYTHON [/usr/bin/python3]                the interpreter Debian's python3-torch installs into
set -euo pipefail
cd "$(dirname "$0")/.."
# Before any run of ours: later readings include the benchmark's own threads.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    out=${BENCH_OUT:-build/bench-quick} reps=${BENCH_REPS:-1} steps=${BENCH_STEPS:-1}
    infer_steps=${BENCH_INFER_STEPS:-1} batch=${BENCH_BATCH:-4} seqs=${BENCH_SCALING_SEQS:-64 256}
    scaling_tokens=${BENCH_SCALING_TOKENS:-512} gemm_args=(--reps=2)
else
    out=${BENCH_OUT:-results} reps=${BENCH_REPS:-3} steps=${BENCH_STEPS:-10}
    infer_steps=${BENCH_INFER_STEPS:-20} batch=${BENCH_BATCH:-32} seqs=${BENCH_SCALING_SEQS:-64 128 256 512 1024}
    scaling_tokens=${BENCH_SCALING_TOKENS:-4096} gemm_args=()
fi
threads=${BENCH_THREADS:-2}
variants=${BENCH_VARIANTS:-V,R,Rfix,D,FR,FD,R+V,D+V,R+D}
precisions=${BENCH_PRECISIONS:-fp32,bf16}
torch_precisions=${BENCH_TORCH_PRECISIONS:-$precisions}
scaling_variants=${BENCH_SCALING_VARIANTS:-V,R,FR,D,R+V}
python=${PYTHON:-/usr/bin/python3}

bench=build/bench
for bin in "$bench" build/lm; do
    [[ -x $bin ]] || { echo "error: $bin not found; run 'make all' first" >&2; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d "$out/.bench.XXXXXX")  # in $out, so the final renames are atomic
trap 'rm -rf "$work"' EXIT
commit=$(git rev-parse --short HEAD 2>/dev/null || echo 'none')
cpu="$(nproc) x $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

# Atomic replace: the finished file from $work is renamed over the old report.
publish() {
    chmod 644 "$work/$1"
    mv "$work/$1" "$out/$1"
    echo "wrote $out/$1"
}

shape=(--vocab=65 --d-model=256 --layers=4 --heads=4 --d-ff=1024)
raw=$work/bench-raw.jsonl
: >"$raw"

# run_synth PART VARIANT SEQ BATCH [PRECISION]: one JSON line tagged with impl and part onto $raw.
run_synth() {
    echo "bench: synth $2, seq $3, batch $4, ${5:-fp32} (${synth_env[*]})" >&2
    env "${synth_env[@]}" build/lm --bench --preset=none "${shape[@]}" --dropout=0 --attn-dropout=0 --threads="$threads" \
        --precision="${5:-fp32}" \
        --seq="$3" --batch="$4" --variants="$2" --bench-steps="$steps" --bench-infer-steps="$infer_steps" \
        | grep '^{' | sed "s/^{/{\"impl\":\"synth\",\"part\":\"$1\",/" | tee -a "$raw" >&2
}
run_torch() {
    echo "bench: PyTorch $2, seq $3, batch $4, ${5:-fp32} (${torch_env[*]})" >&2
    local bf16=()
    [[ ${5:-fp32} == bf16 ]] && bf16=(--bf16)
    env "${torch_env[@]}" "$python" scripts/torch_reference.py bench "${shape[@]}" "${bf16[@]}" --threads="$threads" \
        --seq="$3" --batch="$4" --variant="$2" --bench-steps="$steps" --bench-infer-steps="$infer_steps" \
        | sed "s/^{/{\"part\":\"$1\",/" | tee -a "$raw" >&2
}

# wait_policy IMPL SETTING BASE_ENV_ARRAY: prints the OMP_WAIT_POLICY to use. For auto, V runs
# with PASSIVE and ACTIVE alternately, twice each; the runs stay in $raw as parts
# "calibrate-PASSIVE" and "calibrate-ACTIVE".
wait_policy() {
    local impl=$1 setting=$2 base=$3
    [[ $setting == auto ]] || { echo "$setting"; return; }
    local policy
    for ((r = 0; r < 2; r++)); do
        for policy in PASSIVE ACTIVE; do
            if [[ $impl == synth ]]; then synth_env=(OMP_WAIT_POLICY=$policy); run_synth "calibrate-$policy" V 128 "$batch"
            else torch_env=("${!base}" OMP_WAIT_POLICY=$policy); run_torch "calibrate-$policy" V 128 "$batch"; fi
        done
    done
    "$python" - "$raw" "$impl" <<'PYEOF'
import json, math, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def score(policy):
    rs = [r for r in runs if r["impl"] == sys.argv[2] and r["part"] == "calibrate-" + policy]
    return max(math.sqrt(r["train_tokens_per_s"] * r["infer_tokens_per_s"]) for r in rs)
print(max(["PASSIVE", "ACTIVE"], key=score))
PYEOF
}

# build/bench and build/lm run with the same OpenMP environment, so that the sgemm rate behind
# the MFU column is measured the way the model runs.
synth_policy=$(wait_policy synth "${BENCH_SYNTH_WAIT_POLICY-auto}" "")
synth_env=()
[[ -n $synth_policy ]] && synth_env+=(OMP_WAIT_POLICY="$synth_policy")

# ---- 1. GEMM ---------------------------------------------------------------------------
{
    echo "# GEMM benchmark"
    echo
    echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- commit: $commit"
    echo "- CPU: $cpu"
    echo "- load average at the start / before the GEMM runs: $load_start / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- command: ${synth_env[*]} $bench --threads=$threads ${gemm_args[*]} $*"
    echo
    env "${synth_env[@]}" "$bench" --threads="$threads" "${gemm_args[@]}" "$@"
} >"$work/bench-gemm.md"
publish bench-gemm.md
[[ ${BENCH_GEMM_ONLY:-0} == 1 ]] && exit 0
# The OpenBLAS kernel synth runs with (after its own kernel selection, src/engine/gemm/blas.h): PyTorch
# calls the same library (libblas.so.3 -> OpenBLAS) and is given the same kernel.
kernel=$(sed -n 's/^- OpenBLAS kernel: //p' "$out/bench-gemm.md")

# ---- 2. model throughput, synth and PyTorch, alternating -------------------------------
case ${BENCH_TORCH:-auto} in
    1) torch=1 ;;
    0) torch=0 ;;
    auto)
        if "$python" -c 'import torch' 2>/dev/null; then torch=1; else
            torch=0
            echo "bench.sh: PyTorch is not importable by $python: benchmarking synth only" >&2
        fi ;;
    *) echo "error: BENCH_TORCH must be 0, 1 or auto, got '$BENCH_TORCH'" >&2; exit 1 ;;
esac
scaling_torch=$(( torch && ${BENCH_SCALING_TORCH:-0} ))

torch_base=(OMP_NUM_THREADS="$threads" OPENBLAS_THREAD_TIMEOUT=4)
[[ -n $kernel ]] && torch_base+=(OPENBLAS_CORETYPE="$kernel")
torch_policy=""
if ((torch)); then torch_policy=$(wait_policy torch "${BENCH_TORCH_WAIT_POLICY-auto}" "torch_base[@]"); fi
torch_env=("${torch_base[@]}")
[[ -n $torch_policy ]] && torch_env+=(OMP_WAIT_POLICY="$torch_policy")

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 1; rep <= reps; rep++)); do
    for v in ${variants//,/ }; do
        for p in ${precisions//,/ }; do
            run_synth model "$v" 128 "$batch" "$p"
            if ((torch)) && [[ ,$torch_precisions, == *,$p,* ]]; then run_torch model "$v" 128 "$batch" "$p"; fi
        done
    done
done

# ---- 3. scaling with sequence length at a constant number of tokens per step ------------
for seq in $seqs; do
    ((scaling_tokens % seq == 0)) || { echo "error: $scaling_tokens tokens per step is not a multiple of seq $seq" >&2; exit 1; }
    for v in ${scaling_variants//,/ }; do
        run_synth scaling "$v" "$seq" $((scaling_tokens / seq))
        if ((scaling_torch)); then run_torch scaling "$v" "$seq" $((scaling_tokens / seq)); fi
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 4. reports --------------------------------------------------------------------------
if "$python" scripts/plot_scaling.py "$raw" "$work/bench-scaling.png"; then
    plot=1
else
    plot=0
    echo "bench.sh: no plot drawn (see above); the tables are still written" >&2
fi

export BENCH_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) BENCH_COMMIT=$commit BENCH_CPU=$cpu BENCH_KERNEL=$kernel \
    BENCH_LOAD_START=$load_start BENCH_LOAD_BEFORE=$load_before BENCH_LOAD_AFTER=$load_after BENCH_THREADS_USED=$threads BENCH_REPS_USED=$reps \
    BENCH_STEPS_USED=$steps BENCH_INFER_STEPS_USED=$infer_steps BENCH_QUICK_USED=${BENCH_QUICK:-0} \
    BENCH_TORCH_USED=$torch BENCH_SCALING_TORCH_USED=$scaling_torch BENCH_PLOT=$plot BENCH_TORCH_ENV="${torch_env[*]}" \
    BENCH_SYNTH_ENV="${synth_env[*]}"
"$python" - "$raw" "$out/bench-gemm.md" >"$work/bench.md" <<'EOF'
# Renders bench.md from the runs' JSON lines and build/bench's sgemm rate.
import json
import math
import os
import sys

raw, gemm_md = sys.argv[1:3]
E = os.environ
runs = [json.loads(line) for line in open(raw) if line.strip()]
sgemm = None  # the first cblas_sgemm 4096x256x256 line of build/bench's JSON
peak = None  # the measured FMA peak with the benchmark's thread count
best_gemm = 0.0  # the fastest large GEMM (any method, any LM shape) build/bench measured
best_bf16 = 0.0  # the fastest large GEMM of a bf16 provider ("GEMM providers" table)
threads_used = int(E["BENCH_THREADS_USED"])
for line in open(gemm_md):
    r = json.loads(line) if line.startswith('{"bench"') else {}
    if sgemm is None and r.get("bench", "").startswith("cblas_sgemm") and r.get("shape") == "4096x256x256 NN":
        sgemm = r["best_gflops"]
    if r.get("bench") == "fma_peak" and r.get("threads") == threads_used:
        peak = r["best_gflops"]
    if r.get("shape", "").startswith(("4096x", "256x", "1024x")) and r.get("threads") == threads_used:
        if "bf16" in r["bench"]:
            best_bf16 = max(best_bf16, r["best_gflops"])
        else:
            best_gemm = max(best_gemm, r["best_gflops"])
torch_on, scaling_torch = E["BENCH_TORCH_USED"] == "1", E["BENCH_SCALING_TORCH_USED"] == "1"


def best(part, impl, variant, seq, precision="fp32"):
    """The best of the repeated runs (the machine is shared: noise only ever slows a run down)."""
    rs = [r for r in runs if (r["part"], r["impl"], r["variant"], r["seq"], r.get("precision", "fp32")) ==
          (part, impl, variant, seq, precision)]
    if not rs:
        return None
    return {"train": max(r["train_tokens_per_s"] for r in rs), "infer": max(r["infer_tokens_per_s"] for r in rs),
            "rss": max(r["peak_rss_mb"] for r in rs), "params": rs[0]["params"], "kernel": rs[0]["kernel"],
            "torch": rs[0].get("torch"), "blas": rs[0].get("blas"), "gemm": rs[0].get("gemm"), "run": rs[0]}


def fd_a(L):
    a = 1
    for c in range(1, L + 1):
        if L % c == 0 and abs(c - math.sqrt(L)) < abs(a - math.sqrt(L)):
            a = c
    return a


def fwd_flops_per_token(r, variant, fr_rank=8):
    """GEMM FLOPs of one forward pass per token (2 per multiply-add; see the formula in the report)."""
    d, f, V, T, H, B = r["d_model"], r["d_ff"], r["vocab"], r["seq"], r["heads"], r["batch"]
    comp = {"V": 4 * d * d + 2 * T * d, "D": 2 * d * d + 2 * T * d, "R": 0, "Rfix": 0,
            "FR": 2 * H * T * fr_rank / B, "FD": 2 * d * d + 2 * d * (fd_a(T) + T // fd_a(T))}
    per_layer = 4 * d * d + 4 * d * f + 2 * T * d + sum(comp[c] for c in variant.split("+"))
    return r["layers"] * per_layer + 2 * d * V


def num(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}"


def pct(x):
    return "—" if x is None else f"{100 * x:.1f}%"


variants = list(dict.fromkeys(r["variant"] for r in runs if r["part"] == "model"))
synth = {v: best("model", "synth", v, 128) for v in variants}
torch = {v: best("model", "torch", v, 128) for v in variants}
any_run = next(iter(synth.values()))["run"]
torch_any = next((t for t in torch.values() if t), None)
o = []
o.append("# Model throughput: synth against PyTorch\n")
if E["BENCH_QUICK_USED"] == "1":
    o.append("**BENCH_QUICK=1 smoke run (few steps, one round, small batch): these numbers are not measurements.**\n")
o.append(f"- date (UTC): {E['BENCH_DATE']}; commit {E['BENCH_COMMIT']}; CPU: {E['BENCH_CPU']}")
o.append(f"- load average at the start / before / after the model runs: {E['BENCH_LOAD_START']} / "
         f"{E['BENCH_LOAD_BEFORE']} / {E['BENCH_LOAD_AFTER']} (the start is before any run of ours: well above 0 "
         f"means other jobs shared the cores and the numbers are low; the later two include the benchmark's own "
         f"{E['BENCH_THREADS_USED']} threads, so up to about {E['BENCH_THREADS_USED']} is its own load)")
o.append(f"- model: decoder-only pre-LN LM, vocab {any_run['vocab']}, d_model {any_run['d_model']}, "
         f"{any_run['layers']} layers, {any_run['heads']} heads, d_ff {any_run['d_ff']}, seq {any_run['seq']}, "
         f"batch {any_run['batch']} ({any_run['seq'] * any_run['batch']} tokens per step), random tokens, no dropout; "
         "training step = forward, cross entropy, backward, global-norm clip 1.0, AdamW (lr 1e-4, betas 0.9/0.98, "
         "eps 1e-9, weight decay 0.01 on matrices); inference = forward only")
o.append(f"- method: every run is a fresh process (so peak RSS is its own): 3 warm-up + {E['BENCH_STEPS_USED']} "
         f"timed training steps, 2 warm-up + {E['BENCH_INFER_STEPS_USED']} timed forward steps. Runs alternate "
         f"synth, PyTorch, variant by variant, for {E['BENCH_REPS_USED']} round(s); the best is reported.")
o.append(f"- synth: `build/lm --bench --threads={E['BENCH_THREADS_USED']}` (OpenMP and OpenBLAS share the "
         f"threads as src/engine/gemm/blas.h describes), environment `{E['BENCH_SYNTH_ENV'] or '(default)'}`, "
         f"OpenBLAS kernel {E['BENCH_KERNEL']}")
if torch_on and torch_any:
    o.append(f"- PyTorch {torch_any['torch']}: `scripts/torch_reference.py bench`, the same model and parameter "
             f"shapes, `torch.set_num_threads({E['BENCH_THREADS_USED']})`, environment `{E['BENCH_TORCH_ENV']}`. "
             f"torch.__config__.show(): {torch_any['blas']}. BLAS_INFO=generic means torch calls libblas.so.3, "
             f"which Debian's alternatives point at the same OpenBLAS (OpenMP build) synth links; float32 matmuls "
             f"do not go through MKL-DNN. OpenBLAS kernel bound in the torch process: {torch_any['kernel']}.")
else:
    o.append("- PyTorch: not run (not importable, or BENCH_TORCH=0)")
calib = [r for r in runs if r["part"].startswith("calibrate-")]
if calib:
    cells = []
    for impl, name in (("synth", "synth"), ("torch", "PyTorch")):
        for policy in ("PASSIVE", "ACTIVE"):
            rs = [r for r in calib if r["impl"] == impl and r["part"] == "calibrate-" + policy]
            if rs:
                cells.append(f"{name} {policy} {num(max(r['train_tokens_per_s'] for r in rs))} / "
                             f"{num(max(r['infer_tokens_per_s'] for r in rs))}")
    o.append("- OMP_WAIT_POLICY: each side runs with its own best, measured first on V (training / inference "
             "tokens/s, best of 2 alternating runs): " + "; ".join(cells) + ".")
o.append("- peak RSS: ru_maxrss of the benchmark process; PyTorch's includes the torch runtime itself "
         "(a few hundred MB before any model exists).\n")

o.append("## Throughput (tokens/s) and memory\n")
o.append("| variant | params | train synth | train PyTorch | synth / PyTorch | inference synth | inference PyTorch "
         "| synth / PyTorch | peak RSS synth (MB) | peak RSS PyTorch (MB) |")
o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for v in variants:
    s, t = synth[v], torch[v]
    o.append(f"| {v} | {s['params']:,} | {num(s['train'])} | {num(t and t['train'])} | {ratio(s['train'], t and t['train'])} "
             f"| {num(s['infer'])} | {num(t and t['infer'])} | {ratio(s['infer'], t and t['infer'])} "
             f"| {num(s['rss'])} | {num(t and t['rss'])} |")
if "R" in synth and "V" in synth:
    line = (f"\nR against V (the paper's finding 5, no Q K^T): synth trains R at {synth['R']['train'] / synth['V']['train']:.2f}x "
            f"V's tokens/s and infers at {synth['R']['infer'] / synth['V']['infer']:.2f}x")
    if torch.get("R") and torch.get("V"):
        line += (f"; PyTorch {torch['R']['train'] / torch['V']['train']:.2f}x and "
                 f"{torch['R']['infer'] / torch['V']['infer']:.2f}x")
    o.append(line + ".")

synth16 = {v: best("model", "synth", v, 128, "bf16") for v in variants}
torch16 = {v: best("model", "torch", v, 128, "bf16") for v in variants}
if any(synth16.values()):
    gemm16 = next(x for x in synth16.values() if x)["gemm"]
    o.append("\n## bf16: synth --precision=bf16 and PyTorch bf16 autocast\n")
    o.append(f"synth's bf16 GEMM provider here: {gemm16} (docs/precision.md; `rounded-bf16` means this CPU has no "
             "bf16 matrix units, so synth rounds the operands and multiplies in fp32: bf16's numbers, not its speed). "
             "PyTorch: `torch.autocast(\"cpu\", dtype=torch.bfloat16)` around the forward pass. Training / inference "
             "tokens/s, best of the rounds above. MFU bf16: as below, against the fastest large GEMM of a bf16 "
             f"provider build/bench measured, {num(best_bf16, 1)} GFLOP/s (bench-gemm.md, \"GEMM providers\").\n")
    o.append("| variant | synth fp32 | synth bf16 | synth bf16 / fp32 | PyTorch fp32 | PyTorch bf16 | synth bf16 / PyTorch bf16 "
             "| MFU synth bf16 | peak RSS synth bf16 / PyTorch bf16 (MB) |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        s, s16, t, t16 = synth[v], synth16[v], torch[v], torch16[v]
        if not s16:
            continue
        pair = lambda x: "—" if not x else f"{num(x['train'])} / {num(x['infer'])}"
        rat = lambda a, b: "—" if not a or not b else f"{ratio(a['train'], b['train'])} / {ratio(a['infer'], b['infer'])}"
        fl = fwd_flops_per_token(s16["run"], v)
        mfu16 = "—" if not best_bf16 else f"{pct(s16['train'] * 3 * fl / (best_bf16 * 1e9))} / {pct(s16['infer'] * fl / (best_bf16 * 1e9))}"
        o.append(f"| {v} | {pair(s)} | {pair(s16)} | {rat(s16, s)} | {pair(t)} | {pair(t16)} | {rat(s16, t16)} "
                 f"| {mfu16} | {num(s16['rss'])} / {num(t16 and t16['rss'])} |")
    if synth16.get("R") and synth16.get("V"):
        o.append(f"\nR against V in bf16 (finding 5): synth trains R at {synth16['R']['train'] / synth16['V']['train']:.2f}x "
                 f"V's tokens/s and infers at {synth16['R']['infer'] / synth16['V']['infer']:.2f}x.")

o.append("\n## Model FLOP utilisation\n")
o.append("MFU = tokens/s x model FLOPs per token / the machine's sgemm rate, where the rate is build/bench's best "
         f"`cblas_sgemm` 4096x256x256 with {E['BENCH_THREADS_USED']} threads = "
         f"{num(sgemm, 1)} GFLOP/s (bench-gemm.md). Model FLOPs count only GEMM work, 2 per multiply-add, "
         "for the full T x T attention. PyTorch computes all of it; synth skips the blocks above the causal diagonal "
         "(64 query rows per block: 1/4 of Q K^T and P V at T = 128, about 2% of V's forward FLOPs, more at longer T), "
         "and is still credited with them here:\n")
o.append("    forward FLOPs / token = layers * (4 d^2 + 4 d d_ff + 2 T d + sum over components c of f_c) + 2 d vocab")
o.append("      4 d^2: W_v and W_o;  4 d d_ff: the FFN;  2 T d: P V;  2 d vocab: tied output logits")
o.append("      f_V = 4 d^2 + 2 T d (W_q, W_k; Q K^T)      f_D = 2 d^2 + 2 T d (W1; per-head W2 to T outputs)")
o.append("      f_FD = 2 d^2 + 2 d (a + b)                 f_R = f_Rfix = 0 (a slice of R)")
o.append("      f_FR = 2 H T k / B (R1 R2^T, once per batch, k = 8)")
o.append("    training FLOPs / token = 3 x forward (backward = two GEMMs per forward GEMM)\n")
o.append("| variant | forward MFLOP/token | train MFU synth | train MFU PyTorch | inference MFU synth | inference MFU PyTorch |")
o.append("|---|---:|---:|---:|---:|---:|")
for v in variants:
    s, t = synth[v], torch[v]
    fl = fwd_flops_per_token(s["run"], v)
    mfu = (lambda tok, k: None if tok is None or not sgemm else tok * k * fl / (sgemm * 1e9))
    o.append(f"| {v} | {fl / 1e6:.2f} | {pct(mfu(s['train'], 3))} | {pct(mfu(t and t['train'], 3))} "
             f"| {pct(mfu(s['infer'], 1))} | {pct(mfu(t and t['infer'], 1))} |")

if peak:
    o.append(f"\nThe same figures against the machine's measured FMA peak, {num(peak, 1)} GFLOP/s on "
             f"{threads_used} threads (build/bench: FMA chains in registers, no memory traffic; bench-gemm.md). "
             f"No GEMM can exceed it; the fastest large GEMM build/bench measured on the LM's shapes reached "
             f"{num(best_gemm, 1)} GFLOP/s = {pct(best_gemm / peak)} of it.\n")
    o.append("| variant | train synth | train PyTorch | inference synth | inference PyTorch |")
    o.append("|---|---:|---:|---:|---:|")
    for v in variants:
        s, t = synth[v], torch[v]
        fl = fwd_flops_per_token(s["run"], v)
        hw = (lambda tok, k: None if tok is None else tok * k * fl / (peak * 1e9))
        o.append(f"| {v} | {pct(hw(s['train'], 3))} | {pct(hw(t and t['train'], 3))} "
                 f"| {pct(hw(s['infer'], 1))} | {pct(hw(t and t['infer'], 1))} |")
    if torch_on and all(torch[v] for v in variants):
        o.append("\n### What the speed targets ask of the hardware\n")
        o.append("Both implementations run the same GEMMs through the same OpenBLAS, so a speed-up over PyTorch "
                 "can only come from running closer to the FMA peak (or from doing fewer FLOPs). A target of "
                 "k x PyTorch's tokens/s needs k x PyTorch's share of the peak; above 100% it is impossible at "
                 "equal FLOPs, and above the best GEMM's share it would need the whole step to run faster than "
                 "OpenBLAS's fastest large GEMM does alone.\n")
        o.append("| variant | training at 1.5x PyTorch needs | synth reaches | inference at 2x PyTorch needs "
                 "| synth reaches |")
        o.append("|---|---:|---:|---:|---:|")
        for v in variants:
            s, t = synth[v], torch[v]
            fl = fwd_flops_per_token(s["run"], v)
            hw = (lambda tok, k: tok * k * fl / (peak * 1e9))
            o.append(f"| {v} | {pct(1.5 * hw(t['train'], 3))} | {pct(hw(s['train'], 3))} "
                     f"| {pct(2 * hw(t['infer'], 1))} | {pct(hw(s['infer'], 1))} |")

scaling = [r for r in runs if r["part"] == "scaling"]
if scaling:
    sv = list(dict.fromkeys(r["variant"] for r in scaling))
    seqs = sorted({r["seq"] for r in scaling})
    tokens = scaling[0]["seq"] * scaling[0]["batch"]
    o.append(f"\n## Scaling with sequence length\n")
    o.append(f"{tokens} tokens per step (batch = {tokens} / T), the model above otherwise; each cell is training / "
             f"inference tokens/s of one run" + (", synth then PyTorch" if scaling_torch else ", synth") + ". "
             "Per token, softmax and P V grow with T for every variant, and so do Q K^T (V) and W2 (D); "
             "R only slices its L x L parameter (L = T here). synth's causal block skipping (Q K^T, P V, softmax) "
             "matters most at long T: at T = 1024 it computes 17/32 of the full products.\n")
    o.append("| T | batch | " + " | ".join(sv) + " |")
    o.append("|---:|---:|" + "---:|" * len(sv))
    for seq in seqs:
        cells = []
        for v in sv:
            s = best("scaling", "synth", v, seq)
            cell = f"{num(s and s['train'])} / {num(s and s['infer'])}"
            if scaling_torch:
                t = best("scaling", "torch", v, seq)
                cell += f"<br>PyTorch {num(t and t['train'])} / {num(t and t['infer'])}"
            cells.append(cell)
        o.append(f"| {seq} | {tokens // seq} | " + " | ".join(cells) + " |")
    if E["BENCH_PLOT"] == "1":
        o.append("\n![tokens/s against sequence length](bench-scaling.png)")
o.append("\nProduced by `make bench` (scripts/bench.sh); every run's JSON line is in bench-raw.jsonl.")
print("\n".join(o))
EOF
publish bench.md
publish bench-raw.jsonl
if ((plot)); then publish bench-scaling.png; fi
