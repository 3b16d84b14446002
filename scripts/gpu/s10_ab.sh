#!/usr/bin/env bash
# Session 10, first device call: the softmax's rescale slack (FLASHCORE_RESCALE_SLACK, default 8)
# against the old exact test (0), and d128 on a 192-row tile of three serial consumer warpgroups,
# A B A B; the Rust GPU tests and `validate --quick` with the new defaults first. On the GPU
# machine after scripts/gpu/build.sh (carry .stage); logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
timeout 200 .stage/gpu-tests --test-threads 1 > $out/s10-tests.txt 2>&1; echo "tests rc=$?" >> $out/s10-tests.txt
tail -n 3 $out/s10-tests.txt
timeout 120 .stage/flashcore validate --quick > $out/s10-validate-quick.txt 2>&1; echo "validate rc=$?" >> $out/s10-validate-quick.txt
tail -n 2 $out/s10-validate-quick.txt
CONFIGS="def: s0:FLASHCORE_RESCALE_SLACK=0" ONLY="d128-s1k d128-s4k d128-s16k d64-s4k d256-s4k" SUITE=fa \
  timeout 200 scripts/gpu/ab.sh > $out/s10-slack-ab.txt 2>&1
CONFIGS="def: s0:FLASHCORE_RESCALE_SLACK=0" ONLY="seed-h96" SUITE=seed timeout 60 scripts/gpu/ab.sh >> $out/s10-slack-ab.txt 2>&1
sort -s -k3,3 $out/s10-slack-ab.txt
T=FLASHCORE_SM90_TILE=192x128,FLASHCORE_SM90_Q_STAGES=1,FLASHCORE_SM90_OVERLAP=0
CONFIGS="def: t192:$T t192p0:$T,FLASHCORE_SM90_PINGPONG=0" ONLY="d128-s4k d128-s16k d128-s2k" SUITE=fa \
  timeout 200 scripts/gpu/ab.sh > $out/s10-t192-ab.txt 2>&1
sort -s -k3,3 $out/s10-t192-ab.txt
