#!/usr/bin/env bash
# Session 21's first device call: (1) where the backward's time goes per kernel on the short rows
# (bwd_split_probe.py, flashcore beside cuDNN); (2) the FP8 checks on the host refactor of commit
# a9c5f17 (one Sm90Params for both V paths), which no device had run; (3) bwd_exit_ab.sh (session
# 20's FLASHCORE_SM90_BWD_EXIT_READ knob; it measured level and was removed with its script after
# this run: both are at commit a9c5f17).
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
install_wheel
packed_logs s21-first
timeout 150 python3 scripts/gpu/bwd_split_probe.py > "$log/bwd-split-probe.txt" 2>&1
echo "probe rc=$?"; grep -E "===|total" "$log/bwd-split-probe.txt"
pack
fp8_checks fp8-refactor
pack
[ -f scripts/gpu/bwd_exit_ab.sh ] && bash scripts/gpu/bwd_exit_ab.sh
