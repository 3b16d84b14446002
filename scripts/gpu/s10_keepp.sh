#!/usr/bin/env bash
# Session 10: with the rescale slack in, keep-P (FLASHCORE_SM90_KEEP_P) forced off / on beside the
# new defaults (on for 16-bit d128), and d128 with ping-pong off, A B A B; then the FP8 defaults
# (P factor 2^4 + slack 4): the FP8 GPU test and `flashcore fp8` (every mode against the naive FP8
# bar). On the GPU machine after scripts/gpu/build.sh (carry .stage); logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
CONFIGS="def: kp0:FLASHCORE_SM90_KEEP_P=0 kp1:FLASHCORE_SM90_KEEP_P=1" \
  ONLY="d64-s1k d64-s4k d96-s4k d128-s512 d128-s16k" SUITE=fa timeout 250 scripts/gpu/ab.sh > $out/s10-keepp2-ab.txt 2>&1
CONFIGS="def: kp0:FLASHCORE_SM90_KEEP_P=0 kp1:FLASHCORE_SM90_KEEP_P=1" ONLY="seed-h96" SUITE=seed timeout 60 scripts/gpu/ab.sh >> $out/s10-keepp2-ab.txt 2>&1
sort -s -k3,3 $out/s10-keepp2-ab.txt
CONFIGS="def: pp0:FLASHCORE_SM90_PINGPONG=0" ONLY="d128-s1k d128-s4k" SUITE=fa timeout 120 scripts/gpu/ab.sh > $out/s10-pp-ab.txt 2>&1
sort -s -k3,3 $out/s10-pp-ab.txt
timeout 100 .stage/gpu-tests --test-threads 1 fp8 > $out/s10-fp8-tests.txt 2>&1; echo "tests rc=$?" >> $out/s10-fp8-tests.txt
tail -n 3 $out/s10-fp8-tests.txt
timeout 150 .stage/flashcore fp8 > $out/s10-fp8-validate.txt 2>&1; echo "fp8 validate rc=$?" >> $out/s10-fp8-validate.txt
tail -n 3 $out/s10-fp8-validate.txt
