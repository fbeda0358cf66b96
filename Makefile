# edgelite — developer entry points. Everything installs itself on a fresh machine
# (Python >= 3.11 with venv, node and npm).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JSDIR  := tests/compat/js
PORT   ?= 8080

.PHONY: dev test test-fast sim chaos bench lint typecheck docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(JSDIR)/node_modules/.installed: $(JSDIR)/package.json
	cd $(JSDIR) && npm install --no-audit --no-fund --silent
	touch $@

venv: $(VENV)/.installed

## make dev: set up and run a local server on ./edgelite-data (Ctrl-C stops it)
dev: $(VENV)/.installed
	$(VENV)/bin/edgelite dev --port $(PORT) --data-dir edgelite-data

## make test: set up (Python venv, npm test clients) and run the whole suite
test: $(VENV)/.installed $(JSDIR)/node_modules/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -x -m "not slow" --ignore=tests/compat

## make sim: 10,000 seeds of the deterministic Raft simulation (two halves, one per core)
sim: $(VENV)/.installed
	$(PY) -m edgelite.raft.sim --seeds 5000 --start-seed 1 & first=$$!; \
	$(PY) -m edgelite.raft.sim --seeds 5000 --start-seed 5001; second=$$?; \
	wait $$first; test $$? -eq 0 -a $$second -eq 0

## make chaos: the chaos suite's long profile (about 20 minutes of faults) and the slow tests
chaos: $(VENV)/.installed
	EDGELITE_CHAOS_MINUTES=$${EDGELITE_CHAOS_MINUTES:-20} $(PY) -m pytest -q -p no:cacheprovider tests/chaos
	$(PY) -m pytest -q -p no:cacheprovider -m slow

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	$(PY) -m edgelite.cli.gendocs

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(JSDIR)/node_modules .pytest_cache
