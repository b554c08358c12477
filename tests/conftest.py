"""Shared fixtures. Server fixtures start the real crm-server (see tests/support/server.py).

Every test process gets a private Secret Service (tests/support/secret_service.py) and points the
keyring library at it, so replica keys and tokens go to a real keyring that is not the
developer's; replicas are encrypted, as they are by default for users.
"""

from __future__ import annotations

import os

import keyring
import keyring.backends.fail
import pytest

from support.secret_service import SecretService
from support.server import ServerProcess


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


@pytest.fixture
def server(tmp_path):
    """A fresh crm-server (20 seeded customers, default users ada/alex/sam/rita, test hooks on)."""
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
