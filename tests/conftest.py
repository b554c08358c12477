"""Shared fixtures. Server fixtures start the real crm-server (see tests/support/server.py)."""

from __future__ import annotations

import pytest

from support.server import ServerProcess


@pytest.fixture
def server(tmp_path):
    """A fresh crm-server (20 seeded customers, default users ada/alex/sam/rita)."""
    with ServerProcess(tmp_path / "crm.db") as srv:
        yield srv


@pytest.fixture(scope="session")
def seeded_server(tmp_path_factory):
    """A crm-server with 200 seeded customers, shared by a worker's tests: do not write to it."""
    with ServerProcess(tmp_path_factory.mktemp("seeded") / "crm.db", seed_customers=200) as srv:
        yield srv


@pytest.fixture
def server_factory(tmp_path):
    """Start servers with your own options: ``server_factory(seed_customers=0, rate_limit=5, ...)``."""
    started: list[ServerProcess] = []

    def start(**options) -> ServerProcess:
        srv = ServerProcess(tmp_path / f"crm{len(started)}.db", **options)
        started.append(srv)
        srv.prepare()
        srv.start()
        return srv

    yield start
    for srv in started:
        srv.stop()
