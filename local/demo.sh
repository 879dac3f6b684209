#!/usr/bin/env bash
# `make demo`: run the D.1 verification against the running stack and write reports/.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p reports/logs
echo "[demo] template lints" >&2
{
  echo '$ cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml'
  cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml && echo "(no findings)"
  echo '$ sam validate --lint'
  SAM_CLI_TELEMETRY=0 sam validate --lint --region us-east-1 -t template.yaml 2>&1
} >reports/logs/D.1_lint.log 2>&1
echo "[demo] unit, adapter and end-to-end tests" >&2
cargo test -p naksha-core -p naksha-insight-stream -p naksha-local -p naksha-e2e >reports/logs/D.1_tests.log 2>&1
echo "[demo] verification calls" >&2
cargo run --quiet -p naksha-e2e --bin demo-d1
