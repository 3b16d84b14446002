#!/usr/bin/env bash
# Session 16, first call: (1) scripts/gpu/s16_row_probe.py (the Python bench's timing of the MQA,
# GQA and D128 S512 / S4K rows against the kernels' own device time, two flush sizes); (2) the CLI's
# A B of the same rows; (3) Nsight Compute stall samples of the D128 S512 forward and the D64 S4K
# backward main kernel (scripts/gpu/ncu_stalls.py). On the GPU machine after scripts/gpu/build.sh
# and build_wheel.sh (carry .stage). Logs in $OUT.
set -uo pipefail
. scripts/gpu/env.sh
python3 -m pip install -q --no-deps --upgrade --target /tmp/fcpy .stage/flashcore-*.whl || exit 1
timeout 200 python3 scripts/gpu/s16_row_probe.py > "$out/s16-row-probe.txt" 2>&1
echo "probe rc=$?"
CONFIGS="def:" ONLY="mqa16-1-s2k gqa32-8-s8k-causal d128-s512 d128-s4k" SUITE=all timeout 120 scripts/gpu/ab.sh > "$out/s16-row-probe-cli.txt" 2>&1
cat "$out/s16-row-probe-cli.txt"
for spec in "fwd:d128-s512:regex:fc_fwd_sm90" "bwd:bwd-d64-s4k:regex:fc_bwd_sm90"; do
  IFS=: read -r tag row k1 k2 <<< "$spec"
  timeout 200 ncu --set full --import-source no -k "$k1:$k2" -s 3 -c 1 -o "/tmp/s16-$tag" -f \
    .stage/flashcore bench --suite all --only "$row" --iters 2 > "$out/s16-ncu-$tag-run.txt" 2>&1
  echo "ncu $tag rc=$?"
  ncu -i "/tmp/s16-$tag.ncu-rep" --page details > "$out/s16-ncu-$tag-details.txt" 2>&1
  python3 scripts/gpu/ncu_stalls.py "/tmp/s16-$tag.ncu-rep" 45 > "$out/s16-ncu-$tag-stalls.txt" 2>&1
  grep -E "Duration|Tensor|Issue Slots Busy|Issued Ipc|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|L2 Hit Rate" "$out/s16-ncu-$tag-details.txt" | head -20
done
