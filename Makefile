# amqp-client developer commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SOURCES := amqp_client codegen generated tests bench examples

.DEFAULT_GOAL := help
.PHONY: help install generate check-generated lint typecheck test unit broker demo bench bench-go soak fuzz clean tools test-matrix

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

# The install compiles amqp_client/_speedups.c (optional C speedups): redo it
# when the C source or the build files change.
$(STAMP): pyproject.toml setup.py amqp_client/_speedups.c generated/spec.h
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,codegen]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with the dev and codegen extras

generate: $(STAMP) ## regenerate generated/ and docs/reference.md from spec/ (commit all three)
	$(PY) -m codegen

check-generated: $(STAMP) ## fail, with a diff, if generated/ or docs/reference.md is stale
	$(PY) -m codegen --check

lint: $(STAMP) ## ruff check and ruff format --check (generated/ included)
	$(PY) -m ruff check $(wildcard $(SOURCES))
	$(PY) -m ruff format --check $(wildcard $(SOURCES))

typecheck: $(STAMP) ## mypy --strict on the runtime, the generator, the generated code and the tests
	$(PY) scripts/typecheck.py

test: $(STAMP) check-generated lint typecheck broker tools ## everything CI runs: freshness, lint, types, the whole test suite
	$(PY) -m pytest

# The fast tests: no broker, no wheel build (`make unit`, and each Python of
# `make test-matrix`).
FAST_TESTS := not slow and not integration and not fault

unit: $(STAMP) ## the fast tests only: no broker, no wheel build
	$(PY) -m pytest -m "$(FAST_TESTS)"

broker: ## make sure a RabbitMQ broker listens on 127.0.0.1:5672
	@bash scripts/ensure-broker.sh

tools: ## make sure amqp-tools (for tests/interop), valgrind and Go with amqp091-go (for the benchmarks' tests) are installed
	@bash scripts/ensure-amqp-tools.sh
	@bash scripts/ensure-bench-tools.sh

test-matrix: ## the fast tests (those of `make unit`) on Python 3.11, 3.12 and 3.13, each in its .venv-<version>
	@FAST_TESTS="$(FAST_TESTS)" bash scripts/test-matrix.sh

demo: $(STAMP) broker ## publish and consume a few thousand messages with confirms, print the rates
	$(PY) examples/demo.py

bench: $(STAMP) broker bench-go ## benchmarks against the peer clients: codec, then end to end
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/codec.py
	$(PY) bench/e2e.py

bench-go: $(STAMP) ## install Go and amqp091-go (Debian packages) when missing, build e2e.py's Go peer into build/bench-go
	@bash bench/go/ensure-go.sh
	$(PY) bench/e2e.py --build-go

soak: $(STAMP) broker ## 10 min publish + consume with confirms, checks RSS growth and losses (SOAK_ARGS, e.g. --front blocking); not CI
	$(PY) bench/soak.py $(SOAK_ARGS)

fuzz: $(STAMP) ## long fuzz run of the protocol core: FUZZ_INPUTS mutated broker streams (default 1,000,000)
	$(PY) -m tests.property.test_protocol_mutation $${FUZZ_INPUTS:-1000000}

clean: ## remove the venv and caches
	rm -rf $(VENV) .venv-3.* build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis amqp_client/_speedups.*.so
