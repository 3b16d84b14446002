#!/usr/bin/env bash
# The kernel change this measures (sm90/consumer.cuh kHalfDiag) was taken out again; its code is commit 219f0f4.
# Session 14: causal diagonal blocks at N = 64 for the warpgroup whose rows end before the block's
# second half (sm90/consumer.cuh kHalfDiag; the serial two-consumer tiles: 16-bit d64 causal with
# up to 1K keys). Correctness (Rust GPU tests, inference-path tests, validate --quick), then the old
# build (.stage/flashcore-old, the tree before) against the new, A B A B, and the same-process
# Python bench of the d64 causal rows beside SDPA. GPU machine after build.sh and build_wheel.sh.
#   PARTS="tests ab python" (default: all three)
set -uo pipefail
. scripts/gpu/env.sh
parts=${PARTS:-tests ab python}
if [[ " $parts " == *" tests "* ]]; then
{
  timeout 200 .stage/gpu-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  timeout 150 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  timeout 120 .stage/flashcore validate --quick 2>&1 | tail -25
} > $out/s14-halfdiag-tests.txt 2>&1
grep -E "test result|FAIL|panicked" $out/s14-halfdiag-tests.txt
fi
if [[ " $parts " == *" ab "* ]]; then
CONFIGS=${CONFIGS:-"old@.stage/flashcore-old: new: new128:FLASHCORE_SM90_TILE=128x128s2"} SUITE=fa \
  ONLY=${ONLY:-"d64-s512-causal d64-s1k-causal d64-s2k-causal d64-s4k-causal d128-s512-causal"} \
  scripts/gpu/ab.sh > $out/s14-halfdiag-ab.txt 2>&1
sort -s -k3,3 $out/s14-halfdiag-ab.txt
fi
if [[ " $parts " == *" python "* ]]; then
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy .stage/flashcore-*.whl || exit 1
for p in 1 2; do
  python3 -m flashcore bench --suite fa --only d64-s --json $out/s14-halfdiag-python-d64-p$p.json > $out/s14-halfdiag-python-d64-p$p.log 2>&1
done
grep -E "causal" $out/s14-halfdiag-python-d64-p*.log | head -40
fi
