#!/usr/bin/env bash
# `make fuzz`: every libFuzzer target in fuzz/ for FUZZ_SECONDS each (default 60; the issue's
# goal of 10 million executions per target takes FUZZ_SECONDS=900 or more here), with the
# nightly toolchain. The working corpus grows in .local/fuzz-corpus/<target> (not committed);
# fuzz/corpus/<target> holds the seeds. A crash is copied to fuzz/regressions/<target>, where
# `make test` replays it on stable until it is fixed. Figures go to reports/fuzz.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-60}
ONLY=${FUZZ_TARGETS:-}
# FUZZ_RUNS=N stops each target after N executions (libFuzzer -runs); FUZZ_SECONDS still caps it.
RUNS=${FUZZ_RUNS:-}
# AddressSanitizer by default; FUZZ_SANITIZER=none runs faster, for long runs (the parsers are
# safe Rust; debug assertions and overflow checks stay on either way).
SANITIZER=${FUZZ_SANITIZER:-address}
say() { echo "[fuzz] $*" >&2; }

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --quiet
fi
say "building every target (nightly, sanitizer coverage, $SANITIZER, release; the first build takes a while)"
# -O with -a: optimised, with debug assertions and overflow checks (-O alone turns them off).
cargo +nightly fuzz build -O -a -s "$SANITIZER" >&2
# The targets run from the binaries just built (not `cargo fuzz run`, which builds again before
# each target: an edit to the sources during a long run would change what is fuzzed).
bindir="$ROOT/fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

targets=$(cargo +nightly fuzz list)
# Fastest first (by the last run's executions per second; new targets first of all), so a long
# run cut short has the most targets done.
targets=$(for t in $targets; do
  r=$(grep -m1 'stat::average_exec_per_sec' "$ROOT/.local/fuzz-logs/$t.log" 2>/dev/null | awk '{print $2}')
  echo "${r:-999999999} $t"
done | sort -rn | awk '{print $2}')
# Only a run over every target is the report; a run over some goes beside the logs.
report="$ROOT/reports/fuzz.md"
if [ -n "$ONLY" ]; then targets=$ONLY; report="$ROOT/.local/fuzz-logs/report.md"; fi
mkdir -p "$ROOT/.local/fuzz-logs"
rows=""
open=0
total_targets=$(echo $targets | wc -w)
done_targets=0

# The report, rewritten after each target: a long run shows its progress.
write_report() {
  {
    echo "# Fuzzing"
    echo
    echo "Written by \`make fuzz\` on $(date -u +%Y-%m-%dT%H:%M:%SZ): each target up to ${SECONDS_EACH} s${RUNS:+ or $RUNS executions}, one after another on one core; $(nproc) cores ($(uname -m))."
    echo "libFuzzer through \`cargo fuzz\` (nightly, optimised with debug assertions and overflow checks; sanitizer: $SANITIZER). Logs (not committed) in \`.local/fuzz-logs/<target>.log\`."
    echo "What each target checks beyond \"no panic\" is in its crate's \`fuzzing\` module."
    if [ "$done_targets" -lt "$total_targets" ]; then
      echo
      echo "**In progress: $done_targets of $total_targets targets run so far.**"
    fi
    echo
    echo "| target | executions | per second | corpus (working) | crashes |"
    echo "|---|---|---|---|---|"
    printf '%s' "$rows"
    echo
    echo "Crashes are copied to \`fuzz/regressions/<target>/\`; \`make test\` replays every one on stable."
  } >"$report"
}

for t in $targets; do
  work="$ROOT/.local/fuzz-corpus/$t"
  # Earlier finds are in regressions/ already; artifacts/ holds only this run's.
  rm -rf "artifacts/$t"
  mkdir -p "$work" "regressions/$t" "artifacts/$t"
  log="$ROOT/.local/fuzz-logs/$t.log"
  say "$t for up to ${SECONDS_EACH}s${RUNS:+ or $RUNS executions}"
  # New inputs go to the first directory (the working corpus); the seeds are read only.
  set +e
  "$bindir/$t" -artifact_prefix="artifacts/$t/" "$work" "corpus/$t" \
    -max_total_time="$SECONDS_EACH" ${RUNS:+-runs="$RUNS"} -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1
  rc=$?
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  set -e
  crashes=0
  for a in artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-*; do
    [ -e "$a" ] || continue
    cp "$a" "regressions/$t/"
    crashes=$((crashes + 1))
  done
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="run failed (exit $rc; see $log)"; fi
  [ "$crashes" != 0 ] && open=$((open + 1))
  corpus=$(find "$work" -type f | wc -l)
  done_targets=$((done_targets + 1))
  rows+="| \`$t\` | ${execs:-?} | ${rate:-?} | $corpus | $crashes |"$'\n'
  write_report
done
write_report
say "wrote ${report#"$ROOT"/}"
cat "$report"
[ "$open" -eq 0 ] || { say "$open target(s) with a finding"; exit 1; }
