#!/usr/bin/env bash
# Session 31: where the Hopper backward's pipelined step loses time around the dQ path and the
# per-step dS barrier. Timing probes only (FLASHCORE_SM90_BWD_PROBE, kernels/sm90/bwd_consumer.cuh;
# the gradients are wrong, so the bench's check reports FAIL): 1 no wait for the dQ buffer's
# previous read, 2 no dQ-full barrier, 4 no dQ bulk reduce, 8 no dS barrier (with 2), 16 no dQ
# tile stores, 31 all of them. A B A B in one process tree; output printed as it goes (tee), so a
# call cut short still returns what ran. GPU machine after scripts/gpu/build.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
use_staged_cache
packed_logs s31-probe
CONFIGS="${CONFIGS:-base: p1:FLASHCORE_SM90_BWD_PROBE=1 p2:FLASHCORE_SM90_BWD_PROBE=2 p4:FLASHCORE_SM90_BWD_PROBE=4 p10:FLASHCORE_SM90_BWD_PROBE=10 p16:FLASHCORE_SM90_BWD_PROBE=16 p31:FLASHCORE_SM90_BWD_PROBE=31}" \
  SUITE=bwd ITERS=${ITERS:-20} ONLY="${ONLY:-bwd-d128-s1k bwd-d64-s1k bwd-d128-s4k bwd-d64-s4k}" \
  bash scripts/gpu/ab.sh 2>&1 | tee "$log/ab.txt"
pack
