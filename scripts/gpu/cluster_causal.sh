#!/usr/bin/env bash
# Two-CTA clusters with tickets shared through the leader (causal pairs too), on the GPU machine
# after scripts/gpu/build.sh (carry .stage): the Rust GPU tests and `validate --quick` with
# clusters forced on wherever they fit, then defaults / off / forced on, A B A B. Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
timeout 60 .stage/flashcore bench --suite long --only long-32k-causal --iters 3 > $out/cc-smoke.txt 2>&1
echo "smoke rc=$?" >> $out/cc-smoke.txt; tail -n 3 $out/cc-smoke.txt
grep -q "rc=0" $out/cc-smoke.txt || exit 1
FLASHCORE_SM90_CLUSTER=1 timeout 250 .stage/gpu-tests --test-threads 1 > $out/cc-tests.txt 2>&1; echo "tests rc=$?" >> $out/cc-tests.txt
FLASHCORE_SM90_CLUSTER=1 timeout 90 .stage/flashcore validate --quick > $out/cc-validate.txt 2>&1; echo "validate rc=$?" >> $out/cc-validate.txt
tail -n 3 $out/cc-tests.txt $out/cc-validate.txt
C="def: c0:FLASHCORE_SM90_CLUSTER=0 c1:FLASHCORE_SM90_CLUSTER=1"
{
  CONFIGS="$C" ONLY="d256-s4k d128-s1k d128-s4k-causal d128-s16k-causal" SUITE=fa timeout 170 scripts/gpu/ab.sh
  CONFIGS="$C" ONLY="long-32k long-128k" SUITE=long timeout 150 scripts/gpu/ab.sh
  CONFIGS="$C" ONLY="gqa32-8" SUITE=gqa timeout 60 scripts/gpu/ab.sh
} > $out/cc-ab.txt 2>&1
sort -s -k3,3 $out/cc-ab.txt
