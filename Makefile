# Golive: two commands on a fresh machine: `make run` and `make test`. `make help` lists the rest.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
# Use the machine's Python 3.11+; never download an interpreter behind the user's back.
export UV_PYTHON_DOWNLOADS ?= never
RUN := $(UV) run --frozen --no-sync
GOLIVE := $(RUN) golive
# make bench's open-loop load (a fixed rate, Go: it must not eat the cores it measures).
VEGETA_VERSION := v12.13.0
VEGETA := $(CURDIR)/.cache/tools/bin/vegeta-$(VEGETA_VERSION)
PYTEST_ARGS ?=
# Three workers on two cores, one test file each at a time (a file's tests run in order on one
# worker): the suite mostly waits on the platform (vmstat: 23 % idle with three). make test,
# warm, on 2026-12-03: 10 m 42 s with two workers, 8 m 02 s with three.
PYTEST_WORKERS ?= 3

.PHONY: help install fetch run up down status logs clean clean-cache test lint format types \
        bench-platform bench postgres-install demo wrk-install soak stress-outage \
        trace-screenshot chromium-install bench-tracing load load-smoke bench-payment

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	python3 -m pip install --user --quiet "uv==$(UV_VERSION)" \
	  || python3 -m pip install --user --quiet --break-system-packages "uv==$(UV_VERSION)"

NATIVE := services/recorder-native
NATIVE_SOURCES := $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(NATIVE)/golive_recorder_native.pyi \
                  $(wildcard $(NATIVE)/src/*.rs)

.venv/.synced: $(UV) uv.lock pyproject.toml infra/local/pyproject.toml services/*/pyproject.toml \
               $(NATIVE_SOURCES)
	@command -v cargo >/dev/null || { echo "error: cargo not found: the Rust toolchain builds" \
	  "$(NATIVE) (golive capture's per-record work); install it with rustup (https://rustup.rs)" >&2; exit 1; }
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced ## Install the Python dependencies from uv.lock

fetch: install ## Fetch Kafka and Apicurio Registry from Maven Central into the cache (once)
	$(GOLIVE) platform fetch

run: install ## Start Kafka, the registry, topics and services in the foreground; Ctrl-C stops all
	$(GOLIVE) platform run

up: install ## The same as run, in the background
	$(GOLIVE) platform up

down: install ## Stop what run/up started
	$(GOLIVE) platform down

status: install ## What runs, whether it answers, and where
	$(GOLIVE) platform status

logs: install ## Tail every component's log (make logs ARGS=-f to follow)
	$(GOLIVE) platform logs $(ARGS)

clean: install ## Stop everything and delete var/ (the platform's data)
	$(GOLIVE) platform clean
	rm -rf var

clean-cache: ## Delete the fetched Java artifacts (~/.cache/golive); the next start fetches again
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/golive"

postgres-install: install ## Install PostgreSQL's server (Debian's package) if no server binaries are found
	@$(RUN) python -c "from golive_platform.postgres import find_bindir; find_bindir(None)" 2>/dev/null \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
	  || { echo "error: PostgreSQL server binaries not found; install PostgreSQL or set GOLIVE_POSTGRES_BINDIR" >&2; exit 1; }

lint: install ## ruff, the import contracts (lint-imports), rustfmt and clippy: lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports --no-cache
	cd $(NATIVE) && cargo fmt --check && cargo clippy --release --all-targets --quiet -- -D warnings

format: install ## ruff and rustfmt: fix what can be fixed, format
	$(RUN) ruff check --fix .
	$(RUN) ruff format .
	cd $(NATIVE) && cargo fmt

types: install ## mypy --strict
	$(RUN) mypy

test: lint types postgres-install fetch ## Lint, type-check and run the whole suite against the real platform
	cd $(NATIVE) && cargo test --release --quiet
	@rc=0; $(RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: install ## Against the running system (make up): a mix of orders, each one's final state and timeline
	$(GOLIVE) demo

bench-platform: install fetch ## Cold/warm start, resident memory, raw produce/consume throughput
	$(RUN) python load/bench_platform.py

bench: install fetch wrk-install $(VEGETA) ## Orders through the whole system beside the raw Kafka and bare FastAPI references
	cd load && VEGETA=$(VEGETA) $(RUN) python bench_orders.py

load: install ## locust's customers against the running system (make run), gated on load/slo.toml; report under var/load/
	$(RUN) python load/run_load.py --profile load $(ARGS)

load-smoke: install ci-cluster-up ## The short load run of the pipeline: a system of its own on the test platform, the smoke profile's gates
	@rc=0; $(RUN) python load/run_load.py --profile smoke --own-system $(ARGS) || rc=$$?; \
	  $(MAKE) --no-print-directory ci-cluster-down; exit $$rc

bench-payment: install fetch ## The payment task draining 50,000 orders: the project's slot, Quix Streams, a bare confluent-kafka loop
	cd load/quix && $(UV) sync --frozen --quiet
	cd load && UV=$(UV) $(RUN) python bench_payment.py $(ARGS)

bench-tracing: install ## What tracing costs a Kafka hop per record: none, export off, recorded
	$(RUN) python load/bench_tracing.py $(ARGS)

soak: install fetch ## Orders at a fixed rate for 10 minutes with a fault a minute; every order must end once (ARGS="--minutes 3")
	$(RUN) python load/soak.py $(ARGS)

N ?= 20
stress-outage: install postgres-install fetch ## The outage and fault tests N times in a row (N=20); prints how many runs passed
	@rc=0; pipelines/stress-outage.sh $(N) $(RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider -m 'reliability or stress' $(PYTEST_ARGS) || rc=$$?; \
	  $(MAKE) --no-print-directory ci-cluster-down; exit $$rc

trace-screenshot: install chromium-install ## One order's trace in the local viewer (GOLIVE_VIEWERS=1 make up) as docs/img/order-trace.png
	$(RUN) python load/trace_screenshot.py $(ARGS)

chromium-install: ## Install Chromium (Debian's package), the headless browser of make trace-screenshot, if it is missing
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || { echo "error: no Chromium found; install it (apt-get install chromium)" >&2; exit 1; }

$(VEGETA):
	@command -v go >/dev/null || { echo "error: Go is needed to build vegeta $(VEGETA_VERSION), make bench's fixed-rate load (https://go.dev/dl)" >&2; exit 1; }
	GOBIN=$(CURDIR)/.cache/tools/bin go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)
	mv $(CURDIR)/.cache/tools/bin/vegeta $@

wrk-install: ## Install wrk (Debian's package), the HTTP load tool of make bench, if it is missing
	@command -v wrk >/dev/null \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } \
	  || { echo "error: wrk not found; install it (apt-get install wrk, brew install wrk)" >&2; exit 1; }

include pipelines/replay.mk
include pipelines/stages.mk
