#!/usr/bin/env bash
# compute-sanitizer (memcheck, racecheck, synccheck) on edge rows that run the two-CTA cluster
# forward (forced on: FLASHCORE_SM90_CLUSTER=1): causal bottom-right with Sq < Sk, causal fp16,
# d256 non-causal (rotated key loop). On the GPU machine after scripts/gpu/build.sh (carry
# .stage); log in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_SM90_CLUSTER=1
for row in ${ROWS:-sq1000-sk4097-br s1000-d128-causal s1000-d256}; do
  for tool in ${TOOLS:-memcheck racecheck synccheck}; do
    echo "== $row $tool"
    timeout 60 compute-sanitizer --tool "$tool" .stage/flashcore validate --full --only "$row" 2>&1 \
      | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|pass|FAIL|rror" | grep -v "^name" | head -n 6
  done
done
