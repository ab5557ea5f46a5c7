#!/usr/bin/env bash
# bench.sh: GEMM throughput benchmark (build/bench) -> results/bench-gemm.md.
#
#   bash scripts/bench.sh [build/bench flags, e.g. --threads=2 --reps=20]
#
# The report is written to a temporary file in results/ and renamed over the old one only
# when build/bench succeeded, so an interrupted run never leaves a half-written report.
# The machine is shared: the load average is recorded because other jobs lower the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

bench=build/bench
out=results/bench-gemm.md
[[ -x $bench ]] || { echo "error: $bench not found; run 'make all' first" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT

{
    echo "# GEMM benchmark"
    echo
    echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'none')"
    echo "- CPU: $(nproc) x $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- command: $bench $*"
    echo
    "$bench" "$@"
} >"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
