#!/usr/bin/env bash
# Session 13: programmatic dependent launch (launch::launch_dependent): the split combine after the
# Hopper forward, and the backward's main and post kernels after prep and main, start while the
# kernel before them finishes. Inference GPU tests and the backward GPU tests, then A B A B against
# the previous build (.stage/flashcore-old): decode suite, backward rows. On the GPU machine after
# scripts/gpu/build.sh with the old CLI copied to .stage/flashcore-old (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
{
  timeout 200 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "test result|panicked|FAILED"
  timeout 200 .stage/gpu-tests --test-threads 1 backward 2>&1 | grep -E "test result|panicked|FAILED"
} > $out/s13-pdl-tests.txt 2>&1
cat $out/s13-pdl-tests.txt
ONLY=decode-b1 CONFIGS="old:@.stage/flashcore-old, new:" timeout 150 scripts/gpu/decode_ab.sh > $out/s13-pdl-decode-ab.txt 2>&1
grep -E "decode-b1" $out/s13-pdl-decode-ab.txt | sort -s -k3,4
CONFIGS="old@.stage/flashcore-old: new:" ONLY="bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k" SUITE=bwd timeout 200 scripts/gpu/ab.sh > $out/s13-pdl-bwd-ab.txt 2>&1
sort -s -k3,3 $out/s13-pdl-bwd-ab.txt
