"""A save never freezes the screen while a sync holds the replica's write lock, the user sees it
queued, and it is not lost, not even when the app quits while it waits.

The lock is held for real, by another process with its own SQLite connection (as the sync
worker's bulk load does), not simulated.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cache.errors import ReplicaBusy
from cache.replica import Replica
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from support.keys import TEST_KEY
from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)

HOLDER = """
import sys
from sqlcipher3 import dbapi2 as sqlite3
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA key = \\"x'%s'\\"" % bytes(range(32)).hex())  # the test replicas' key (support.keys)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class LockHolder:
    """Another process holding the replica's write lock until ``release``."""

    def __init__(self, db: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


async def _edit_city(pilot, customer_id: str, city: str) -> None:
    app = pilot.app
    await app.push_screen(Customer360Screen(customer_id))
    await pilot.pause()
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, RecordForm)
    app.screen.query_one("#field-city").value = city
    await pilot.press("f2")
    await pilot.pause()


async def _until(pilot, condition, what: str, rounds: int = 600) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


def _ops(replica: Replica, record_id: str):
    return [o for o in replica.outbox.pending() if o.record_id == record_id]


async def test_a_save_while_a_sync_holds_the_lock_is_queued_shown_and_kept_across_a_quit(make_app, open_replica):
    replica = open_replica("full")
    db, hot = replica.path, replica.hot.directory
    holder = LockHolder(db)
    try:
        # Control: the lock is really held; a direct write (what the UI used to do) cannot get it.
        with Replica(db, hot, key=TEST_KEY, busy_timeout=0.2) as other, pytest.raises(ReplicaBusy):
            other.writes.update("customer", "cu_005", {"city": "Anywhere"})

        app = make_app(replica=replica)
        async with app.run_test(size=SIZE) as pilot:
            await _edit_city(pilot, "cu_005", "Lisbon")
            # The form closed at once and the screen answers keys while the lock is held.
            assert isinstance(app.screen, Customer360Screen)
            await pilot.press("l")
            await pilot.pause()
            assert app.screen.active_tab == "orders"
            # The user is told it is queued.
            await _until(pilot, lambda: app.saver.waiting, "the save worker found the lock held")
            await _until(pilot, lambda: "1 save queued (replica busy)" in str(
                app.screen.query_one("#status-sync").render()), "the status line says the save is queued")
            assert [s.fields for s in replica.saves.queued()] == [{"city": "Lisbon"}]
            assert _ops(replica, "cu_005") == []
            # Quit while it waits: the question says the save is kept.
            await pilot.press("q")
            await pilot.pause()
            assert "still queued" in str(app.screen.query_one(".confirm-detail").render())
            await pilot.press("y")
            await pilot.pause()
        assert not app.is_running
        # The app stopped its save worker; the save waits in the journal, not in a thread.
        assert app.saver.wait_stopped(timeout=30)
        assert replica.saves.count() == 1 and _ops(replica, "cu_005") == []
    finally:
        holder.release()

    # Next start, the lock free: the save is applied, once, and goes with the next sync.
    reopened = Replica(db, hot, key=TEST_KEY)
    try:
        assert reopened.saves.count() == 1
        app = make_app(replica=reopened)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert reopened.saves.count() == 0
            [op] = _ops(reopened, "cu_005")
            assert (op.op, op.fields) == ("update", {"city": "Lisbon"})
            assert reopened.get("customer", "cu_005")["city"] == "Lisbon"
            await _until(pilot, lambda: "queued" not in str(app.screen.query_one("#status-sync").render()),
                         "the status line no longer says a save is queued")
    finally:
        reopened.close()


def test_a_save_applied_before_a_crash_took_its_journal_entry_is_not_applied_twice(open_replica):
    replica = open_replica("full")
    replica.saves.submit("create", "activity", "ac_once", {
        "customer_id": "cu_005", "kind": "note", "subject": "once", "occurred_at": "2026-11-25T08:00:00Z"})
    seq = replica.saves.queued()[0].seq
    with replica.transaction():  # the replica's half committed, the journal's half never happened
        replica.writes.create("activity", replica.saves.queued()[0].fields, record_id="ac_once")
        replica.conn.execute("INSERT INTO replica_meta(key, value) VALUES ('saves_applied', ?)", (str(seq),))
    assert replica.saves.apply_all(replica) == []
    assert replica.saves.count() == 0
    assert len([o for o in replica.outbox.pending() if o.record_id == "ac_once"]) == 1


def test_a_save_the_replica_refuses_later_stays_with_its_reason(open_replica):
    replica = open_replica("full")
    replica.saves.submit("update", "customer", "cu_gone", {"city": "Nowhere"})
    [step] = replica.saves.apply_all(replica)
    assert step.state == "failed" and "cu_gone" in (step.error or "")
    [failed] = replica.saves.failed()
    assert failed.fields == {"city": "Nowhere"} and replica.saves.count() == 0


async def test_settling_a_conflict_while_the_lock_is_held_is_queued_too(make_app, open_replica):
    replica = open_replica("full")
    holder = LockHolder(replica.path)
    try:
        app = make_app(replica=replica)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("escape", "5")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            await pilot.press("t", "m", "a")  # keep my city
            await _until(pilot, lambda: app.saver.waiting, "the save worker found the lock held")
            assert [c.record_id for c in replica.conflicts.unresolved()] == ["cu_002"]  # not yet
            holder.release()
            await _until(pilot, lambda: not replica.conflicts.unresolved(), "the conflict settled")
            await settle(pilot)
            [op] = _ops(replica, "cu_002")
            assert op.fields == {"city": "Potsdam"}
    finally:
        holder.release()
