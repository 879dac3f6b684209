# Naksha Phase D — the commands of docs and API.md.
#
#   make demo    run the main job end to end and write reports/ (starts the stack if needed)
#   make test    every test: lints, unit tests, adapter and end-to-end tests on the local stack
#   make up      start the local stack in the background (returns once GET /health is 200)
#   make down    stop what `make up` started
#   make token TENANT=acme SUB=alice ROLES=operator,approver   print a dev JWT (use make -s)
#   make cli     build the naksha command line (target/debug/naksha)
#   make edge NODE=store-1 LABELS=site=store-1,tier=edge     run an edge node against the local stack
#   make gameday TENANT=acme [SPECS=kill-pod,latency]   fire the chaos game day now (local stack)
#   make bench   criterion benchmarks and the release bootstrap size
#   make coldstart  every function's init (release build) beside Python's, against a stub Runtime API → reports/coldstart.md
#   make release every Lambda for arm64 and the edge node for x86_64 and aarch64; sam build; reports/release.md
#   make fuzz [FUZZ_SECONDS=60 FUZZ_TARGETS="wpk jwt_token"]   libFuzzer on every parser outside bytes reach
#   make api-fuzz [API_FUZZ_EXAMPLES=60]   schemathesis: docs/openapi.yaml against the local stack, per role
#   make load [LOAD_SECONDS=180 LOAD_CLIENTS=8]   ingest under faults; proves nothing lost (reports/load.md)
#   make cost    fault-free load runs at 1, 50 and 500 events per request → reports/cost.md
#   make nab DATA=<dir> OUT=<dir> [LABELS=<windows.json>]   the production detector over NAB data
#   make nab-loco [NAB_DIR=<dir>]                           choose detector settings by leaving each category out
#   make lint    template linters, rustfmt, clippy

SHELL := /bin/bash
# No incremental caches: they doubled the target directory (25 GB) and a fresh build gains nothing.
export CARGO_INCREMENTAL ?= 0
comma := ,
ROOT := $(CURDIR)
export PATH := $(ROOT)/.venv/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
HARNESS := $(ROOT)/target/debug/naksha-local

TENANT ?= acme
SUB ?= alice
ROLES ?= operator

.PHONY: up down status tools token cli edge gameday demo test lint lint-template unit e2e api-fuzz load cost bench fuzz nab nab-loco release coldstart clean

tools:
	@./local/stack.sh tools

up:
	@./local/stack.sh up

down:
	@./local/stack.sh down

status:
	@./local/stack.sh status

token:
	@cargo build --quiet --bin naksha-local
	@$(HARNESS) token --tenant "$(TENANT)" --sub "$(SUB)" --roles "$(ROLES)"

# The operators' CLI: target/debug/naksha (README: export PATH=$PWD/target/debug:$PATH).
cli:
	@cargo build --quiet --bin naksha
	@echo "built $(ROOT)/target/debug/naksha"

# An edge node against the local stack (make up): a dev token for NODE, its state and a simulated
# world under .local/edge/NODE. Ctrl-C stops it; run it again and it carries on where it stopped.
NODE ?= store-1
LABELS ?= site=$(NODE)
edge:
	@cargo build --quiet --workspace --bins
	@mkdir -p .local/edge/$(NODE)
	@$(HARNESS) token --tenant "$(TENANT)" --sub "$(NODE)" --roles edge --ttl 86400 > .local/edge/$(NODE)/token.jwt
	@./target/debug/edge-node --hub http://127.0.0.1:9000 --token-file .local/edge/$(NODE)/token.jwt \
	  --state .local/edge/$(NODE)/state --labels "$(LABELS)" --world events/edge-world.json

# The game day's schedule is off locally (GameDayEnabled is a cloud parameter): fire it by hand
# through the local Lambda invoke API, with the event its schedule would send.
SPECS ?=
gameday:
	@curl -sS -X POST http://127.0.0.1:9000/2015-03-31/functions/chaos-gameday/invocations \
	  -d "{\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\",\"detail\":{\"tenant\":\"$(TENANT)\"$(if $(SPECS),$(comma)\"specs\":[\"$(subst $(comma),\"$(comma)\",$(SPECS))\"],)}}"; echo

