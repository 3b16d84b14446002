#!/usr/bin/env bash
# Python package tests from scratch: a new venv at $1, torch 2.11 + test tools, `pip install .` of this
# repo (maturin builds the Rust extension; needs cargo), then pytest over python/tests.
# GPU tests (marker `gpu`) are skipped where torch sees no CUDA device.
#   scripts/test_python.sh /tmp/fcvenv [extra pytest args...]
# Exits non-zero when the install fails, a test fails, or no test ran (pytest's exit code 5).
set -euo pipefail
venv=${1:?usage: scripts/test_python.sh VENV_DIR [pytest args...]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv --clear "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet torch==2.11.0 numpy pytest mypy
"$py" -m pip install --quiet "$repo"
# Run from outside the source tree so `import flashcore` is the installed wheel, not python/flashcore.
cd "$venv"
set +e
"$py" -m pytest -p no:cacheprovider --rootdir "$repo" -c "$repo/pyproject.toml" "$repo/python/tests" "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
