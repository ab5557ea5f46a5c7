#!/usr/bin/env bash
# data/fetch.sh: fetch the data sets and check every file's sha256.
#
#   bash data/fetch.sh [tinyshakespeare|ptb|multi30k|all] ...     (default: all)
#
# Files land in data/cache/<dir>/, with the same layout as the offline mirror, so
# SYNTH_DATA_DIR may point at either:
#   tinyshakespeare/input.txt
#   ptb/ptb.{train,valid,test}.txt
#   multi30k_en_de/{train,val,test2016,test2017_flickr,test2017_mscoco,test2018_flickr}.{en,de}
#
# Where the bytes come from:
#   SYNTH_DATA_MIRROR=<dir>  copy from <dir>/<dir of the set>/ (a local mirror, no network);
#   unset                    the mirror ../shared/data next to the repo if it exists, else download;
#   SYNTH_DATA_MIRROR=       (empty) always download from the public origins in data/README.md.
#
# data/SHA256SUMS is the single source of truth for which files a set has and what they
# must hash to. Each file is staged under a temporary name, checked, and only then moved
# into place, so a corrupt or half-downloaded file never sits under its final name.
# A file already in the cache with the right hash is not fetched again.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
manifest=$here/SHA256SUMS
cache=$here/cache

die() {
    echo "data/fetch.sh: $*" >&2
    exit 1
}
trap 'die "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR

staging=""
trap 'if [[ -n $staging ]]; then rm -rf "$staging"; fi' EXIT

[[ -f $manifest ]] || die "manifest $manifest is missing"
command -v sha256sum >/dev/null || die "sha256sum not found (it is part of coreutils)"

# The mirror, or "" to download.
if [[ -z ${SYNTH_DATA_MIRROR+set} ]]; then
    mirror=""
    if [[ -d $repo/../shared/data ]]; then mirror=$(cd "$repo/../shared/data" && pwd); fi
else
    mirror=$SYNTH_DATA_MIRROR
    [[ -z $mirror || -d $mirror ]] || die "SYNTH_DATA_MIRROR='$mirror' is not a directory"
fi

# ---- the manifest ----------------------------------------------------------------------

# files_of <dir>: the file names the manifest lists under <dir>/.
files_of() {
    awk -v d="$1/" '$1 !~ /^#/ && index($2, d) == 1 { print substr($2, length(d) + 1) }' "$manifest"
}

# expected_sha <dir>/<file>
expected_sha() {
    awk -v p="$1" '$1 !~ /^#/ && $2 == p { print $1 }' "$manifest"
}

sha_of() {
    local out
    out=$(sha256sum "$1")
    echo "${out%% *}"
}

# ---- downloading from the public origins (see data/README.md) --------------------------

# download <url> <out>: curl with retries; on failure, die with curl's one-line reason.
download() {
    local url=$1 out=$2 err
    command -v curl >/dev/null || die "curl not found; install it or set SYNTH_DATA_MIRROR to a local copy"
    if ! err=$(curl -fsSL --retry 4 --retry-delay 3 --connect-timeout 30 -o "$out" "$url" 2>&1); then
        die "download failed: $url: ${err##*$'\n'}"
    fi
}

# download_<set> <staging dir> <file>...: leave each named file, as published, in the staging dir.

download_tinyshakespeare() {
    local to=$1
    download "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt" \
        "$to/input.txt"
}

# The three PTB files only exist upstream inside data/ptb.zip (the unzipped train file is
# over GitHub's raw size limit). Members are matched by name wherever they sit in the zip;
# macOS resource forks (__MACOSX/._ptb.train.txt) would match too, so they are excluded.
download_ptb() {
    local to=$1
    shift
    command -v unzip >/dev/null || die "unzip not found (apt-get install unzip), or set SYNTH_DATA_MIRROR to a local copy"
    download "https://raw.githubusercontent.com/timbmg/RNNLM/e26dff5d8f4b5d07ee459f192ee2131923d7584f/data/ptb.zip" \
        "$to/ptb.zip"
    local patterns=() f
    for f in "$@"; do patterns+=("*$f"); done
    unzip -qq -o -j "$to/ptb.zip" "${patterns[@]}" -x '__MACOSX/*' -d "$to" ||
        die "cannot extract $* from ptb.zip"
    for f in "$@"; do [[ -f $to/$f ]] || die "ptb.zip has no member named $f"; done
}

# Multi30k publishes gzipped files with slightly different names:
# test2016.en <- test_2016_flickr.en.gz, test2017_flickr.en <- test_2017_flickr.en.gz, ...
download_multi30k_en_de() {
    local to=$1
    shift
    local f base lang upstream
    for f in "$@"; do
        base=${f%.*}
        lang=${f##*.}
        case $base in
            test2016) upstream=test_2016_flickr ;;
            test20*) upstream=${base/test20/test_20} ;;
            *) upstream=$base ;;
        esac
        download "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/$upstream.$lang.gz" \
            "$to/$f.gz"
        gzip -dc "$to/$f.gz" >"$to/$f" || die "cannot gunzip $upstream.$lang.gz"
    done
}

# ---- one set ---------------------------------------------------------------------------

# fetch_set <dir>: make data/cache/<dir>/ hold every manifest file with the right hash.
fetch_set() {
    local dir=$1 f want missing=()
    local files
    files=$(files_of "$dir")
    [[ -n $files ]] || die "the manifest lists no files for '$dir'"
    for f in $files; do
        if [[ -f $cache/$dir/$f ]]; then
            [[ $(sha_of "$cache/$dir/$f") == "$(expected_sha "$dir/$f")" ]] && continue
            echo "$dir/$f: cached copy has the wrong sha256, fetching it again"
        fi
        missing+=("$f")
    done
    if ((${#missing[@]} == 0)); then
        echo "$dir: ok (already in data/cache/$dir)"
        return
    fi

    mkdir -p "$cache/$dir"
    staging=$(mktemp -d "$cache/.staging.$dir.XXXXXX")
    local origin
    if [[ -n $mirror ]]; then
        origin="mirror $mirror/$dir"
        for f in "${missing[@]}"; do
            [[ -f $mirror/$dir/$f ]] || die "$dir/$f is not in the mirror $mirror (SYNTH_DATA_MIRROR)"
            cp "$mirror/$dir/$f" "$staging/$f" || die "cannot copy $mirror/$dir/$f"
        done
    else
        origin="download"
        "download_$dir" "$staging" "${missing[@]}"
    fi

    local got
    for f in "${missing[@]}"; do
        want=$(expected_sha "$dir/$f")
        got=$(sha_of "$staging/$f")
        [[ $got == "$want" ]] ||
            die "sha256 mismatch for $dir/$f (from $origin): expected $want, got $got"
        chmod 644 "$staging/$f"
        mv -f "$staging/$f" "$cache/$dir/$f"
    done
    rm -rf "$staging"
    staging=""
    echo "$dir: ok (${#missing[@]} file(s) from $origin, sha256 checked)"
}

# ---- main ------------------------------------------------------------------------------

(($# > 0)) || set -- all
dirs=()
for arg in "$@"; do
    case $arg in
        tinyshakespeare) dirs+=(tinyshakespeare) ;;
        ptb) dirs+=(ptb) ;;
        multi30k | multi30k_en_de) dirs+=(multi30k_en_de) ;;
        all) dirs+=(tinyshakespeare ptb multi30k_en_de) ;;
        *) die "unknown data set '$arg' (expected tinyshakespeare, ptb, multi30k or all)" ;;
    esac
done
for dir in "${dirs[@]}"; do fetch_set "$dir"; done
