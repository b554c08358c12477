"""What server processes must agree on lives in the database: two processes serving one database
share each token's rate limit and read each other's cursors. Connections are bounded."""

from __future__ import annotations

import threading

import pytest

from crm_server.accounts import issue_token
from crm_server.store import StoreBusy, open_store
from crm_server.store.pool import BoundedPool
from support.server import ServerProcess, UserSpec


@pytest.fixture
def two_processes(tmp_path, database):
    path = tmp_path / "shared.db"
    first = ServerProcess(path, database=database(path), seed_customers=3, rate_limit=0.2,
                          users=[UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",))])
    first.prepare()
    first.start()
    second = ServerProcess(path, database=first.database, rate_limit=0.2, tokens=first.tokens,
                           user_ids=first.user_ids)
    second.db_path = first.db_path
    second.start()
    yield first, second
    second.stop()
    first.stop()


def test_two_server_processes_share_the_rate_limit_and_read_each_others_cursors(two_processes):
    first, second = two_processes
    # 0.2 requests/s with a burst of 1: the first request takes the only token, in either process.
    with first.client("sam") as a, second.client("sam") as b:
        page = a.get("/v1/changes", params={"limit": 5})
        assert page.status_code == 200
        limited = b.get("/v1/changes", params={"limit": 5, "cursor": page.json()["cursor"]})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # A cursor sealed by one process is read by the other (the key is in the database). Limits
    # are per token: sam's second token has a bucket of its own.
    store = open_store(first.db_url)
    try:
        second.tokens["sam2"] = issue_token(store, first.user_ids["sam"])
    finally:
        store.close()
    with second.client("sam2") as b:
        resumed = b.get("/v1/changes", params={"limit": 5, "cursor": page.json()["cursor"]})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["progress"]["done"] > page.json()["progress"]["done"]


def test_the_sqlite_connection_pool_is_bounded(tmp_path):
    store = open_store(tmp_path / "pool.db")
    try:
        errors: list[BaseException] = []

        def reads() -> None:
            try:
                for _ in range(20):
                    with store.read() as tx:
                        tx.info()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=reads) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert store._pool.opened <= store._pool.size
    finally:
        store.close()


def test_a_request_that_finds_every_connection_busy_gets_store_busy():
    pool = BoundedPool(object, 1, lambda conn: None, timeout=0.05)
    with pool.connection():
        outcome: list[BaseException] = []

        def other() -> None:
            try:
                with pool.connection():
                    pass
            except StoreBusy as exc:
                outcome.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
    assert len(outcome) == 1 and "busy" in str(outcome[0])
