#!/usr/bin/env bash
# Compile kernels on the build machine (no GPU: NVRTC from the pip package nvidia-cuda-nvrtc, the
# same 13.0 the GPU machine has) into .stage/fc-cache, so a device call loads them instead of
# spending its minutes compiling. The cache key holds the source, the options, NVRTC's version and
# the arch, so a kernel compiled here is the one the GPU machine would compile.
#   NVRTC_LIB=.../nvidia/cu13/lib scripts/gpu/warm_cache.sh "bf16" [ENV=V ...]
# The arguments after the filter are environment settings (knobs) for that warm-up; the device
# script copies .stage/fc-cache into its cache folder. FC_BIN: another staged CLI (an old build).
set -euo pipefail
cd "$(dirname "$0")/../.."
only=${1:?usage: warm_cache.sh FILTER [ENV=V ...]}
shift
export LD_LIBRARY_PATH=${NVRTC_LIB:?set NVRTC_LIB to the nvidia/cu13/lib folder of the pip package}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export FLASHCORE_NVRTC_PATH=$NVRTC_LIB FLASHCORE_CACHE_DIR=$PWD/.stage/fc-cache
env "$@" "${FC_BIN:-.stage/flashcore}" warmup --arch sm_90a --only "$only" | tail -n 1
du -sh .stage/fc-cache
