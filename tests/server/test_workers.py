"""``crm-server serve --workers N``: several processes on one port that agree on everything a
client can tell apart (rate limits, cursors, tokens, connection caps), replace a worker that
dies, and all stop on SIGTERM.

Which worker answers is the kernel's choice; the tests choose for it by stopping (SIGSTOP) every
worker but one, so a request is known to land on the worker still running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_server.accounts import issue_token
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES
from support.postgres import BACKENDS
from support.server import ServerProcess, UserSpec, make_op

WAIT = 30.0
ACTIVITY = ENTITIES["activity"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


def worker_pids(server: ServerProcess) -> list[int]:
    """The pids of the server's worker processes (the supervisor's children)."""
    pid = server.proc.pid
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:  # the server has exited
        return []
    return sorted(int(p) for p in text.split())


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def closes_pending(server: ServerProcess) -> int:
    """Connections to the server that the client closed and the server has not yet let go
    (TCP states CLOSE_WAIT and LAST_ACK on the server's port)."""
    port = f"{server.port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if (f := row.split())[1].endswith(f":{port}") and f[3] in ("08", "09"))


@contextlib.contextmanager
def only(server: ServerProcess, worker: int) -> Iterator[None]:
    """While the block runs, every worker but ``worker`` is stopped: new connections go to it.

    First every closed connection is let go, so no worker is stopped still counting one."""
    wait_for(lambda: closes_pending(server) == 0, "closed connections to be let go")
    others = [p for p in worker_pids(server) if p != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def open_health_connection(server: ServerProcess) -> tuple[socket.socket, bytes]:
    """A new connection with one GET /health on it, left open; and the answer's first line."""
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    conn.sendall(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = conn.recv(4096)
        if not chunk:
            break
        answer += chunk
    return conn, answer.split(b"\r\n", 1)[0]


@pytest.fixture
def two_workers(tmp_path, database):
    """``two_workers(**options)``: a server with two workers (seeded, users ada and sam)."""
    started: list[ServerProcess] = []

    def start(**options) -> ServerProcess:
        path = tmp_path / f"crm{len(started)}.db"
        options["serve_args"] = (*options.get("serve_args", ()), "--log-level", "info")
        srv = ServerProcess(path, database=database(path), seed_customers=5,
                            users=[UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",))], **options)
        started.append(srv)
        srv.prepare()
        srv.start()
        pids = wait_for(lambda: len(p := worker_pids(srv)) == 2 and p, "two workers")
        # Each worker's first housekeeping round done: a worker the test stops (SIGSTOP) must
        # not be stopped holding the database's write lock.
        wait_for(lambda: all(re.search(rf"INFO {pid} crm_server.maintenance", srv.log_text()) for pid in pids),
                 "the first housekeeping round")
        return srv

    yield start
    for srv in started:
        srv.stop()


def test_two_workers_share_rate_limits_cursor_keys_tokens_and_connection_caps(two_workers):
    server = two_workers(rate_limit=0.01, serve_args=("--workers", "2", "--max-connections-per-client", "2"))
    a, b = worker_pids(server)

    # Two connections per client address, counted over both workers: two held by a, so b refuses
    # a third one, and takes one again once a has let one go.
    # The clients above have closed their connections, but a worker counts a connection until it
    # has handled its close: one stopped first may still count it. So try until both are let go.
    held: list[socket.socket] = []

    def two_held_on_a() -> bool:
        with only(server, a):
            answers = [open_health_connection(server) for _ in range(2)]
        if all(status == b"HTTP/1.1 200 OK" for _, status in answers):
            held.extend(conn for conn, _ in answers)
            return True
        for conn, _ in answers:
            conn.close()
        return False

    try:
        wait_for(two_held_on_a, "two connections held by worker a")
        with only(server, b):
            conn, status = open_health_connection(server)
            conn.close()
            assert status == b"HTTP/1.1 429 Too Many Requests"
    finally:
        for conn in held:
            conn.close()
    wait_for(lambda: open_health_connection(server)[1] == b"HTTP/1.1 200 OK", "a free connection slot")

    # 0.01 requests/s with a burst of 1: the request on worker a takes the only token there is.
    # (One connection per phase: a worker stopped right after a close may not have counted it.)
    with only(server, a), server.client("sam") as http:
        page = http.get("/v1/changes", params={"limit": 2})
        assert page.status_code == 200, page.text
    # A token issued while the workers run is known to them.
    store = open_store(server.db_url)
    try:
        server.tokens["sam2"] = issue_token(store, server.user_ids["sam"])
    finally:
        store.close()
    with only(server, b), server.client("sam") as http:
        limited = http.get("/v1/changes", params={"limit": 2, "cursor": page.json()["cursor"]})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        # Worker b opens the cursor worker a sealed (sam's second token has a bucket of its own).
        resumed = http.get("/v1/changes", params={"limit": 2, "cursor": page.json()["cursor"]},
                           headers={"Authorization": f"Bearer {server.tokens['sam2']}"})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["progress"]["done"] > page.json()["progress"]["done"]


def test_concurrent_batches_through_two_workers_are_all_applied_once(two_workers):
    """Writers on both workers at once (on SQLite they take turns on the file's write lock):
    no 5xx, no "database is locked", every op applied once, re-sends answered from the records."""
    server = two_workers(serve_args=("--workers", "2"))
    store = open_store(server.db_url)
    try:
        tokens = [issue_token(store, server.user_ids["ada"]) for _ in range(4)]
    finally:
        store.close()
    ids = [f"act-w{t}-{i}-{k}" for t in range(4) for i in range(5) for k in range(20)]
    ops = [make_op("create", "activity", rid, {"customer_id": "cus-0000001", "kind": "note", "body": rid,
                                                 "occurred_at": "2026-11-25T10:00:00Z"}) for rid in ids]
    batches = [ops[n:n + 20] for n in range(0, len(ops), 20)]
    statuses: list[int] = []
    results: list[str] = []

    def writer(t: int) -> None:
        import httpx

        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[t]}"}, timeout=WAIT) as http:
            for batch in batches[t * 5:(t + 1) * 5]:
                for _ in range(2):  # each batch twice: the second is a re-send
                    response = http.post("/v1/batch", json={"ops": batch})
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        results.extend(r["status"] for r in response.json()["results"])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 40, statuses
    assert results == ["applied"] * 800  # a re-send gets the first answer again
    store = open_store(server.db_url)
    try:
        with store.read() as tx:
            stored = [tx.get(ACTIVITY, rid) for rid in ids]
            changes = tx.changes_after((0, 0), tx.info().head, 100_000, None)
    finally:
        store.close()
    assert all(s is not None and s.record["body"] == s.record["id"] for s in stored)
    # One change per op in the change log: a re-send wrote nothing.
    assert sum(1 for c in changes if c.record_id.startswith("act-w")) == 400
    assert "database is locked" not in server.log_text()


def test_a_killed_worker_is_replaced_and_sigterm_stops_every_worker(tmp_path):
    with ServerProcess(tmp_path / "crm.db", seed_customers=2, serve_args=(
            "--workers", "2", "--log-level", "info", "--max-connections-per-client", "2")) as server:
        wait_for(lambda: len(worker_pids(server)) == 2, "two workers")
        first = worker_pids(server)
        with only(server, first[0]):  # the killed worker holds this client's two connections
            held = [open_health_connection(server) for _ in range(2)]
            assert [status for _, status in held] == [b"HTTP/1.1 200 OK"] * 2
            os.kill(first[0], signal.SIGKILL)
        for conn, _ in held:
            conn.close()
        replaced = wait_for(lambda: (p := worker_pids(server)) and len(p) == 2 and first[0] not in p and p,
                            "a new worker")
        assert first[1] in replaced
        assert re.search(rf"worker \d \(pid {first[0]}\) was killed by SIGKILL; starting a new one", server.log_text())
        new = next(p for p in replaced if p != first[1])
        wait_for(lambda: f"(pid {new}) accepts connections" in server.log_text(), "the new worker to serve")
        with server.client("ada") as http:
            assert all(http.get("/v1/me", headers={"connection": "close"}).status_code == 200 for _ in range(10))
        # The dead worker's connections no longer count against the client.
        again = [open_health_connection(server) for _ in range(2)]
        for conn, _ in again:
            conn.close()
        assert [status for _, status in again] == [b"HTTP/1.1 200 OK"] * 2

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(WAIT) == 0
        for pid in replaced:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        log = server.log_text()
        assert all(f"Finished server process [{pid}]" in log for pid in replaced)
        assert "while stopping" not in log


def test_workers_that_keep_dying_stop_the_server_with_one_line(tmp_path):
    with ServerProcess(tmp_path / "crm.db", seed_customers=0, serve_args=("--workers", "2")) as server:
        for _ in range(5):
            pids = wait_for(lambda: len(p := worker_pids(server)) == 2 and p, "two workers")
            try:
                os.kill(pids[0], signal.SIGKILL)
            except ProcessLookupError:
                break
            gone = pids[0]
            wait_for(lambda: gone not in worker_pids(server) or server.proc.poll() is not None, "the death noticed")  # noqa: B023
            if server.proc.poll() is not None:
                break
        assert server.proc.wait(WAIT) == 1
        last = server.log_text().strip().splitlines()[-1]
        assert re.fullmatch(r"Error: 5 workers died within 60 s \(last: was killed by SIGKILL\); see the log", last)
        assert not worker_pids_left(server)


def worker_pids_left(server: ServerProcess) -> list[int]:
    """Processes still running this server's command line (none, once it has stopped)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if server.db_url.encode() in cmd and b"serve" in cmd:
                out.append(int(entry))
    return out
