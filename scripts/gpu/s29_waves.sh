#!/usr/bin/env bash
# Session 29: scripts/gpu/s29_waves.py (backward TF/s against the CTA count's fraction of a wave).
# GPU machine after scripts/gpu/build_wheel.sh (carry .stage); logs and JSON in $OUT/s29-waves.tgz.
set -uo pipefail
. scripts/gpu/env.sh
packed_logs s29-waves
install_wheel || exit 1
timeout "${LIMIT_S:-100}" python3 scripts/gpu/s29_waves.py "$log/$day-$gpu-s29-waves.json" "${ROUNDS:-2}" > "$log/waves.log" 2>&1
echo "rc=$?"
grep -E "round|Error|error" "$log/waves.log" | tail -30
pack
