"""Old data goes (docs/sync-protocol.md, "Retention"): op results and commit bookkeeping older
than the retention window are purged, replays inside the window stay exact, cursors made before
the purge still work, and tombstone compaction works on both stores."""

from __future__ import annotations

import datetime as dt
import time

import orjson
import pytest

from crm_server.batch import apply_batch
from crm_server.errors import ResyncRequired
from crm_server.feed import pull_changes
from crm_server.maintenance import Maintenance
from crm_server.scope import SYSTEM
from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES

DAY = 86400


@pytest.fixture
def store(store_target):
    store = open_store(store_target)
    seed_database(store, customers=5, now=dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
    yield store
    store.close()


def _create(op_id: str, record_id: str) -> dict:
    return {"op_id": op_id, "op": "create", "entity": "territory", "id": record_id, "fields": {"name": record_id}}


def _drain(store, user: str, cursor: str | None) -> str:
    while True:
        page = orjson.loads(pull_changes(store, user, cursor, 500))
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


def test_replays_are_exact_inside_the_window_and_judged_afresh_after_it(store):
    (first,) = apply_batch(store, SYSTEM.id, [_create("op-keep", "t-keep")])
    cursor = _drain(store, "u-admin", None)
    inside = store.maintain(op_retention_days=30, now=time.time() + 29 * DAY)
    assert inside.op_results_purged == 0
    (replay,) = apply_batch(store, SYSTEM.id, [_create("op-keep", "t-keep")])
    assert replay["replayed"] and replay["version"] == first["version"]

    after = store.maintain(op_retention_days=30, now=time.time() + 31 * DAY)
    assert after.op_results_purged >= 1 and after.commits_purged >= 1
    (late,) = apply_batch(store, SYSTEM.id, [_create("op-keep", "t-keep")])
    assert not late["replayed"] and late["error"]["code"] == "exists", "re-judged: the record exists"
    # The commit the cursor names was purged: the cursor still continues, it does not resync.
    apply_batch(store, SYSTEM.id, [_create("op-new", "t-new")])
    page = orjson.loads(pull_changes(store, "u-admin", cursor, 500))
    assert [s["rows"][0][0] for s in page["segments"] if s["op"] == "upsert"] == ["t-new"]


def test_compaction_by_age_and_by_sequence_on_both_stores(store):
    before = _drain(store, "u-admin", None)
    (made,) = apply_batch(store, SYSTEM.id, [_create("op-a", "t-gone")])
    apply_batch(store, SYSTEM.id, [{"op_id": "op-b", "op": "delete", "entity": "territory", "id": "t-gone",
                                    "base_version": made["version"]}])
    after = _drain(store, "u-admin", before)
    result = store.compact(keep_days=30)
    assert result.purged == 0, "nothing is older than 30 days"
    result = store.compact(before_seq=10**12)
    assert result.purged >= 1, "the tombstone of t-gone"
    with pytest.raises(ResyncRequired):
        pull_changes(store, "u-admin", before, 500)
    orjson.loads(pull_changes(store, "u-admin", after, 500))  # a cursor at the head continues
    assert store.compact(before_seq=1).horizon == result.horizon, "the horizon never moves back"


def test_compaction_by_age_still_works_after_commit_bookkeeping_was_thinned(store):
    before = _drain(store, "u-admin", None)
    (made,) = apply_batch(store, SYSTEM.id, [_create("op-old-a", "t-old")])
    apply_batch(store, SYSTEM.id, [{"op_id": "op-old-b", "op": "delete", "entity": "territory", "id": "t-old",
                                    "base_version": made["version"]}])
    after = _drain(store, "u-admin", before)
    month_later = time.time() + 31 * DAY
    thinned = store.maintain(op_retention_days=30, now=month_later)
    assert thinned.commits_purged >= 1, "the old commits were thinned to the last of their day"
    assert store.compact(keep_days=40, now=month_later).purged == 0, "the tombstone is 31 days old, not 40"
    assert store.compact(keep_days=30, now=month_later).purged >= 1, "a tombstone older than 30 days goes"
    with store.read() as tx:
        assert tx.tombstone(ENTITIES["territory"], "t-old") is None
    with pytest.raises(ResyncRequired):
        pull_changes(store, "u-admin", before, 500)  # it had not seen the delete: a new snapshot
    apply_batch(store, SYSTEM.id, [_create("op-young", "t-young")])
    page = orjson.loads(pull_changes(store, "u-admin", after, 500))  # it had: it goes on
    assert [s["rows"][0][0] for s in page["segments"] if s["op"] == "upsert"] == ["t-young"]
    # The next round reads only what came after the horizon, and compacts that too.
    (young,) = apply_batch(store, SYSTEM.id, [{"op_id": "op-young-del", "op": "delete", "entity": "territory",
                                               "id": "t-young", "base_version": page["segments"][0]["rows"][0][-1]}])
    assert young["status"] == "applied"
    assert store.compact(keep_days=30, now=time.time() + 62 * DAY).purged == 1
    with store.read() as tx:
        assert tx.tombstone(ENTITIES["territory"], "t-young") is None


def test_every_server_process_purges_on_its_schedule(store):
    apply_batch(store, SYSTEM.id, [_create("op-sched", "t-sched")])
    (gone,) = apply_batch(store, SYSTEM.id, [_create("op-sched-2", "t-sched-2")])
    apply_batch(store, SYSTEM.id, [{"op_id": "op-sched-del", "op": "delete", "entity": "territory",
                                    "id": "t-sched-2", "base_version": gone["version"]}])
    # What `serve --op-retention-days 30 --compact-days 30` runs, a month on, every 10 ms.
    housekeeping = Maintenance(store, interval=0.01, op_retention_days=30, compact_days=30,
                               clock=lambda: time.time() + 31 * DAY)
    housekeeping.start()
    try:
        deadline = time.monotonic() + 60
        while housekeeping.rounds < 2:
            assert time.monotonic() < deadline, "housekeeping never ran twice"
            time.sleep(0.01)
    finally:
        housekeeping.stop()
    (late,) = apply_batch(store, SYSTEM.id, [_create("op-sched", "t-sched")])
    assert not late["replayed"] and late["error"]["code"] == "exists", "the result went; the record is judged afresh"
    with store.read() as tx:
        assert tx.tombstone(ENTITIES["territory"], "t-sched-2") is None, "the tombstone was compacted"
    # Its create, re-sent after its result was purged: judged afresh, the id is still taken.
    (again,) = apply_batch(store, SYSTEM.id, [_create("op-sched-2", "t-sched-2")])
    assert again["error"]["code"] == "exists", "a deleted record never comes back"
