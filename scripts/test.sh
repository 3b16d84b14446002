#!/usr/bin/env bash
# The test command (README): everything CI runs, on a machine with no GPU and no CUDA toolkit.
# Installs what it needs itself: NVRTC, cuobjdump and nvdisasm from pip into a venv (outside the
# loader path on purpose: the first compile must preload libnvrtc-builtins by full path).
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${FLASHCORE_TEST_VENV:-$root/.venv-ci}

step() { printf '\n== %s\n' "$*"; }

step "CUDA compiler tools from pip (no toolkit, no GPU)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export FLASHCORE_NVRTC_PATH=$site/nvidia/cu13/lib FLASHCORE_REQUIRE_NVRTC=1
export PATH="$site/nvidia/cu13/bin:$PATH"
export FLASHCORE_CACHE_DIR=${FLASHCORE_CACHE_DIR:-$(mktemp -d)}

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p flashcore --features gpu --all-targets -- -D warnings
bash scripts/check_unsafe.sh

step "Rust tests (CPU reference, planner, cache, errors, NVRTC)"
cargo test --workspace

step "models of the Hopper backward's cross-CTA coordination (pure Python, assert-checked)"
for m in bwd_convert_owner bwd_zero_cover; do python3 "scripts/model/$m.py" | tail -n 1; done

step "kernel compile check: every variant for sm_80 and sm_90a, no spills, tensor-core MMAs present"
cargo build -p flashcore-cli
bash scripts/check_kernels.sh target/debug/flashcore | tail -n 3

step "two processes warming the same variants into one cache at once"
shared=$(mktemp -d)
FLASHCORE_CACHE_DIR=$shared target/debug/flashcore warmup --arch sm_80 > "$shared.a" 2>&1 &
a=$!
FLASHCORE_CACHE_DIR=$shared target/debug/flashcore warmup --arch sm_80 > "$shared.b" 2>&1 &
b=$!
wait $a && wait $b || { cat "$shared.a" "$shared.b"; exit 1; }
tail -n 1 "$shared.a" "$shared.b"
FLASHCORE_CACHE_DIR=$shared target/debug/flashcore warmup --arch sm_80 | tail -n 1

step "the main job without a GPU (validates the CPU path)"
target/debug/flashcore validate

if [ -f pyproject.toml ] && [ -x scripts/test_python.sh ]; then
  step "Python package: pip install . and pytest (CPU)"
  bash scripts/test_python.sh "${FLASHCORE_PY_VENV:-$root/.venv-py}"
fi
step "all checks passed"
