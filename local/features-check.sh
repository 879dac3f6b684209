#!/usr/bin/env bash
# One feature set for every build. Cargo resolves a dependency's features from the packages a
# command selects and from whether it builds tests: `cargo test --workspace`, the functions'
# `cargo run --bin X` (what `cargo lambda watch` runs), `cargo test -p naksha-e2e` and the dev
# commands would otherwise each compile the AWS SDK again with other features (four copies in
# one `make test`: 20 minutes of a 2-core machine and 10 GB of disk). naksha-core's
# "feature alignment" dependencies close the gaps; this check fails when a change reopens one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tree() { cargo tree --quiet --prefix none -f '{p} {f}' "$@" | sed 's/ (\*)$//; s/ (proc-macro)//' |
  awk '$1 !~ /^naksha/ && $1 != "edge-node" && NF { print $1"@"$2, ($3 == "" ? "-" : $3) }' | sort -u; }
tree --workspace >"${TMPDIR:-/tmp}/features.all"
status=0
for sel in "--workspace -e no-dev" "-p naksha-e2e" "-p naksha-e2e -e no-dev" "-p naksha-local -e no-dev"; do
  # shellcheck disable=SC2086
  tree $sel >"${TMPDIR:-/tmp}/features.sel"
  diff=$(join "${TMPDIR:-/tmp}/features.all" "${TMPDIR:-/tmp}/features.sel" | awk '$2 != $3')
  if [ -n "$diff" ]; then
    echo "features-check: \`$sel\` resolves these crates with other features than \`--workspace\`:" >&2
    echo "$diff" | sed 's/^/  /' >&2
    status=1
  fi
done
[ $status = 0 ] && echo "features-check: one feature set for the workspace, its functions, the e2e tests and the harness"
exit $status
