#!/usr/bin/env bash
# Session 22, second call: where the in-kernel zeroing's time goes (kernels/sm90/bwd_zero.cuh).
# A B C D E A B C D E on the backward rows: the prep kernel zeroing (FLASHCORE_SM90_BWD_ZERO=0) and
# three builds of the in-kernel zeroing: B (f59c4f0: the producer acquires the row's zeros before
# step 0's loads), C (step 0's loads go out first, the acquire runs while they land), D (C, and
# the zeroing warps wait for K and V to land before their stores); then the per-kernel split
# (bwd_split_probe.py, the wheel built from D) with the zeroing in prep and in the kernel.
# GPU machine after scripts/gpu/build.sh, build_wheel.sh and build_at.sh f59c4f0 B / 897cee3 C
# (carry .stage). Logs packed into $OUT/$TAG.tgz.
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
tag=${TAG:-s22-zero-ab}
packed_logs "$tag"
CONFIGS="prep:FLASHCORE_SM90_BWD_ZERO=0 B@.stage/flashcore-B: C@.stage/flashcore-C: D:" SUITE=bwd ITERS=20 \
  ONLY="${ONLY:-bwd-d128-s1k bwd-d128-s4k bwd-d64-s1k}" scripts/gpu/ab.sh > "$log/ab.txt" 2>&1
sort -s -k3,3 "$log/ab.txt"
pack
install_wheel || exit 1
for z in 0 1; do
  FLASHCORE_SM90_BWD_ZERO=$z timeout 120 python3 scripts/gpu/bwd_split_probe.py bwd-d128-s1k bwd-d128-s4k bwd-d64-s1k-causal \
    > "$log/split-zero$z.txt" 2>&1
  echo "== zero=$z"; grep -vi warning "$log/split-zero$z.txt" | grep -v "^ *warnings\.warn" | head -40
  pack
done
