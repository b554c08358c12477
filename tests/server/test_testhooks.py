"""The fault-injection hook (/_test/fault) that sync tests use; off unless asked for."""

from __future__ import annotations

import time

import httpx
import pytest

from support.server import ServerProcess, UserSpec, make_op


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    path = tmp_path_factory.mktemp("hooks") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=3,
                       users=[UserSpec("ada", "admin")]) as s:
        yield s


def test_a_fault_fails_the_next_requests_of_a_route_then_disarms(srv):
    srv.fault("/v1/me", status=503, count=2, retry_after=3)
    with srv.client("ada") as c:
        first, second, third = c.get("/v1/me"), c.get("/v1/me"), c.get("/v1/me")
        assert c.get("/v1/changes", params={"limit": 1}).status_code == 200, "other routes are untouched"
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "3" and first.json()["error"]["code"] == "injected_fault"


def test_an_after_fault_applies_the_write_but_loses_the_answer(srv):
    srv.fault("/v1/batch", status=500, after=True)
    op = make_op("create", "territory", "hook-t1", {"name": "Hook"})
    with srv.client("ada") as c:
        assert c.post("/v1/batch", json={"ops": [op]}).status_code == 500
    assert srv.get_record("territories", "hook-t1") is not None, "the effect was committed"
    (again,) = srv.batch([op])
    assert again["replayed"] is True


def test_truncate_and_delay(srv):
    srv.fault("/v1/changes", truncate=True)
    with srv.client("ada") as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/v1/changes")
        assert c.get("/v1/changes").status_code == 200
        srv.fault("/v1/me", delay=0.5)
        started = time.monotonic()
        assert c.get("/v1/me").status_code == 200
        assert time.monotonic() - started >= 0.5
    srv.fault("/v1/me", status=500, count=5)
    srv.clear_faults()
    with srv.client("ada") as c:
        assert c.get("/v1/me").status_code == 200


def test_hooks_are_off_by_default(server_factory):
    srv = server_factory(seed_customers=0, test_hooks=False, users=[UserSpec("ada", "admin")])
    response = httpx.post(srv.url + "/_test/fault", json={"path": "/v1/me", "status": 500})
    assert response.status_code == 404
