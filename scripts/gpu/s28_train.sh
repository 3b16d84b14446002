#!/usr/bin/env bash
# Session 28: the GPT training step (bench/train_step.py) patched with flashcore against torch's
# SDPA backends, configurations taking turns over rounds, at 4K tokens x 4 (session 24's shape),
# 16K x 1 and 32K x 1, where attention is a larger share of the step. JSON per shape into $OUT,
# logs packed into $OUT/s28-train.tgz. GPU machine after scripts/gpu/build_wheel.sh (carry .stage).
set -uo pipefail
. scripts/gpu/env.sh
packed_logs s28-train
install_wheel
for shape in "4096 4" "16384 1" "32768 1"; do
  set -- $shape
  timeout 200 python3 bench/train_step.py --layers 4 --seq "$1" --batch "$2" --steps 10 --rounds 3 \
    --json "$out/$day-$gpu-s28-train-s$1.json" > "$log/train-s$1.txt" 2>&1
  echo "== seq $1 batch $2 rc=$?"
  tail -n 7 "$log/train-s$1.txt"
  pack
done
