"""What the server keeps is bounded: a burst of requests leaves at most POOL_SIZE database
connections (each with its own page cache) behind, whatever the number of request threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from crm_server.store.sqlite import POOL_SIZE
from support.server import UserSpec

CLIENTS = 40  # as many as the server's request threads


def _database_connections(pid: int, db: Path) -> int:
    """Open descriptors of the database file in process ``pid``: one per SQLite connection."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if Path(os.readlink(f"/proc/{pid}/fd/{fd}")) == db.resolve():
                count += 1
        except OSError:
            pass  # closed meanwhile
    return count


def test_a_burst_of_requests_leaves_at_most_the_pool_of_database_connections(server_factory):
    srv = server_factory(seed_customers=300, users=[UserSpec("ada", "admin")])
    start = threading.Barrier(CLIENTS)
    lock = threading.Lock()
    in_flight, most_in_flight, statuses = 0, 0, []

    def client() -> None:
        nonlocal in_flight, most_in_flight
        with srv.client("ada", timeout=120) as c:
            start.wait()
            for _ in range(3):
                with lock:
                    in_flight += 1
                    most_in_flight = max(most_in_flight, in_flight)
                response = c.get("/v1/changes", params={"limit": 5000})
                with lock:
                    in_flight -= 1
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * CLIENTS * 3, "every request was served, none refused as busy"
    assert most_in_flight > POOL_SIZE, "control: the burst asked for more connections than the pool has"
    assert 1 <= _database_connections(srv.proc.pid, Path(srv.db_path)) <= POOL_SIZE
