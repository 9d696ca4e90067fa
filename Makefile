# Quorum Chat. `make run` and `make test` work on a fresh machine (they install what is missing).
SHELL := /bin/bash
BIN := bin/quorum-chat
SERVER_ID ?= server1
PORT ?= 5555
PEERS ?=
DATA_DIR ?=
HOST ?= 127.0.0.1
SERVER ?= 127.0.0.1:5555
SEEDS ?= 300
SIZE ?= 5
BASE_PORT ?= 5555

.PHONY: member-add member-remove transfer
.PHONY: install build run run-server run-client status test test-fast test-e2e lint format sim bench bench-etcd bench-stability diagrams typecheck clean

# npm ci only when the lock file is newer than the installed tree (or nothing is installed).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

# The build is a stamp newer than everything it is made from: with nothing changed, `make build` (and
# every target that needs it: run, run-client, test...) does nothing. A changed source, proto, static
# file, tsconfig or dependency rebuilds. (A deleted source leaves its old .js in dist/; `make clean`.)
BUILD_INPUTS := $(shell find src machines proto -type f 2>/dev/null) tsconfig.json package.json scripts/copy-assets.mjs
BUILD_STAMP := dist/.build-stamp

$(BUILD_STAMP): $(BUILD_INPUTS) node_modules/.package-lock.json
	npm run --silent build
	@touch $@

build: $(BUILD_STAMP)

# QC_DEV=1: the /cluster page gets its development controls (stop, pause, transfer; need the secret).
# TLS=1: TLS and mutual TLS, with certificates made on the first run in data/certs (quorum-chat certs);
# the client targets then verify the servers with TLS_CA.
TLS ?=
TLS_CA ?= $(or $(DATA_DIR),data)/certs/ca.crt
TLS_FLAG = $(if $(TLS),--tls-ca-file $(TLS_CA),)
run: build
	QC_DEV=1 $(BIN) cluster --size $(SIZE) --base-port $(BASE_PORT) $(if $(DATA_DIR),--data-dir $(DATA_DIR),) $(if $(TLS),--tls,)

run-server: build
	$(BIN) server --id $(SERVER_ID) --port $(PORT) --host $(HOST) $(if $(PEERS),--peers $(PEERS),) $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

run-client: build
	$(BIN) client --server $(SERVER) $(TLS_FLAG)

status: build
	$(BIN) status --server $(SERVER) $(TLS_FLAG)

# Membership and leadership (need the cluster secret: data/cluster.secret by default, or SECRET_FILE=...).
SECRET_FILE ?= data/cluster.secret
member-add: build
	$(BIN) member add --id $(ID) --address $(ADDRESS) --server $(SERVER) --cluster-secret-file $(SECRET_FILE) $(TLS_FLAG)

member-remove: build
	$(BIN) member remove --id $(ID) --server $(SERVER) --cluster-secret-file $(SECRET_FILE) $(TLS_FLAG)

transfer: build
	$(BIN) transfer $(if $(TO),--to $(TO),) --server $(SERVER) --cluster-secret-file $(SECRET_FILE) $(TLS_FLAG)

typecheck: install
	npx tsc -p tsconfig.check.json

lint: install
	npx biome check machines src test scripts

format: install
	npx biome check --write machines src test scripts

REPORTS := .vitest
test: build typecheck
	@mkdir -p $(REPORTS)
	npx vitest run --project fast --reporter=default --reporter=json --outputFile.json=$(REPORTS)/fast.json
	npx vitest run --project e2e --passWithNoTests --reporter=default --reporter=json --outputFile.json=$(REPORTS)/e2e.json
	@node scripts/test-summary.mjs $(REPORTS)/fast.json $(REPORTS)/e2e.json

test-fast: install
	npx vitest run --project fast

test-e2e: build
	npx vitest run --project e2e

# A failing seed leaves a trace file (sim-traces/seed-N.jsonl) for /cluster/replay; SEED=42 TRACE=1
# records that one seed whatever its outcome (see scripts/sim.ts for the other variables).
sim: install
	SEEDS=$(SEEDS) npx tsx scripts/sim.ts

# The four figures of issue 10 (writes/s and p50/p99 at 64 clients spread over all replicas, single-client
# p50, failover median after kill -9), then the read phase; BENCH_ARGS adds flags (e.g. --skip-reads).
BENCH_ARGS ?=
bench: build
	$(BIN) bench $(BENCH_ARGS)

# The same driver against a local 5-member etcd 3.4 (apt-get install etcd-server), then Quorum Chat, in
# one run, with the ratios.
bench-etcd: build
	$(BIN) bench --etcd --skip-reads $(BENCH_ARGS)

# Leader stability: 16 writers for 150 s with two CPU hogs and no faults, etcd first then Quorum Chat in
# one run; term moves should be 0.
bench-stability: build
	$(BIN) bench --stability --etcd --clients 16 --seconds 150 --hogs 2 --out bench-stability.json $(BENCH_ARGS)

diagrams: install
	npx tsx scripts/diagrams.ts

clean:
	rm -rf dist
