#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets of fuzz/ with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer) and run them one after another at low priority.
#
#   bash scripts/fuzz.sh                      # every target for 60 s each
#   bash scripts/fuzz.sh 300 checkpoint flags  # these targets for 5 minutes each
#   FUZZ_ARGS="-fork=1 -ignore_crashes=1" bash scripts/fuzz.sh 300 flags   # go on past a finding
#
# Targets: checkpoint, safetensors, flags, bpe, tokenizers (see fuzz/fuzz_targets.h for what each checks).
# The growing corpus of each target lives in build/fuzz/corpus/<target>, seeded from
# fuzz/seeds/<target>. An input that crashes, leaks, runs over 10 s or allocates more than
# 256 MB is saved in build/fuzz/crashes/<target>/; copy it to tests/fuzz_regressions/<target>-<name>
# so the doctest suite replays it from then on. Exits non-zero if any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=${*:-checkpoint safetensors flags bpe tokenizers}
cxx=${FUZZ_CXX:-clang++}
out=build/fuzz
# The library sources the targets use; compiled once with the sanitizers (no OpenMP: the
# parsers are single-threaded and clang's OpenMP runtime is not installed).
lib="train/checkpoint train/safetensors base/json base/io base/utf8 engine/params engine/optim engine/tensor base/rng base/flags text/bpe text/corpus"
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Wno-unknown-pragmas -Isrc)

command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out/obj"
objs=()
for s in $lib; do
    o="$out/obj/${s//\//_}.o"
    # Rebuild when the source or any header is newer than the object.
    if [ ! -f "$o" ] || [ "src/$s.cpp" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o" -print -quit)" ]; then
        echo "fuzz.sh: compiling src/$s.cpp"
        nice -n 10 "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "src/$s.cpp" -o "$o"
    fi
    objs+=("$o")
done

found=()
for t in $targets; do
    [ -f "fuzz/${t}_fuzz.cpp" ] || { echo "fuzz.sh: no target '$t' (fuzz/${t}_fuzz.cpp)" >&2; exit 1; }
    echo "fuzz.sh: linking $out/$t"
    nice -n 10 "$cxx" "${flags[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzz.cpp" "${objs[@]}" -o "$out/$t"
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    touch "$out/crashes/$t/.start"
    echo "fuzz.sh: running $t for ${seconds} s"
    # With -ignore_crashes (fork mode) libFuzzer exits 0 after findings, so also look for new files.
    if ! nice -n 10 "$out/$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$out/crashes/$t/" ${FUZZ_ARGS:-} \
        "$out/corpus/$t" "fuzz/seeds/$t" ||
        [ -n "$(find "$out/crashes/$t" -type f -newer "$out/crashes/$t/.start" -print -quit)" ]; then
        found+=("$t")
    fi
done

if [ ${#found[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${found[*]} (inputs in $out/crashes/)" >&2
    exit 1
fi
echo "fuzz.sh: no findings"
