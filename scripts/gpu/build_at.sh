#!/usr/bin/env bash
# The CLI of another commit, for an old / new A B A B in one device call (scripts/gpu/ab.sh's
# label@binary configurations): builds REV in a temporary worktree (here, no GPU needed) and stages
# the binary as .stage/flashcore-NAME.
#   scripts/gpu/build_at.sh 1fd74fa pre      # -> .stage/flashcore-pre
set -euo pipefail
rev=${1:?usage: build_at.sh REV NAME}
name=${2:?usage: build_at.sh REV NAME}
cd "$(dirname "$0")/../.."
root=$(pwd)
wt=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true; rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$rev"
(cd "$wt" && CARGO_TARGET_DIR="$root/target/build-at" cargo build --release -q -p flashcore-cli)
mkdir -p .stage
cp "$root/target/build-at/release/flashcore" ".stage/flashcore-$name"
ls -la ".stage/flashcore-$name"
