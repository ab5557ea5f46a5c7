#!/usr/bin/env bash
# scripts/fixed_seed_runs.sh: fixed-seed runs whose numbers a refactoring must not change.
#
#   bash scripts/fixed_seed_runs.sh BUILD_DIR OUT_DIR      e.g. build /tmp/after
#   diff /tmp/before/hashes.txt /tmp/after/hashes.txt     (the same script with the old build)
#
# A 50-step build/lm and a 30-step build/mt run of every default variant (quick presets, no
# dropout), and 20-step runs with dropout 0.1 (V, D, R+V; V, R+D), all with --threads=2 and a
# checkpoint at the last step. hashes.txt holds, per checkpoint, the sha256 of its parameters,
# AdamW moments and step (the PARM, OPTM and STAT sections: the config text may differ), so
# equal lines mean bit-identical training. The progress lines are in OUT_DIR/*.err.
set -euo pipefail
bin=$(cd "$1" && pwd); out=$2
cd "$(dirname "$0")/.."
rm -rf "$out"; mkdir -p "$out"
common=(--threads=2 --checkpoint-dir="$out/ck" --runs-dir="$out/runs")
"$bin/lm" --data=tinyshakespeare --preset=quick --steps=50 --save-every=50 --log-every=10 "${common[@]}" \
    > "$out/lm.out" 2> "$out/lm.err"
"$bin/mt" --data=multi30k --preset=quick --steps=30 --save-every=30 --log-every=5 "${common[@]}" \
    > "$out/mt.out" 2> "$out/mt.err"
"$bin/lm" --data=tinyshakespeare --preset=quick --steps=20 --save-every=20 --log-every=10 --dropout=0.1 \
    --variants=V,D,R+V --tag=drop "${common[@]}" > "$out/lmdrop.out" 2> "$out/lmdrop.err"
"$bin/mt" --data=multi30k --preset=quick --steps=20 --save-every=20 --log-every=5 --dropout=0.1 \
    --variants=V,R+D --tag=drop --decode-limit=20 "${common[@]}" > "$out/mtdrop.out" 2> "$out/mtdrop.err"
python3 - "$out" > "$out/hashes.txt" <<'PY'
import glob, hashlib, os, struct, sys
for path in sorted(glob.glob(sys.argv[1] + "/ck/*.ckpt")):
    b = open(path, "rb").read()
    assert b[:8] == b"SYNTHCKP", path
    off, sections = 12, {}
    while off < len(b) - 8:  # sections: tag u32, length u64, payload (src/train/checkpoint.h)
        tag, n = struct.unpack_from("<IQ", b, off)
        sections[struct.pack("<I", tag).decode()] = b[off + 12:off + 12 + n]
        off += 12 + n
    digest = hashlib.sha256(sections["PARM"] + sections["OPTM"] + sections["STAT"]).hexdigest()[:16]
    print(os.path.basename(path), digest)
PY
cat "$out/hashes.txt"
