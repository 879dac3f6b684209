#!/usr/bin/env bash
# `make demo`: run each phase's verification against the running stack and write reports/.
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
# --no-fail-fast: one failing binary must not hide the counts of the others from the reports.
cargo test --workspace --no-fail-fast >reports/logs/tests.log 2>&1
echo "[demo] D.1 verification calls" >&2
cargo run --quiet -p naksha-e2e --bin demo-d1
echo "[demo] D.2 agent walk-through" >&2
cargo run --quiet -p naksha-e2e --bin demo-d2
nab_dir="${NAB_DIR:-../shared/data/nab}"
if [ -d "$nab_dir/data" ]; then
  echo "[demo] D.3 NAB scores of the production detector (release build)" >&2
  cargo run --quiet --release -p naksha-nab --bin nab -- --data "$nab_dir/data" --out .local/nab \
    --labels "$nab_dir/labels_windows.json" >reports/logs/nab.log 2>&1
  echo "[demo] D.3 leave-one-category-out choice of the detector's settings" >&2
  { echo "# Detector settings chosen by leaving each NAB category out"; echo
    echo "Written by \`make demo\` ($(date -u +%Y-%m-%dT%H:%M:%SZ)) with \`make nab-loco\` (grid: \`tools/nab/loco-grid.json\`)."
    echo; echo '```'
    cargo run --quiet --release -p naksha-nab --bin nab-loco -- --data "$nab_dir/data" \
      --labels "$nab_dir/labels_windows.json" --grid tools/nab/loco-grid.json 2>&1
    echo '```'; } >reports/detection_loco.md
else
  echo "NAB data not found at $nab_dir (set NAB_DIR)" >reports/logs/nab.log
fi
echo "[demo] D.3 closed loop and training" >&2
cargo run --quiet -p naksha-e2e --bin demo-d3
echo "[demo] D.4 edge nodes: registry, signed triggers, a rollout, refusals, the kill switch, latency" >&2
cargo build --quiet --workspace --bins
cargo run --quiet -p naksha-e2e --bin demo-d4
echo "[demo] D.5 chaos: every spec, three rounds of the healable ones, a manual approval, a partitioned edge node" >&2
cargo run --quiet -p naksha-e2e --bin demo-d5
echo "[demo] D.6 policy learning: autonomy from the audit chain, CloudTrail and Kubernetes audit, the sample, compliance" >&2
cargo run --quiet -p naksha-e2e --bin demo-d6
echo "[demo] the operations report: reports/index.html" >&2
cargo run --quiet --bin naksha-report -- --out reports/index.html --run reports/data/run.json \
  --chaos-dir reports/chaos_runs --compliance reports/data/compliance.json --nodes reports/federation_registry.json \
  --nab .local/nab/naksha/realAWSCloudwatch/naksha_ec2_cpu_utilization_5f5533.csv
echo "[demo] the phase snapshot: reports/PhaseD_Snapshot.json" >&2
cargo run --quiet -p naksha-e2e --bin phase-snapshot
