#!/usr/bin/env bash
# The benchmarks of a build without oneDNN (`make ONEDNN=0 PORTABLE=1`, README "Building
# elsewhere"): build/bench and build/lm --bench run to the end, and --precision=bf16 falls back to
# the rounded-bf16 provider (docs/precision.md), says why, and never reaches for oneDNN. One timed
# repetition per measurement and a tiny LM: about 20 s on 2 cores.
#
#   bash tests/portable/portable_test.sh build/portable
set -uo pipefail
bin=$(cd "${1:?usage: portable_test.sh BUILD_DIR (a make ONEDNN=0 build)}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
fallback='rounded-bf16 (operands rounded to bf16, OpenBLAS fp32 GEMM: .*built without oneDNN (make ONEDNN=0))'

# build/bench: the GEMM tables, with the provider --precision=bf16 gets in its preamble.
if "$bin/bench" --reps=1 >"$tmp/bench.md" 2>"$tmp/bench.err"; then
    if grep -q "^- with --precision=bf16: precision bf16: $fallback" "$tmp/bench.md" &&
        grep -q '^| synth::sgemm, rounded-bf16 ' "$tmp/bench.md" && ! grep -qi 'onednn-bf16\|oneDNN matmul' "$tmp/bench.md"; then
        ok "build/bench: bf16 is rounded-bf16, no oneDNN row"
    else
        bad "build/bench does not report the rounded-bf16 provider for bf16"; cat "$tmp/bench.md"
    fi
else
    bad "build/bench failed"; cat "$tmp/bench.md" "$tmp/bench.err"
fi

# build/lm --bench --precision=bf16 on a tiny model: says the fallback, and its JSON line names it.
if (cd "$tmp" && "$bin/lm" --bench --precision=bf16 --variants=V,R --d-model=32 --layers=1 --heads=2 --d-ff=64 \
        --seq=16 --batch=2 --bench-steps=2 --bench-infer-steps=2 --threads=1) >"$tmp/lm.out" 2>"$tmp/lm.err"; then
    if grep -q "^lm --bench: .*precision bf16: $fallback" "$tmp/lm.err" &&
        [[ $(grep -c '"precision":"bf16","gemm":"rounded-bf16"' "$tmp/lm.out") == 2 ]]; then
        ok "build/lm --bench --precision=bf16: rounded-bf16, and says so"
    else
        bad "build/lm --bench --precision=bf16 does not fall back to rounded-bf16 or does not say so"
        cat "$tmp/lm.err" "$tmp/lm.out"
    fi
else
    bad "build/lm --bench --precision=bf16 failed"; cat "$tmp/lm.err" "$tmp/lm.out"
fi

if ((failures)); then
    echo "portable_test: $failures failed"
    exit 1
fi
echo "portable_test: all passed"
