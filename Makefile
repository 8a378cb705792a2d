# Everything a fresh machine needs: `make test` and `make demo` install what they use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYDEPS := $(VENV)/.installed
NODEDEPS := node_modules/.installed
STRICT := protocol storage supervision sources actors ops devnet bench runner.py

.PHONY: setup test lint typecheck unit demo bench contracts clean

setup: $(PYDEPS) $(NODEDEPS)

$(PYDEPS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

$(NODEDEPS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PYDEPS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(PYDEPS)
	$(PY) -m mypy $(STRICT)

test: setup lint typecheck
	$(PY) -m pytest -n 2 --dist loadgroup

unit: $(PYDEPS)
	$(PY) -m pytest tests/unit

demo: setup
	$(VENV)/bin/oracle-runner demo

bench: setup
	$(PY) -m bench all

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache

contracts: $(NODEDEPS)
	node contracts/build.js
