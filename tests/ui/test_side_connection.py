"""Counts in worker threads share one second connection to the replica, one thread at a time.

The search screen and every list's `/` filter count their matches in a thread worker on a second
connection. Typing a new key starts a new count while the old one's thread is still inside SQLite:
two threads ran statements on one connection at once, and at 1M customers the app died with a
segmentation fault (the benchmark's typing run, and closing the app mid-count). SideConnection
(screens/side_connection.py) lets one thread in at a time, interrupting the one under way.

Each proof comes with its control: the same two threads on the bare connection do overlap."""

from __future__ import annotations

import threading

from cache.replica import Replica
from cache.sqlite import sqlite3
from screens.side_connection import SideClosed, SideConnection

# Runs for many seconds unless interrupted; every step checks for an interrupt.
LONG = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM (SELECT x FROM c LIMIT 2000000000)")


class Overlap:
    """Counts the threads inside a block at once (its maximum is what the test asserts)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.entered = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.entered.set()

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


def _long_count(conn: sqlite3.Connection) -> str:
    try:
        conn.execute(LONG).fetchone()
    except sqlite3.OperationalError as exc:
        return str(exc)
    return "finished"


def test_a_newer_count_interrupts_the_one_under_way_and_waits_for_it(tmp_path):
    side = SideConnection(lambda: Replica(tmp_path / "r.db", tmp_path / "hot", cache_mb=2))
    overlap = Overlap()
    outcomes: list[str] = []

    def count() -> None:
        with side.use() as replica:
            overlap.enter()
            try:
                outcomes.append(_long_count(replica.conn))
            finally:
                overlap.leave()

    first = threading.Thread(target=count)
    first.start()
    assert overlap.entered.wait(10)
    def then() -> None:
        with side.use():
            outcomes.append("second in")

    second = threading.Thread(target=then)
    # The second asks while the first runs: the first is interrupted, then the second gets in.
    second.start()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert overlap.most == 1
    assert outcomes[0] == "interrupted"
    assert outcomes[-1] == "second in"
    assert side.waits >= 1
    side.close()


def test_control_two_threads_on_the_bare_connection_overlap(tmp_path):
    """What the screens did before: each worker ran its statements on the shared connection."""
    replica = Replica(tmp_path / "r.db", tmp_path / "hot", cache_mb=2)
    overlap = Overlap()

    def count() -> None:
        overlap.enter()
        try:
            _long_count(replica.conn)
        finally:
            overlap.leave()

    threads = [threading.Thread(target=count) for _ in range(2)]
    for t in threads:
        t.start()
    while overlap.most < 2 and any(t.is_alive() for t in threads):
        threading.Event().wait(0.01)
    replica.conn.interrupt()  # let them go
    for t in threads:
        while t.is_alive():
            replica.conn.interrupt()
            t.join(0.05)
    replica.close()
    assert overlap.most == 2


def test_closing_mid_count_stops_it_and_closes_the_connection_after_it(tmp_path):
    """The app quitting (or the screen going) while a count runs: the count is interrupted and
    the connection closed once its thread has let go — never under it."""
    opened: list[Replica] = []

    def opener() -> Replica:
        opened.append(Replica(tmp_path / "r.db", tmp_path / "hot", cache_mb=2))
        return opened[-1]

    side = SideConnection(opener)
    started = threading.Event()
    outcome: list[str] = []

    def count() -> None:
        with side.use() as replica:
            started.set()
            outcome.append(_long_count(replica.conn))

    t = threading.Thread(target=count)
    t.start()
    assert started.wait(10)
    side.close()
    t.join(10)
    assert not t.is_alive()
    assert outcome == ["interrupted"]
    assert side.closed
    try:
        opened[0].conn.execute("SELECT 1")
    except sqlite3.ProgrammingError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("the side connection is still open after close()")
    # A count asked for after the close is dropped, and opens nothing.
    try:
        with side.use():
            raise AssertionError("a closed side connection let a count in")
    except SideClosed:
        pass
    assert len(opened) == 1


def test_a_stale_waiter_gives_up_without_running(tmp_path):
    side = SideConnection(lambda: Replica(tmp_path / "r.db", tmp_path / "hot", cache_mb=2))
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with side.use():
            holding.set()
            release.wait(10)  # holds the connection without a statement: interrupts do not free it

    t = threading.Thread(target=hold)
    t.start()
    assert holding.wait(10)
    ran = []
    try:
        with side.use(stale=lambda: True):
            ran.append(True)
    except SideClosed:
        pass
    release.set()
    t.join(10)
    side.close()
    assert ran == []
