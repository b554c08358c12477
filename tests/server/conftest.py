"""Every server test runs against both stores: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from support.postgres import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_target(backend, tmp_path, request) -> str:
    """What ``open_store`` gets for a fresh database of this test: a SQLite file's path or the URL
    of a fresh PostgreSQL database, per ``backend``."""
    if backend == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_url")
