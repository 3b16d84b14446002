#!/usr/bin/env bash
# `unsafe` lives in three places only: NVRTC loading/compiling (jit/nvrtc.rs), the device layer
# (launch/ and the raw-pointer entries of runtime.rs and runtime/), and the Python binding's pointer intake.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rn --include='*.rs' -E '\bunsafe\b' crates/*/src \
  | grep -v -E '^crates/flashcore/src/(jit/nvrtc\.rs|launch/|runtime\.rs|runtime/)' \
  | grep -v -E '^crates/flashcore-py/src/' || true)
if [ -n "$bad" ]; then
  echo "unsafe outside its allowed files:"
  echo "$bad"
  exit 1
fi
echo "unsafe confined to jit/nvrtc.rs, launch/, runtime.rs (+ runtime/) and the Python binding"
