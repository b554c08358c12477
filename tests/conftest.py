"""Shared fixtures. Server fixtures start the real crm-server (see tests/support/server.py);
PostgreSQL fixtures start a real PostgreSQL (see tests/support/postgres.py).

``backend`` ("sqlite" by default) says which database the server fixtures use. A test module or
directory runs against both by overriding it::

    @pytest.fixture(scope="module", params=BACKENDS)
    def backend(request):
        return request.param

Which tests are slow (``make test-slow``, not ``make test``): every test on PostgreSQL (the
``postgres``/``postgres_url`` fixtures, or a ``backend`` of "postgresql" or "balanced"), the
suites under tests/balancer/ and tests/benchmark/, and modules marked ``pytest.mark.slow``
(the long end-to-end suites: processes killed, networks misbehaving, daemons, TLS) or tests so
marked (a whole matrix of cases, e.g. every section after every modal in tests/ui/test_focus_keys.py).
``pytest_collection_modifyitems`` below adds the ``slow`` marker; CI runs both halves.

Every test process gets a private Secret Service (tests/support/secret_service.py) and points the
keyring library at it, so replica keys and tokens go to a real keyring that is not the
developer's; replicas are encrypted, as they are by default for users.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from support.balancer import BalancedServer
from support.postgres import PostgresServer
from support.secret_service import SecretService
from support.server import ServerProcess

SLOW_DIRS = ("balancer", "benchmark")  # under tests/: every test there is slow
POSTGRES_FIXTURES = {"postgres", "postgres_url"}
POSTGRES_BACKENDS = {"postgresql", "balanced"}


def runs_on_postgres(item: pytest.Item) -> bool:
    """Does this test start or use a PostgreSQL server (so it belongs to ``make test-slow``)?"""
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") in POSTGRES_BACKENDS


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        parts = item.path.resolve().relative_to(tests_dir).parts
        if parts[0] in SLOW_DIRS or runs_on_postgres(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def secret_service(tmp_path_factory):
    """The private Secret Service, in this process's environment (and so in its children's)."""
    with SecretService(tmp_path_factory.mktemp("secret-service")) as service:
        saved = {k: os.environ.get(k) for k in service.env}
        os.environ.update(service.env)
        keyring.core.init_backend()
        yield service
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        keyring.core.init_backend()


@pytest.fixture
def no_keyring(monkeypatch):
    """A machine with no secure keyring (keyring's own "fail" backend), in this process and its
    children."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    monkeypatch.undo()
    keyring.core.init_backend()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for this session (one per xdist worker), stopped at the end."""
    with PostgresServer.start() as pg:
        yield pg


@pytest.fixture
def postgres_url(postgres):
    """The URL of a fresh, empty PostgreSQL database for this test."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="module")
def backend() -> str:
    """The store the server fixtures use: "sqlite" (default), "postgresql", or "balanced" (two
    servers on one PostgreSQL behind a real HAProxy: tests/support/balancer.py)."""
    return "sqlite"


@pytest.fixture(scope="module")
def database(request, backend) -> Callable[[Path], str | None]:
    """``database(path)``: what a ServerProcess at ``path`` serves: None (the SQLite file at
    ``path``) or the URL of a fresh PostgreSQL database."""

    def make(path: Path) -> str | None:
        if backend == "sqlite":
            return None
        return request.getfixturevalue("postgres").create_database()

    return make


@pytest.fixture(scope="module")
def server_class(backend) -> type[ServerProcess]:
    """What the server fixtures start: one server, or HAProxy and two servers ("balanced")."""
    return BalancedServer if backend == "balanced" else ServerProcess


@pytest.fixture
def server(tmp_path, database, server_class):
    """A fresh crm-server (20 seeded customers, default users ada/alex/sam/rita)."""
    with server_class(tmp_path / "crm.db", database=database(tmp_path / "crm.db")) as srv:
        yield srv


@pytest.fixture(scope="session")
def seeded_server(tmp_path_factory):
    """A crm-server with 200 seeded customers, shared by a worker's tests: do not write to it."""
    with ServerProcess(tmp_path_factory.mktemp("seeded") / "crm.db", seed_customers=200) as srv:
        yield srv


@pytest.fixture
def server_factory(tmp_path, database, server_class):
    """Start servers with your own options: ``server_factory(seed_customers=0, rate_limit=5, ...)``."""
    started: list[ServerProcess] = []

    def start(**options) -> ServerProcess:
        path = tmp_path / f"crm{len(started)}.db"
        srv = server_class(path, database=database(path), **options)
        started.append(srv)
        srv.prepare()
        srv.start()
        return srv

    yield start
    for srv in started:
        srv.stop()
