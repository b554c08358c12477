# The two commands a newcomer types are `make demo` and `make test`; each installs first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test test-slow lint demo bench bench-quick bench-server bench-server-quick server clean secret-service haproxy bottlecrm test-bottlecrm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev,bench]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The tests keep secrets in a real Secret Service (gnome-keyring on a private D-Bus session that
# tests/support/secret_service.py starts), never in the developer's own keyring.
secret-service:
	@command -v gnome-keyring-daemon >/dev/null && command -v dbus-daemon >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends gnome-keyring dbus-daemon >/dev/null; }

# The balancer tests run a real HAProxy (Debian package haproxy) with deploy/haproxy.cfg.
haproxy:
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }

# `make test` runs every test not marked slow; `make test-slow` runs the slow ones (CI runs both:
# .ci/run). Slow (tests/conftest.py says how it is decided): everything on PostgreSQL, the sync
# contract through HAProxy in front of two servers on one PostgreSQL, a server killed in the middle
# of a push (tests/balancer/), the server benchmark's harness (tests/benchmark/), and the long
# end-to-end suites (the CLI, daemons, TLS, faults and hostile networks, the demo).
test: lint secret-service haproxy
	$(BIN)/pytest -n 2 -m "not slow" --ignore=tests/bottlecrm --ignore=tests/balancer --ignore=tests/benchmark $(PYTEST_ARGS)

test-slow: $(STAMP) secret-service haproxy
	$(BIN)/pytest -n 2 -m slow --ignore=tests/bottlecrm $(PYTEST_ARGS)

# A real BottleCRM on loopback (installed once into ~/.cache/crm-tui-bottlecrm; docs/gateway.md).
bottlecrm: $(STAMP)
	$(BIN)/python tests/support/bottlecrm.py

# crm-tui against the gateway against a real BottleCRM; the first run installs it (about 5 minutes).
test-bottlecrm: $(STAMP) secret-service
	$(BIN)/python -c 'import sys; sys.path.insert(0, "tests"); from support.bottlecrm import ensure_template; ensure_template()'
	$(BIN)/pytest -n 2 tests/bottlecrm $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/crm-tui demo

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# The server benchmark starts its own PostgreSQL, servers and HAProxy (bench/SERVER.md).
bench-server: $(STAMP) haproxy
	$(BIN)/python -m bench.server

bench-server-quick: $(STAMP) haproxy
	$(BIN)/python -m bench.server --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
