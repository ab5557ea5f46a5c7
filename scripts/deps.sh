#!/usr/bin/env bash
# scripts/deps.sh: make sure the Debian packages synth builds against are installed.
#
#   bash scripts/deps.sh                    (run by `make deps`, `make test`, ...)
#   SYNTH_WITH_TORCH=1 bash scripts/deps.sh also require python3-torch (reference checks)
#   SYNTH_WITH_PLOTS=1 bash scripts/deps.sh also require python3-matplotlib (make bench's plot)
#   SYNTH_WITH_SWEEPS=1 bash scripts/deps.sh also require GNU parallel, Slurm and MUNGE (make test-sweeps)
#   SYNTH_WITH_MPI=1 bash scripts/deps.sh    also require Open MPI (make test-mpi, make MPI=1)
#
# Silent when everything is installed. Otherwise, as root it installs what is missing with
# apt-get; as anyone else it prints the exact apt-get command and exits 1.
set -euo pipefail

# libdnnl-dev: oneDNN, the bf16 GEMMs of --precision=bf16 (src/engine/gemm/onednn.h). curl, ca-certificates
# and unzip: data/fetch.sh downloads and unpacks the data sets.
packages=(g++ make libopenblas-openmp-dev libdnnl-dev doctest-dev curl ca-certificates unzip)
if [[ ${SYNTH_WITH_TORCH:-0} == 1 ]]; then packages+=(python3-torch); fi
if [[ ${SYNTH_WITH_PLOTS:-0} == 1 ]]; then packages+=(python3-matplotlib); fi
if [[ ${SYNTH_WITH_SWEEPS:-0} == 1 ]]; then packages+=(parallel slurm-wlm munge); fi
if [[ ${SYNTH_WITH_MPI:-0} == 1 ]]; then packages+=(libopenmpi-dev openmpi-bin); fi

if ! command -v dpkg >/dev/null; then
    echo "scripts/deps.sh: dpkg not found (not Debian?); make sure these are installed: ${packages[*]}" >&2
    exit 0
fi

# `dpkg -s` also succeeds for a removed package whose config files remain
# ("deinstall ok config-files"), so the Status line is what decides.
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg -s "$p" 2>/dev/null) || status=""
    [[ $status == *$'\nStatus: install ok installed'* ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) == 0 ]]; then
    echo "scripts/deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "scripts/deps.sh: missing packages; run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
