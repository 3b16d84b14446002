#!/usr/bin/env bash
# Session 24: does the causal backward lose its in-kernel dQ conversion to the lag? Session 21's
# reading: a causal row ends with its longest CTA (key block 0), so with a lag of a wave of rows
# the converting CTAs wait on it. The staged converter (removed in 116f7fa; the CLI of afd84ab,
# staged by `scripts/gpu/build_at.sh afd84ab staged`) is built into d 64 causal kernels: A B C D
# A B C D of the default (post kernel converts) against it at lags of 18 (a wave + 1), 36 and 72
# grid rows, CLI, D64 S1K causal (512 rows of 8 CTAs) and S4K causal (128 rows of 32 CTAs).
# GPU machine after scripts/gpu/build.sh and build_at.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
st=FLASHCORE_SM90_BWD_CONVERT_STAGED=1
CONFIGS="base: st@.stage/flashcore-staged:$st st36@.stage/flashcore-staged:$st,FLASHCORE_SM90_BWD_CONVERT_LAG=36 st72@.stage/flashcore-staged:$st,FLASHCORE_SM90_BWD_CONVERT_LAG=72" \
  SUITE=bwd ITERS=20 ONLY="bwd-d64-s1k-causal bwd-d64-s4k-causal" timeout 400 scripts/gpu/ab.sh > "$out/s24-causal-lag-ab.txt" 2>&1
sort -s -k3,3 "$out/s24-causal-lag-ab.txt"
