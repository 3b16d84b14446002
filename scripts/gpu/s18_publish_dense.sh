#!/usr/bin/env bash
# Session 18: the published tiles only where they paid (causal, windowed, inference variants;
# config.cuh Sm90::kReadPublished), the dense non-causal variants decoding again as before.
# s18_first.sh had the published tiles costing dense non-causal rows 1.5-4.7% against the tree
# before them (c1311df, "before"), while causal rows gained. A B A B of before / published
# everywhere (0d695ea, "pub") / this tree ("new"), no LSE; then the forward and inference GPU tests.
# Here first: scripts/gpu/build.sh && scripts/gpu/build_at.sh c1311df before && scripts/gpu/build_at.sh 0d695ea pub
# GPU machine; carry .stage. Logs in $OUT, packed into one archive.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
C="before@.stage/flashcore-before: pub@.stage/flashcore-pub: new:"
{
  CONFIGS="$C" SUITE=fa ONLY="${ONLY:-d64-s d128-s512 d128-s8k d128-s16k}" bash scripts/gpu/ab.sh
  CONFIGS="$C" SUITE=gqa ONLY=mqa16 bash scripts/gpu/ab.sh
  CONFIGS="$C" SUITE=seed ONLY=seed-h96 bash scripts/gpu/ab.sh
} | tee "$out/s18-publish-dense-ab.txt"
{
  timeout 150 .stage/gpu-tests --test-threads 1 --skip backward 2>&1 | grep -E "^test |test result|panicked"
  timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
} > "$out/s18-publish-dense-tests.txt"
grep -E "test result|panicked" "$out/s18-publish-dense-tests.txt"
tar czf "$out/s18-publish-dense.tgz" -C "$out" s18-publish-dense-ab.txt s18-publish-dense-tests.txt
