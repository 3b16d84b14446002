#!/usr/bin/env bash
# Session 25: the backward's consumer warpgroup index through a shuffle (kernels/sm90/bwd.cu), so
# the descriptors built from it stay uniform, at d 96 / 128, against 452903b (.stage/flashcore-desc,
# `scripts/gpu/build_at.sh 452903b desc`). Prediction (bench/NOTES.md session 25 item 3): the d128
# 80-row step loop 650 -> 606 SASS instructions, every R2UR out of it: +0.5-1.5% on the d128 / d96
# rows. A B A B of those rows, then the backward GPU tests and `validate --full --only bwd-` with
# the new build. GPU machine after scripts/gpu/build.sh (carry .stage). Logs packed into
# $OUT/s25-uniform.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s25-uniform
CONFIGS="base@.stage/flashcore-desc: new:" SUITE=bwd ITERS=20 ONLY="bwd-d128 bwd-gqa bwd-mqa" timeout 240 scripts/gpu/ab.sh > "$log/s25-uniform-ab.txt" 2>&1
CONFIGS="base@.stage/flashcore-desc: new:" SUITE=bwd-long ITERS=20 ONLY="bwd-d96-s4k bwd-d128-s2k" timeout 90 scripts/gpu/ab.sh >> "$log/s25-uniform-ab.txt" 2>&1
sort -s -k3,3 "$log/s25-uniform-ab.txt"
pack
bwd_checks new 150
pack