lint-template: tools
	cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	sam validate --lint --region us-east-1 -t template.yaml
	@# Every finding fixed or suppressed inline in template.yaml with its reason (Metadata.checkov.skip).
	.venv-scan/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

lint: lint-template
	./local/features-check.sh
	cargo fmt --all -- --check
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	cargo run --quiet --bin naksha-local -- routes --check
	cargo run --quiet --bin naksha-local -- policy-check

unit:
	cargo test --workspace --exclude naksha-e2e

# End-to-end and adapter tests need the stack; they bring it up if it is down and leave it
# as they found it. Then a bounded schemathesis pass over docs/openapi.yaml, one token per role,
# and a short load run with faults (both after the tests: the faults would disturb them).
e2e: tools
	@cargo build --quiet --workspace --bins
	@./local/with-stack.sh sh -c 'cargo test -p naksha-e2e || { ./local/stack.sh errors; exit 1; }; \
	  API_FUZZ_EXAMPLES=5 ./local/api-fuzz.sh || { ./local/stack.sh errors; exit 1; }; \
	  LOAD_SECONDS=45 LOAD_FAULT_EVERY=6 LOAD_POISON=6 LOAD_RUNS=3 LOAD_REPORT=.local/load/short.md ./target/debug/naksha-load \
	    || { ./local/stack.sh errors; exit 1; }; ./local/stack.sh panics'

# The OpenAPI contract tested by a generator, a long pass (make test runs 5 examples per operation).
api-fuzz: tools
	@cargo build --quiet --workspace --bins
	@./local/with-stack.sh ./local/api-fuzz.sh

# Concurrent clients on POST /ingest for LOAD_SECONDS while the pollers are killed, the consumer
# dies mid-batch and the emulator's connections are reset; then the tables must show every
# accepted event counted once, only the poison records dead-lettered, every agent run acted once.
load: tools
	@cargo build --quiet --workspace --bins
	@./local/with-stack.sh ./target/debug/naksha-load

# Cost per million events from what fault-free runs at 1, 50 and 500 events per request count.
COST_SECONDS ?= 60
cost: tools
	@cargo build --quiet --workspace --bins
	@mkdir -p .local/load
	@./local/with-stack.sh sh -c 'for b in 1 50 500; do \
	  LOAD_FAULTS= LOAD_POISON=0 LOAD_RUNS=0 LOAD_BATCH=$$b LOAD_SECONDS=$(COST_SECONDS) \
	  LOAD_REPORT=.local/load/cost-$$b.md LOAD_COST_OUT=.local/load/cost-$$b.json ./target/debug/naksha-load >/dev/null || exit 1; done'
	@./target/debug/naksha-load cost-report reports/cost.md .local/load/cost-1.json .local/load/cost-50.json .local/load/cost-500.json

test: lint unit e2e

demo: tools
	@./local/with-stack.sh ./local/demo.sh

fuzz:
	@./local/fuzz.sh

bench:
	./local/bench.sh

# Release builds (zig from PyPI as the cross linker): target/lambda/<function>/bootstrap for arm64,
# target/release-artifacts/edge-node-{x86_64,aarch64}, .aws-sam/build (what sam deploy uploads), reports/release.md.
release:
	@./local/release.sh

coldstart:
	@./local/coldstart.sh

# The production detector over every <category>/<file>.csv under DATA; NAB result files under
# OUT/naksha/; with LABELS, the normalised NAB score of each profile (threshold 0.5, fixed).
nab:
	@test -n "$(DATA)" -a -n "$(OUT)" || { echo "usage: make nab DATA=<dir> OUT=<dir> [LABELS=<windows.json>]"; exit 2; }
	@cargo run --quiet --release -p naksha-nab --bin nab -- --data "$(DATA)" --out "$(OUT)" $(if $(LABELS),--labels "$(LABELS)")

# Leave-one-category-out over the grid in tools/nab/loco-grid.json, on NAB_DIR's data/ and
# labels_windows.json (default: the development split). Not DATA/LABELS: LABELS is the edge node's.
NAB_DIR ?= ../shared/data/nab
nab-loco:
	@cargo run --quiet --release -p naksha-nab --bin nab-loco -- --data "$(NAB_DIR)/data" \
	  --labels "$(NAB_DIR)/labels_windows.json" --grid tools/nab/loco-grid.json

clean: down
	rm -rf .local target/lambda
