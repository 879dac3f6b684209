#!/usr/bin/env bash
# Run a command against the local stack: start it if it is down, and stop it afterwards
# only if this script started it ("leaves it as it found it").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
started=""
if ! "$ROOT/local/stack.sh" healthy; then
  NAKSHA_NO_RELOAD=1 "$ROOT/local/stack.sh" up
  started=1
fi
cleanup() { if [ -n "$started" ]; then "$ROOT/local/stack.sh" down; fi; }
trap cleanup EXIT
"$@"
