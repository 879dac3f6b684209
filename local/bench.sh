#!/usr/bin/env bash
# `make bench`: criterion benchmarks and the size of the release bootstrap; figures go to
# reports/bench_D1.md (tests never assert timings).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"
./local/stack.sh tools
mkdir -p reports/logs
log=reports/logs/bench_D1.log
echo "[bench] criterion (release build of the benches; takes a few minutes the first time)" >&2
# The Python reference (../shared/bench/py_ingest_bench.py) times the batch it dumps; ours
# times the same bytes in the same run, so the ratio is like for like.
pybatch="$PWD/reports/logs/py_ingest_batch.json"
.venv/bin/python ../shared/bench/py_ingest_bench.py --dump "$pybatch"
py_line=$(.venv/bin/python ../shared/bench/py_ingest_bench.py 8)
echo "$py_line" >&2
NAKSHA_PY_BATCH="$pybatch" cargo bench -p naksha-insight-stream --bench ingest --bench consumer -- --warm-up-time 2 --measurement-time 8 2>&1 | tee "$log" >&2
echo "$py_line" >>"$log"
# Events/s from criterion's middle throughput estimate of a bench.
eps() { grep -A3 "^ingest/$1" "$log" | grep -m1 'thrpt:' | sed -E 's/.*\[[^ ]+ [^ ]+ ([0-9.]+) ([KM]?)elem\/s.*/\1 \2/' | awk '{m = ($2 == "K") ? 1000 : (($2 == "M") ? 1000000 : 1); printf "%.0f", $1 * m}'; }
ours_ref=$(eps prepare_python_reference_batch)
ours_mixed=$(eps prepare_500_events)
py_eps=$(echo "$py_line" | sed -E 's/.*: ([0-9,]+) events.*/\1/' | tr -d ,)
ratio=$(awk -v a="$ours_ref" -v b="$py_eps" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')

echo "[bench] release bootstrap of the ingest function (arm64, provided.al2023)" >&2
size_line="(not built)"
if cargo lambda build --release --arm64 --bin ingest >reports/logs/bench_D1_build.log 2>&1; then
  bytes=$(stat -c %s target/lambda/ingest/bootstrap)
  size_line="$bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }')), \`target/lambda/ingest/bootstrap\` (aarch64, release profile: no LTO, stripped, panic=abort)"
else
  size_line="build failed; see reports/logs/bench_D1_build.log"
fi

{
  echo "# D.1 benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$log\`."
  echo
  echo "## Ingest path: parse, validate, anonymise, encode a 500-event batch (target ≥ 500,000 events/s per core)"
  echo
  echo '```'
  grep -A3 '^ingest/' "$log" | grep -E '^ingest/|time:|thrpt:' || true
  grep 'ingest batch body' "$log" | head -1 || true
  echo '```'
  echo
  echo "## Like for like: the Python reference's own 500-event batch (issue goal: ≥ 30× the reference)"
  echo
  echo "| batch | ours, events/s (one core) | Python reference, events/s (one core) | ratio |"
  echo "|---|---|---|---|"
  echo "| \`py_ingest_bench.py --dump\` ($(stat -c %s "$pybatch") bytes) | $ours_ref | $py_eps | ${ratio}× |"
  echo "| our mixed batch (goal ≥ 1,000,000) | $ours_mixed | — | — |"
  echo
  echo "Same run, same machine; the Python side is \`$py_line\`."
  echo
  echo "## Consumer: fold 1,000 records into per-minute aggregates (in-memory stores: the domain's own cost)"
  echo
  echo '```'
  grep -A3 '^consumer/' "$log" | grep -E '^consumer/|time:|thrpt:' || true
  echo '```'
  echo
  echo "DynamoDB calls per 1,000 events (one conditional UpdateItem per aggregate key, one counter UpdateItem per batch):"
  echo
  echo '```'
  grep 'writes per 1000 events' "$log" | sort -u || true
  echo '```'
  echo
  echo "## Release bootstrap size"
  echo
  echo "$size_line"
} > reports/bench_D1.md
echo "[bench] wrote reports/bench_D1.md" >&2

echo "[bench] D.2: graph runtime per step, decide over 1,000 WPKs" >&2
log2=reports/logs/bench_D2.log
cargo bench -p naksha-agent --bench agent -- --warm-up-time 2 --measurement-time 8 2>&1 | tee "$log2" >&2
{
  echo "# D.2 benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$log2\`."
  echo
  echo "## Decide over a registry of 1,000 WPKs (no I/O: rank by the remediation model, verify the chosen one's ECDSA signature) — target ≤ 1 ms p99"
  echo
  echo '```'
  grep 'decide over 1000' "$log2" || true
  grep -A3 '^decide/' "$log2" | grep -E '^decide/|time:' || true
  echo '```'
  echo
  echo "## Graph runtime overhead per step (node + checkpoint: state digest and save; in-memory stores)"
  echo
  echo '```'
  grep 'graph runtime per step' "$log2" || true
  grep -A3 '^runtime/' "$log2" | grep -E '^runtime/|time:|thrpt:' || true
  echo '```'
} > reports/bench_D2.md
echo "[bench] wrote reports/bench_D2.md" >&2
echo "[bench] D.3: one training job over 1,000,000 aggregate rows" >&2
log3=reports/logs/bench_D3.log
cargo bench -p naksha-trainer --bench scale 2>&1 | tee "$log3" >&2
{
  echo "# D.3 benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$log3\`."
  echo
  echo "## One training job over 1,000,000 aggregate rows (target: one Lambda invocation, 900 s, 1,769 MB)"
  echo
  echo "100 series × 10,000 minutes and 5,000 run outcomes, read as DynamoDB items page by page with the worker's decoder, then"
  echo "fit, evaluate the new version and a champion on the held-back 20 %, gate. Single-threaded (a 1,769 MB Lambda has one vCPU)."
  echo
  echo '```'
  grep '^trainer scale:' "$log3" || true
  echo '```'
} > reports/bench_D3.md
echo "[bench] wrote reports/bench_D3.md" >&2
echo "[bench] D.4: trigger verification on one edge core, the release edge-node's size and idle memory" >&2
log4=reports/logs/bench_D4.log
cargo bench -p naksha-contracts --bench edge -- --warm-up-time 2 --measurement-time 8 2>&1 | tee "$log4" >&2
cargo build --release -p edge-node >>"$log4" 2>&1
cargo build --bin naksha-local >>"$log4" 2>&1
edge_bytes=$(stat -c %s target/release/edge-node)
idle=$(./local/with-stack.sh ./local/edge-idle.sh 2>>"$log4" | tail -1)
per_sec=$(grep -A3 '^edge/check_delivery' "$log4" | grep 'thrpt:' | sed -E 's/.*\[[^ ]+ [^ ]+ ([0-9.]+) ([KM]?)elem\/s.*/\1 \2/' | awk '{m = ($2 == "K") ? 1000 : (($2 == "M") ? 1000000 : 1); printf "%.0f", $1 * m}')
{
  echo "# D.4 benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$log4\`."
  echo
  echo "- triggers verified per second by one edge core: ${per_sec:-?} (\`check_delivery\`: the hub's ECDSA P-256 signature, the WPK's sha256 and its own signature, every other check)"
  echo "- release edge-node binary: $edge_bytes bytes ($(awk -v b="$edge_bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), x86_64, release profile: no LTO, stripped, SQLite bundled)"
  echo "- $idle"
  echo
  echo '```'
  grep -A3 '^edge/' "$log4" | grep -E '^edge/|time:|thrpt:' || true
  echo '```'
} > reports/bench_D4.md
echo "[bench] wrote reports/bench_D4.md" >&2
echo "[bench] D.6: audit records learned per second by one core, per format" >&2
logd=reports/logs/bench_detector.log
cargo bench -p naksha-insight-stream --bench detector -- --warm-up-time 2 --measurement-time 8 2>&1 | tee "$logd" >&2
{
  echo "# Detector cost in the consumer (issue: ≤ 2 µs per point, ≤ 4 KB of state per series)"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$logd\`."
  echo "One core, release build, default parameters, states warmed with a week of minutes."
  echo
  echo '```'
  grep -A3 '^detector/' "$logd" | grep -E '^detector/|time:|thrpt:' || true
  grep 'detector state per series' "$logd" | head -1 || true
  echo '```'
  echo
  echo "\`batch_1000_series_load_score_store\` is a 1,000-series tenant's detection work per batch:"
  echo "decode each stored state, score its new minute, encode it again (DynamoDB round trips apart)."
} > reports/bench_detector.md
echo "[bench] wrote reports/bench_detector.md" >&2

log6=reports/logs/bench_D6.log
cargo bench -p naksha-policy --bench learn -- --warm-up-time 2 --measurement-time 8 2>&1 | tee "$log6" >&2
{
  echo "# D.6 benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(uname -m)); raw output in \`$log6\`."
  echo
  echo "Records per second by one core (no I/O): \`read\` parses, normalises and pseudonymises the lines"
  echo "(a Naksha record's hash is recomputed too); \`read+learn\` also derives every suggestion from them."
  echo "CloudTrail: the shared data's 2,900 records as 55 S3 delivery objects; Kubernetes: the 35 Falco events"
  echo "30 times under fresh audit ids; Naksha: a 1,000-record chain of approved acts over 20 WPKs."
  echo
  echo '```'
  grep -E 'records in [0-9]+ bytes' "$log6" || true
  grep -A3 '^learn/' "$log6" | grep -E '^learn/|time:|thrpt:' || true
  echo '```'
} > reports/bench_D6.md
echo "[bench] wrote reports/bench_D6.md" >&2
cat reports/bench_D1.md reports/bench_D2.md reports/bench_D3.md reports/bench_D4.md reports/bench_detector.md reports/bench_D6.md
