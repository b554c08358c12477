# The two commands a newcomer types are `make demo` and `make test`; each installs first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test lint demo bench bench-quick server clean bottlecrm test-bottlecrm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev,bench]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 --ignore=tests/bottlecrm $(PYTEST_ARGS)

# A real BottleCRM on loopback (installed once into ~/.cache/crm-tui-bottlecrm; docs/gateway.md).
bottlecrm: $(STAMP)
	$(BIN)/python tests/support/bottlecrm.py

# crm-tui against the gateway against a real BottleCRM; the first run installs it (about 5 minutes).
test-bottlecrm: $(STAMP)
	$(BIN)/python -c 'import sys; sys.path.insert(0, "tests"); from support.bottlecrm import ensure_template; ensure_template()'
	$(BIN)/pytest -n 2 tests/bottlecrm $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/crm-tui demo

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
