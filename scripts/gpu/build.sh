#!/usr/bin/env bash
# Build here (no GPU, no CUDA toolkit needed) and stage what the GPU machine needs in .stage/,
# which .gitignore excludes; pass `.stage` in the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p flashcore-cli
mkdir -p .stage
cp target/release/flashcore .stage/flashcore
echo "staged: $(ls -la .stage)"
