#!/usr/bin/env bash
# The local simulation stack: `make up` / `make down` / `make tools`.
#
#   up     start the emulator (LocalStack if it already answers on :4566, else moto from .venv),
#          provision it from template.yaml, start `cargo lambda watch` on :9000 and the harness
#          (dev JWKS on :9001, schedules) and the Kinesis pollers; return once GET /health answers 200.
#   down   stop only what `up` started (pid files under .local/pids).
#   pollers  start the Kinesis pollers if they are not running (they resume from their checkpoints).
#   crash NAME  kill NAME (moto, watch, harness, pollers) with SIGKILL, as a crash would: `make load`.
#   tools  install what the stack and the tests need: .venv (moto, cargo-lambda, cfn-lint,
#          sam), .venv-scan (checkov), promtool (Debian's prometheus package), openssl.
#   status say what is running.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
PIDS="$LOCAL/pids"
LOGS="$LOCAL/logs"
VENV="$ROOT/.venv"
SCAN_VENV="$ROOT/.venv-scan"
API_VENV="$ROOT/.venv-api"
EMULATOR=http://127.0.0.1:4566
API=http://127.0.0.1:9000
HARNESS="$ROOT/target/debug/naksha-local"
export PATH="$VENV/bin:$PATH"

say() { printf '[stack] %s\n' "$*" >&2; }

alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# Start a command in its own session so `down` can stop it and all its children. The pid is
# written from inside the new session (setsid may fork, so `$!` would name a parent that exits).
start() {
  local name=$1; shift
  if alive "$name"; then say "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  rm -f "$PIDS/$name.pid"
  # Inherited descriptors above 2 are closed: a daemon holding its caller's pipe would make
  # whoever ran `make up` (a CI runner, a `$(...)`) wait for it forever.
  (cd "$ROOT" && exec setsid bash -c '
    echo $$ >"$0"
    for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
    exec "$@"' "$PIDS/$name.pid" "$@") >"$LOGS/$name.log" 2>&1 </dev/null &
  for _ in $(seq 1 50); do [ -s "$PIDS/$name.pid" ] && break; sleep 0.1; done
  alive "$name" || { say "$name did not start; see .local/logs/$name.log"; exit 1; }
  say "started $name (pid $(cat "$PIDS/$name.pid")), log: .local/logs/$name.log"
}

# Fail early when a port the stack needs is taken by something `up` did not start.
port_free() {
  local port=$1 owner=$2
  if alive "$owner"; then return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is already in use by another process; stop it (or run \`make down\`) and retry"
    exit 1
  fi
}

stop() {
  local name=$1 pid
  [ -f "$PIDS/$name.pid" ] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    # Whatever is left of the session (function processes spawned by the watcher).
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "stopped $name"
  fi
  rm -f "$PIDS/$name.pid"
}

# shellcheck source=local/venv.sh
source "$ROOT/local/venv.sh"

tools() {
  venv_install "$VENV" "$ROOT/local/requirements.txt" "Python tools (moto, cargo-lambda, cfn-lint, sam)"
  # The IaC scanner and the contract tester live in venvs of their own: their pins (boto3 and
  # friends) must not move moto's or sam's.
  venv_install "$SCAN_VENV" "$ROOT/local/requirements-scan.txt" "the IaC scanner (checkov)"
  venv_install "$API_VENV" "$ROOT/local/requirements-api.txt" "the contract tester (schemathesis)"
  if ! command -v promtool >/dev/null || ! command -v openssl >/dev/null || ! command -v chromium >/dev/null; then
    say "installing promtool, openssl and chromium from Debian (prometheus, openssl, chromium: the report's browser test)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus openssl chromium fonts-dejavu-core >/dev/null
  fi
}

backend() {
  if curl -sf -m 2 "$EMULATOR/_localstack/health" >/dev/null 2>&1; then echo localstack
  elif curl -sf -m 2 "$EMULATOR/moto-api/" >/dev/null 2>&1; then echo moto
  else echo none; fi
}

healthy() { [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$API/health")" = 200 ]; }

up() {
  mkdir -p "$PIDS" "$LOGS"
  tools
  local b; b=$(backend)
  if [ "$b" = none ]; then
    # A fresh emulator has fresh streams (moto numbers sequence numbers from 1 again): on-failure
    # records of the previous one name batches that no longer exist.
    [ -s "$ROOT/.local/on-failure.jsonl" ] && mv "$ROOT/.local/on-failure.jsonl" "$ROOT/.local/on-failure.previous.jsonl"
    # Nor do the pollers' checkpoints name anything in it, nor their invocation log.
    rm -rf "$ROOT/.local/checkpoints" "$ROOT/.local/invocations.jsonl"
    start moto "$VENV/bin/python" "$ROOT/local/moto_server.py" -H 127.0.0.1 -p 4566
    for _ in $(seq 1 100); do [ "$(backend)" = moto ] && break; sleep 0.2; done
    b=$(backend)
    [ "$b" = moto ] || { say "moto did not start; see .local/logs/moto.log"; exit 1; }
  else
    say "using the $b already answering on $EMULATOR"
  fi
  say "building the functions and the harness (first build takes a few minutes)"
  (cd "$ROOT" && cargo build --quiet --workspace --bins)
  # Locally the simulated world reports every 5 s instead of every minute (EventBridge's
  # shortest rate), so chaos runs in tests and the demo do not wait minutes to be noticed.
  export NAKSHA_SCHEDULE_PERIODS="${NAKSHA_SCHEDULE_PERIODS:-SimExporterFunction=5}"
  say "provisioning $b from template.yaml"
  "$HARNESS" provision --backend "$b" >"$LOGS/provision.log"
  port_free 9000 watch
  port_free 9001 harness
  local reload=()
  [ -n "${NAKSHA_NO_RELOAD:-}" ] && reload=(--ignore-changes)
  # NAKSHA_WATCH_ARGS passes more flags to `cargo lambda watch` (e.g. -vv to see how it routes).
  # shellcheck disable=SC2086
  start watch cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 \
    --env-file "$LOCAL/functions.env" "${reload[@]}" ${NAKSHA_WATCH_ARGS:-}
  start harness "$HARNESS" serve
  start pollers "$HARNESS" pollers
  say "waiting for GET $API/health"
  for _ in $(seq 1 600); do
    if healthy; then say "up: API $API, emulator $EMULATOR ($b)"; return 0; fi
    alive watch || { say "cargo lambda watch exited; see .local/logs/watch.log"; exit 1; }
    sleep 1
  done
  say "GET /health did not answer 200 within 10 minutes; see .local/logs/"; exit 1
}

crash() {
  local name=$1 pid
  alive "$name" || { say "$name is not running"; return 1; }
  pid=$(cat "$PIDS/$name.pid")
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDS/$name.pid"
  say "crashed $name (SIGKILL)"
}

down() {
  stop pollers
  stop harness
  stop watch
  stop moto
}

status() {
  for n in moto watch harness pollers; do
    if alive "$n"; then echo "$n: running (pid $(cat "$PIDS/$n.pid"))"; else echo "$n: stopped"; fi
  done
  echo "backend: $(backend)"
  if healthy; then echo "api: healthy"; else echo "api: not answering"; fi
}

# Fail when a function panicked since the stack started (the chaos worker's deliberate crash
# points excepted), and show the functions' errors: what the tests could only see as a 500.
panics() {
  local log="$LOGS/watch.log"
  [ -f "$log" ] || return 0
  local found
  found=$(awk '/panicked at/ { at = $0; if ((getline msg) > 0 && msg ~ /crash point for /) next; print at; print "  " msg }' "$log")
  if [ -n "$found" ]; then
    say "a function panicked (from .local/logs/watch.log):"
    printf '%s\n' "$found" | head -40
    return 1
  fi
}

# The functions' and the emulator's errors, for a failed run's output.
errors() {
  local log="$LOGS/watch.log"
  [ -f "$log" ] || return 0
  say "errors in .local/logs/watch.log (last 40):"
  grep -E '"level":"ERROR"| ERROR |panicked at' "$log" | grep -v 'crash point' | tail -40 | cut -c1-400 || true
}

case "${1:-}" in
  up) up ;;
  pollers) mkdir -p "$PIDS" "$LOGS"; start pollers "$HARNESS" pollers ;;
  crash) crash "${2:?crash what? moto, watch, harness or pollers}" ;;
  down) down ;;
  tools) tools ;;
  status) status ;;
  healthy) healthy ;;
  panics) panics ;;
  errors) errors ;;
  *) echo "usage: $0 up|down|pollers|crash NAME|tools|status|healthy|panics|errors" >&2; exit 2 ;;
esac
