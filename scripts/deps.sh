#!/usr/bin/env bash
# scripts/deps.sh: make sure the Debian packages synth builds against are installed.
#
#   bash scripts/deps.sh                    (run by `make deps`, `make test`, ...)
#   SYNTH_ONEDNN=0 bash scripts/deps.sh     without oneDNN (what `make ONEDNN=0` passes)
#   SYNTH_WITH_TORCH=1 bash scripts/deps.sh also require python3-torch (reference checks)
#   SYNTH_WITH_PLOTS=1 bash scripts/deps.sh also require python3-matplotlib (make bench's plot)
#   SYNTH_WITH_SWEEPS=1 bash scripts/deps.sh also require GNU parallel, Slurm and MUNGE (make test-sweeps)
#   SYNTH_WITH_MPI=1 bash scripts/deps.sh    also require Open MPI (make test-mpi, make MPI=1)
#
# Silent when everything is installed. Otherwise, as root it installs what is missing with
# apt-get; as anyone else it prints the exact apt-get command and exits 1.
#
# Not on Debian (no dpkg): on an RPM-based system (Rocky, RHEL, Fedora: dnf or yum) it prints the
# packages to install there, or what to load as modules on a cluster without root, and leaves the
# checking to the compiler; elsewhere it names what is needed. It never stops the build there.
set -euo pipefail

# libdnnl-dev: oneDNN, the bf16 GEMMs of --precision=bf16 (src/engine/gemm/onednn.h). curl, ca-certificates
# and unzip: data/fetch.sh downloads and unpacks the data sets.
packages=(g++ make libopenblas-openmp-dev libdnnl-dev doctest-dev curl ca-certificates unzip)
if [[ ${SYNTH_ONEDNN:-1} == 0 ]]; then packages=(g++ make libopenblas-openmp-dev doctest-dev curl ca-certificates unzip); fi
if [[ ${SYNTH_WITH_TORCH:-0} == 1 ]]; then packages+=(python3-torch); fi
if [[ ${SYNTH_WITH_PLOTS:-0} == 1 ]]; then packages+=(python3-matplotlib); fi
if [[ ${SYNTH_WITH_SWEEPS:-0} == 1 ]]; then packages+=(parallel slurm-wlm munge); fi
if [[ ${SYNTH_WITH_MPI:-0} == 1 ]]; then packages+=(libopenmpi-dev openmpi-bin); fi

if ! command -v dpkg >/dev/null; then
    if command -v dnf >/dev/null || command -v yum >/dev/null; then
        installer=$(command -v dnf >/dev/null && echo dnf || echo yum)
        # The same needs by RPM names (Rocky/RHEL 8-9: openblas-devel and doctest-devel come from
        # EPEL; oneDNN has no EPEL package, so build without it or from a module).
        rpms=(gcc-c++ make openblas-devel doctest-devel curl ca-certificates unzip)
        if [[ ${SYNTH_WITH_PLOTS:-0} == 1 ]]; then rpms+=(python3-matplotlib); fi
        if [[ ${SYNTH_WITH_SWEEPS:-0} == 1 ]]; then rpms+=(parallel slurm munge); fi
        torch=""
        if [[ ${SYNTH_WITH_TORCH:-0} == 1 ]]; then torch=$'\n'"and for the PyTorch checks: pip install --user torch"; fi
        cat >&2 <<EOF
scripts/deps.sh: not Debian ($installer found, no dpkg); not checking packages. With root:
    sudo $installer install -y epel-release && sudo $installer install -y ${rpms[*]}$torch
Without root, on a cluster: load a C++17 compiler with OpenMP and OpenBLAS as modules, e.g.
    module load gcc openblas
and build without oneDNN (unless a oneDNN module is loaded), telling make where OpenBLAS is when
pkg-config cannot find it:
    make ONEDNN=0 BLAS_CFLAGS=-I\$OPENBLAS_ROOT/include BLAS_LIBS="-L\$OPENBLAS_ROOT/lib -lopenblas"
doctest is one header: put doctest/doctest.h on CPATH if it is not installed (README, "Building
elsewhere").
EOF
    else
        echo "scripts/deps.sh: neither dpkg nor dnf/yum found; not checking packages. synth needs a C++17" \
             "compiler with OpenMP, make, OpenBLAS (headers and library), doctest (one header), curl and" \
             "unzip; oneDNN is optional (make ONEDNN=0). README, \"Building elsewhere\", says how to point" \
             "make at them." >&2
    fi
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
