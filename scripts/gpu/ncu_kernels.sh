#!/usr/bin/env bash
# Per-kernel durations (and SOL throughput) of one call's kernels under Nsight Compute, for a bench
# row (run on the GPU machine after scripts/gpu/build.sh): e.g. the backward's prep, main and post
# kernels, to see what the memory-bound passes cost beside the main kernel.
#   ROWS="bwd-d128-s1k bwd-d128-s4k" KERNELS=regex:fc_bwd COUNT=3 scripts/gpu/ncu_kernels.sh
# ncu locks the clocks to base: compare the kernels' shares, not absolute times with the bench's.
set -uo pipefail
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-/tmp/flashcore-cache}
for row in ${ROWS:?}; do
  echo "=== $row"
  ncu --section SpeedOfLight -k "${KERNELS:-regex:fc_}" -s "${SKIP:-3}" -c "${COUNT:-3}" \
      .stage/flashcore bench --suite all --only "$row" --iters 2 2>&1 \
    | grep -E '^  [a-z_0-9]+.*\(|Duration|DRAM Throughput|Compute \(SM\)'
done
