"""Every server test runs against both stores: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from support.postgres import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param
