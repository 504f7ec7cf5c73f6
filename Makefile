# relaywatch: `make build` sets everything up and builds; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROVISION := $(BIN)/provision
CONFIG ?=
CONFIG_FLAG := $(if $(CONFIG),--config $(CONFIG),)

.PHONY: all setup build validate test lint clean

all: build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## build: generate dashboards and rules into build/, then validate and lint them
build: $(STAMP)
	$(PROVISION) build $(CONFIG_FLAG)

## validate: re-check what is in build/
validate: $(STAMP)
	$(PROVISION) validate $(CONFIG_FLAG)

## lint: build the definitions, then lint the output (checks in docs/lint.md; `make build` lints too)
lint: $(STAMP)
	$(PROVISION) build --no-validate $(CONFIG_FLAG)
	$(PROVISION) lint $(CONFIG_FLAG)

## test: the test suite (promtool tests skip without promtool unless REQUIRE_PROMTOOL=1)
test: $(STAMP)
	$(BIN)/python -m pytest

## e2e: only the end-to-end tests against a real Prometheus (tests/e2e, a few minutes)
e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e

## demo: Prometheus (127.0.0.1:9090) and the traffic simulator (127.0.0.1:9464) with the generated rules
## and an hour of backfilled history; Ctrl-C stops both
demo: $(STAMP)
	$(PROVISION) demo $(CONFIG_FLAG)

.PHONY: e2e demo

clean:
	rm -rf build

.PHONY: push diff

## push: build, validate, then push to Grafana (GRAFANA_URL, GRAFANA_TOKEN; PUSH_FLAGS="--prune" or "--dry-run")
push: $(STAMP)
	$(PROVISION) push $(CONFIG_FLAG) $(PUSH_FLAGS)

## diff: what push would change in Grafana, with a unified diff per dashboard (DIFF_FLAGS="--exit-code")
diff: $(STAMP)
	$(PROVISION) diff $(CONFIG_FLAG) $(DIFF_FLAGS)

.PHONY: bench bench-quick

## bench: the benchmark suite (build, push, query cost, SLO window), ratios against baselines; writes docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks --out docs/benchmarks.md

## bench-quick: the same suite at smaller sizes; writes build/benchmarks.md
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick --out build/benchmarks.md
