#!/usr/bin/env bash
# `make coldstart`: every function's init for its release build (x86_64, this machine), from
# process start to its first Runtime API `next`, against a stub Runtime API with the local stack
# up, beside the seed's stack in Python (boto3 + FastAPI): reports/coldstart.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { echo "[coldstart] $*" >&2; }
./local/stack.sh tools
CVENV="$ROOT/.venv-coldstart"
# shellcheck source=local/venv.sh
source "$ROOT/local/venv.sh"
venv_install "$CVENV" "$ROOT/local/requirements-coldstart.txt" "the Python reference (boto3, FastAPI)"
mapfile -t bins < <(awk '/^ *Binary: / { print $2 }' template.yaml | sort -u)
args=(); for b in "${bins[@]}"; do args+=(--bin "$b"); done
say "release builds of ${#bins[@]} functions for this machine"
cargo build --quiet --release "${args[@]}"
cargo build --quiet --bin naksha-local
./local/with-stack.sh ./target/debug/naksha-local coldstart --bin-dir target/release --runs "${COLDSTART_RUNS:-5}" \
  --python "$CVENV/bin/python" --out reports/coldstart.md
