#!/usr/bin/env bash
# The kernel change this measures was taken out again after this run (slower on every d64 row); its code is commit bb478b7.
# Session 26: the d64 backward's descriptors (gemm_kq's K / V rows, dQ's dS rows) from the
# warpgroup index through a shuffle, in the pipelined loop only (the whole index through the
# shuffle spilled at d 64 in session 25). Compile check: no spill, every R2UR out of the step loop,
# 32-37 SASS instructions shorter. Prediction: +0.5-2% on the d64 backward rows. A B A B against
# the tree before (.stage/flashcore-base), then the backward GPU tests and the d64 backward rows of
# `validate --full` with the new build. GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
packed_logs s26-bwdwu
CONFIGS="base@.stage/flashcore-base: new:" SUITE=bwd ITERS=20 ONLY="bwd-d64" timeout 240 scripts/gpu/ab.sh > "$log/s26-bwdwu-ab.txt" 2>&1
sort -s -k3,3 "$log/s26-bwdwu-ab.txt"
pack
timeout 150 .stage/gpu-tests --test-threads 1 backward > "$log/s26-bwdwu-tests.txt" 2>&1
echo "backward tests rc=$? $(grep -E '^test result' "$log/s26-bwdwu-tests.txt")"
timeout 90 .stage/flashcore validate --full --only bwd-d64 > "$log/s26-bwdwu-validate.txt" 2>&1
timeout 60 .stage/flashcore validate --full --only bwd-sq4097 >> "$log/s26-bwdwu-validate.txt" 2>&1
echo "validate: $(grep -c ' pass ' "$log/s26-bwdwu-validate.txt") pass, $(grep -c ' FAIL ' "$log/s26-bwdwu-validate.txt") FAIL"
pack
