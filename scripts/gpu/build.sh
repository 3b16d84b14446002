#!/usr/bin/env bash
# Build here (no GPU, no CUDA toolkit needed) and stage what the GPU machine needs in .stage/,
# which .gitignore excludes; pass `.stage` in the device tool's `carry`.
#   .stage/flashcore        the CLI (release)
#   .stage/gpu-tests        the Rust GPU test binary (crates/flashcore/tests/gpu.rs, feature gpu)
#   .stage/gpu-infer-tests  the inference paths' GPU tests (crates/flashcore/tests/gpu_infer.rs)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p flashcore-cli
mkdir -p .stage
cp target/release/flashcore .stage/flashcore
exe=$(cargo test --release -p flashcore --features gpu --test gpu --no-run 2>&1 | sed -nE 's/.*Executable tests\/gpu.rs \((.*)\)/\1/p' | tail -n 1)
[ -n "$exe" ] || { echo "could not find the gpu test binary"; exit 1; }
cp "$exe" .stage/gpu-tests
exe=$(cargo test --release -p flashcore --features gpu --test gpu_infer --no-run 2>&1 | sed -nE 's/.*Executable tests\/gpu_infer.rs \((.*)\)/\1/p' | tail -n 1)
[ -n "$exe" ] || { echo "could not find the gpu_infer test binary"; exit 1; }
cp "$exe" .stage/gpu-infer-tests
ls -la .stage
