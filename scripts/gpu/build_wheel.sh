#!/usr/bin/env bash
# Build the abi3 wheel of the Python package (flashcore._native + python/flashcore) into .stage/,
# which .gitignore excludes; no GPU or CUDA toolkit needed. On the GPU machine (repo root):
#   scripts/gpu/run_python.sh tests     (every `gpu` test; `bwd`, `bench`, `all`: see that script)
# which does: pip install --no-deps --target /tmp/fcpy .stage/flashcore-*.whl
#             PYTHONPATH=/tmp/fcpy python3 -m pytest python/tests -m gpu
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .stage
rm -f .stage/flashcore-*.whl
maturin build --release --out .stage
ls -la .stage/flashcore-*.whl
