#!/usr/bin/env bash
# Session 18: the consumer warpgroup index through __shfl_sync (fwd.cu, bwd.cu), so that ptxas
# keeps the Q descriptors in uniform registers instead of rebuilding them in vector registers
# every key block, and Q·Kᵀ's step descriptors as a base plus an offset (consumer.cuh gemm_qk):
# every forward main loop shorter (86132 -> 81970 instructions over the 120 sm_90a variants),
# the backward's by 14-38 instructions.
# A B A B against the tree before the published tiles (c1311df, "before") and with them
# (0d695ea, "pub"), no LSE, then the GPU tests.
#   PART=fwd   forward rows (fa, seed, gqa) and FP8 per-tensor rows, forward and FP8 GPU tests
#   PART=bwd   backward rows (pub / new), backward and inference GPU tests
# Here first: scripts/gpu/build.sh && scripts/gpu/build_at.sh c1311df before && scripts/gpu/build_at.sh 0d695ea pub
# GPU machine; carry .stage. Logs in $OUT, packed into one archive.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_BENCH_LSE=0 FLASHCORE_CACHE_DIR=/tmp/fc
part=${PART:-fwd}
if [ "$part" = fwd ]; then
  C="before@.stage/flashcore-before: pub@.stage/flashcore-pub: new:"
  {
    CONFIGS="$C" SUITE=fa ONLY="d64-s d128-s" bash scripts/gpu/ab.sh
    CONFIGS="$C" SUITE=gqa ONLY="mqa16 gqa32" bash scripts/gpu/ab.sh
    CONFIGS="$C" SUITE=seed ONLY=seed-h96 bash scripts/gpu/ab.sh
  } | tee "$out/s18-uniform-fwd-ab.txt"
  CONFIGS="pub@.stage/flashcore-pub: new:" SHAPES="s4096 d128|s16384 d128|s4096 d64|s4096 d256" scripts/gpu/fp8_ab.sh | tee "$out/s18-uniform-fp8-ab.txt"
  {
    timeout 150 .stage/gpu-tests --test-threads 1 --skip backward 2>&1 | grep -E "^test |test result|panicked"
  } > "$out/s18-uniform-fwd-tests.txt"
  grep -E "test result|panicked" "$out/s18-uniform-fwd-tests.txt"
  tar czf "$out/s18-uniform-fwd.tgz" -C "$out" s18-uniform-fwd-ab.txt s18-uniform-fp8-ab.txt s18-uniform-fwd-tests.txt
else
  CONFIGS="pub@.stage/flashcore-pub: new:" SUITE=bwd ONLY="bwd-" bash scripts/gpu/ab.sh | tee "$out/s18-uniform-bwd-ab.txt"
  # FP8 d64 after it went back to the plain warpgroup index (PART=fwd had it 6% below pub).
  CONFIGS="pub@.stage/flashcore-pub: new:" SHAPES="s4096 d64" scripts/gpu/fp8_ab.sh | tee "$out/s18-uniform-fp8-d64-ab.txt"
  timeout 100 .stage/gpu-tests --test-threads 1 fp8 2>&1 | grep -E "^test |test result|panicked" > "$out/s18-uniform-fp8-tests.txt"
  {
    timeout 200 .stage/gpu-tests --test-threads 1 backward 2>&1 | grep -E "^test |test result|panicked"
    timeout 100 .stage/gpu-infer-tests --test-threads 1 2>&1 | grep -E "^test |test result|panicked"
  } > "$out/s18-uniform-bwd-tests.txt"
  grep -E "test result|panicked" "$out/s18-uniform-bwd-tests.txt"
  tar czf "$out/s18-uniform-bwd.tgz" -C "$out" s18-uniform-bwd-ab.txt s18-uniform-bwd-tests.txt s18-uniform-fp8-d64-ab.txt s18-uniform-fp8-tests.txt
fi
