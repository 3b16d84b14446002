#!/usr/bin/env bash
# Session 24: the CLI's long-32k-causal ran at 645 TF/s where the Python suite's ran at 718 on the
# same H200. The CLI asks for the LSE; the suite does not. scripts/gpu/lse_probe.py times the
# Python forward without / with the LSE / on the training path beside cuDNN; then the CLI A B A B
# with the TMA-store epilogue on (default) and off.
# GPU machine after scripts/gpu/build.sh and build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
export FLASHCORE_CACHE_DIR=/tmp/fc
install_wheel || exit 1
timeout 200 python3 scripts/gpu/lse_probe.py > "$out/s24-lse-probe.txt" 2>&1
echo "lse probe rc=$?"
cat "$out/s24-lse-probe.txt" | grep -v Warning
for s in "long long-32k-causal" "fa d128-s4k"; do
  CONFIGS="tma: notma:FLASHCORE_SM90_TMA_STORE=0" SUITE=${s%% *} ONLY=${s#* } ITERS=20 \
    timeout 150 scripts/gpu/ab.sh >> "$out/s24-tma-ab.txt" 2>&1
done
sort -s -k3,3 "$out/s24-tma-ab.txt"
