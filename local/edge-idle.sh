#!/usr/bin/env bash
# `make bench` (D.4): the release edge-node's resident memory while idle — registered with the
# running local stack, heartbeating and polling, with nothing to do — after 20 seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=.local/bench-edge
rm -rf "$dir" && mkdir -p "$dir"
./target/debug/naksha-local token --tenant bench --sub idle-node --roles edge >"$dir/token.jwt"
./target/release/edge-node --hub http://127.0.0.1:9000 --token-file "$dir/token.jwt" --state "$dir/state" \
  --labels site=bench >"$dir/node.log" 2>&1 &
pid=$!
sleep 20
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
echo "edge-node idle: resident ${rss} KiB after 20 s (peak ${hwm} KiB), registered, heartbeating every 15 s and polling every 2 s"
