"""Concurrent writer processes and feed followers, for the proofs of sync-contract
promises 1-2 (docs/sync-contract.md).

    out = run_harness(url, follower, follower.pull)   # see tests/server/test_concurrent_writers.py

``run_harness`` starts a writer that inserts a customer and holds its transaction open, then
WRITERS writer processes that commit batches through ``apply_batch`` while ``pull`` follows a
feed; once they are done it lets the held writer commit and drains the feed. It returns the
latest committed version of every customer (``latest``), the held change (``held``) and what the
follower delivered (``delivered``: (id, version) in delivery order). Followers: ``FeedFollower``
(the real feed) and ``NaiveFollower`` (a ``bigserial``-ordered one).
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable

import orjson

from crm_server.batch import apply_batch
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES

WRITERS = 3
BATCHES = 12
TERRITORIES = ("dach", "france", "nordics", "iberia")
DEADLINE = 120  # seconds any wait may take before the test fails instead of hanging
CUSTOMER = ENTITIES["customer"]
Delivered = list[tuple[str, int]]  # (customer id, version) in delivery order


def _holder(url: str, inserted, release, committed) -> None:
    """Insert a customer, then keep the transaction open until told to commit."""
    store = open_store(url)
    try:
        with store.write() as tx:
            version = tx.insert(CUSTOMER, {"id": "held-1", "name": "Held Open", "territory": "dach"})
            inserted.put(version)
            if not release.wait(DEADLINE):
                raise TimeoutError("never released")
        committed.put(("held-1", version))
    finally:
        store.close()


def _writer(url: str, n: int, results) -> None:
    """BATCHES batches of two creates and an update of an earlier customer, through apply_batch."""
    store = open_store(url)
    try:
        versions: dict[str, int] = {}
        for b in range(BATCHES):
            ops = [{"op_id": f"w{n}-{b}-{k}", "op": "create", "entity": "customer", "id": f"w{n}-{b}-{k}",
                    "fields": {"name": f"Writer {n}", "territory": TERRITORIES[(b + k) % len(TERRITORIES)]}}
                   for k in range(2)]
            if b:
                target = f"w{n}-{b - 1}-0"
                ops.append({"op_id": f"w{n}-{b}-u", "op": "update", "entity": "customer", "id": target,
                            "base_version": versions[target], "fields": {"city": f"City {b}"}})
            for r in apply_batch(store, SYSTEM.id, ops):
                assert r["status"] == "applied", r
                versions[r["record"]["id"]] = r["version"]
        results.put(sorted(versions.items()))
    finally:
        store.close()


class FeedFollower:
    """The real feed: pull_changes as the admin, customers' (id, version) in delivery order."""

    def __init__(self, store):
        self.store, self.cursor, self.delivered = store, None, []

    def pull(self) -> bool:
        page = orjson.loads(pull_changes(self.store, "u-admin", self.cursor, 50))
        for seg in page["segments"]:
            if seg["op"] == "upsert" and seg["entity"] == "customer":
                self.delivered += [(row[0], row[-1]) for row in seg["rows"]]
        self.cursor = page["cursor"]
        return page["has_more"]


class NaiveFollower:
    """The trap: a feed that trusts sequence order (``WHERE seq > cursor ORDER BY seq``)."""

    def __init__(self, postgres, url):
        self.conn, self.cursor, self.delivered = postgres.connect(url), 0, []

    def pull(self) -> bool:
        rows = self.conn.execute(
            "SELECT seq, record_id FROM changes WHERE seq > %s AND entity = 'customer' AND kind = 'upsert'"
            " ORDER BY seq LIMIT 50", (self.cursor,)).fetchall()
        self.delivered += [(rid, seq) for seq, rid in rows]
        if rows:
            self.cursor = rows[-1][0]
        return len(rows) == 50


def run_harness(url: str, follower, pull: Callable[[], bool]) -> dict:
    """Writers and a follower at once; returns what was committed and what was delivered."""
    ctx = multiprocessing.get_context("spawn")
    inserted, committed, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    release = ctx.Event()
    holder = ctx.Process(target=_holder, args=(url, inserted, release, committed))
    holder.start()
    writers = []
    try:
        inserted.get(timeout=DEADLINE)  # the held writer has its sequence number, uncommitted
        writers = [ctx.Process(target=_writer, args=(url, n, results)) for n in range(WRITERS)]
        for w in writers:
            w.start()
        done: list[list[tuple[str, int]]] = []
        pulls = 0
        while len(done) < WRITERS:  # follow the feed while the writers commit
            pull()
            pulls += 1
            try:
                done.append(results.get(timeout=0.2))
            except queue.Empty:
                assert all(w.is_alive() or w.exitcode == 0 for w in writers), "a writer failed"
        while pull():
            pass
        # Every other writer committed while the held transaction was still open: writers do not
        # queue behind one another's batch.
        assert holder.is_alive() and committed.empty()
        release.set()
        held = committed.get(timeout=DEADLINE)
        while pull():
            pass
    finally:
        release.set()
        for p in [holder, *writers]:
            p.join(DEADLINE)
            if p.is_alive():
                p.kill()
    latest = {cid: version for batch in done for cid, version in batch}
    latest[held[0]] = held[1]
    return {"latest": latest, "held": held, "delivered": follower.delivered, "pulls": pulls}
