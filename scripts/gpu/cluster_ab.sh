#!/usr/bin/env bash
# Two-CTA clusters (K/V multicast, kernels/sm90/config.cuh kCluster) on the GPU machine, after
# scripts/gpu/build.sh with the previous CLI copied to .stage/flashcore-base (carry .stage):
# a smoke row, the Rust GPU tests and `validate --quick` with clusters on (the default), then
# old binary / clusters / clusters off (FLASHCORE_SM90_CLUSTER=0), A B A B. Logs go to $OUT.
set -uo pipefail
. scripts/gpu/env.sh
fc=.stage/flashcore
timeout 60 $fc bench --suite fa --only d128-s4k --iters 5 > $out/cluster-smoke.txt 2>&1
echo "smoke rc=$?" >> $out/cluster-smoke.txt
grep -q "rc=0" $out/cluster-smoke.txt || { cat $out/cluster-smoke.txt; exit 1; }
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout 400 .stage/gpu-tests --test-threads 1 > $out/cluster-tests.txt 2>&1; echo "tests rc=$?" >> $out/cluster-tests.txt
  timeout 200 $fc validate --quick > $out/cluster-validate.txt 2>&1; echo "validate rc=$?" >> $out/cluster-validate.txt
  tail -n 3 $out/cluster-tests.txt $out/cluster-validate.txt
fi
CONFIGS="base@.stage/flashcore-base: c2: c0:FLASHCORE_SM90_CLUSTER=0" \
  ONLY="${ONLY:-d128-s512 d128-s1k d128-s4k d128-s16k d96-s4k d256-s4k long-32k mqa}" timeout 420 scripts/gpu/ab.sh \
  > $out/cluster-ab.txt 2>&1
sort -s -k3,3 $out/cluster-ab.txt
