"""The replica on its own: pages in, local writes, the outbox, conflicts, search, the hot cache.

These build a real SQLite replica in a temp dir and feed it server-shaped pages; the end-to-end
promises (docs/sync-contract.md) against the real server live in tests/e2e/.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.errors import MalformedPage, RecordNotFound
from cache.replica import Replica
from cache.schema import SCHEMA_VERSION
from crm_tui.core.domain import CUSTOMER, ENTITIES, ValidationError
from support.keys import TEST_KEY
from support.records import customer_row


def page(segments, cursor="c1", has_more=False, phase="feed"):
    return {"cursor": cursor, "has_more": has_more, "phase": phase, "segments": segments}


def upsert(entity, rows):
    return {"op": "upsert", "entity": entity, "columns": list(ENTITIES[entity].columns), "rows": rows}


def contact_row(cid, customer_id, version=1, **kw):
    rec = {"id": cid, "customer_id": customer_id, "name": f"Contact {cid}", "title": "CTO", "email": None,
           "phone": None, "is_primary": False, "created_at": None, "updated_at": None, "version": version}
    rec.update(kw)
    return [rec[c] for c in ENTITIES["contact"].columns]


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)
    r.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent"})
    yield r
    r.close()


def test_page_and_cursor_commit_together(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1"), customer_row("c2")])], cursor="A"))
    assert replica.cursor == "A"
    assert replica.count("customer") == 2
    assert replica.get("customer", "c1")["tags"] == ["vip"]


@pytest.mark.parametrize(
    "bad",
    [
        "not a dict",
        {"cursor": "X", "has_more": "yes", "phase": "feed", "segments": []},
        {"cursor": "X", "has_more": False, "phase": "feed", "segments": {}},
        {"cursor": "X", "has_more": False, "phase": "feed",
         "segments": [{"op": "upsert", "entity": "customer", "columns": ["id"], "rows": [["c9"]]}]},
        {"cursor": "X", "has_more": False, "phase": "feed",
         "segments": [{"op": "upsert", "entity": "nope", "columns": ["id", "version"], "rows": []}]},
        {"cursor": "X", "has_more": False, "phase": "feed",
         "segments": [upsert("customer", [customer_row("c9")[:-1]])]},
    ],
)
def test_malformed_page_changes_nothing(replica, bad):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])], cursor="A"))
    with pytest.raises(MalformedPage):
        replica.server_apply.apply_page(bad)
    assert replica.cursor == "A"
    assert replica.count("customer") == 1


def test_invalid_record_is_quarantined_and_the_rest_applies(replica):
    bad = customer_row("c2", version="seven")
    worse = customer_row("c3", email="not an email")
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1"), bad, worse])], cursor="B"))
    assert replica.cursor == "B"
    assert replica.get("customer", "c1") is not None
    assert replica.get("customer", "c2") is None and replica.get("customer", "c3") is None
    quarantined = replica.reads.quarantined()
    assert {q["record_id"] for q in quarantined} == {"c2", "c3"}
    assert any("email" in q["error"] for q in quarantined)


def test_tombstone_exit_and_lost_territory_remove_records(replica):
    replica.server_apply.apply_page(page([
        upsert("customer", [customer_row("c1"), customer_row("c2"), customer_row("c3", territory="t2")]),
        upsert("contact", [contact_row("k1", "c1"), contact_row("k2", "c2"), contact_row("k3", "c3")]),
    ]))
    replica.server_apply.apply_page(page([{"op": "delete", "entity": "contact", "ids": ["k1"]}], cursor="2"))
    assert replica.get("contact", "k1") is None
    replica.server_apply.apply_page(page([{"op": "exit", "entity": "customer", "ids": ["c2"]}], cursor="3"))
    assert replica.get("customer", "c2") is None and replica.get("contact", "k2") is None
    replica.server_apply.apply_page(page([{"op": "exit_territory", "territory": "t2"}], cursor="4"))
    assert replica.get("customer", "c3") is None and replica.get("contact", "k3") is None
    assert replica.get("customer", "c1") is not None


def test_local_write_is_in_the_outbox_when_update_returns(replica, tmp_path):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"phone": "+1 555 0100"})
    # A second connection (another process) sees both the change and the queued op.
    other = Replica(tmp_path / "replica.db", tmp_path / "hot2", key=TEST_KEY)
    try:
        assert other.get("customer", "c1")["phone"] == "+1 555 0100"
        [op] = other.outbox.pending()
        assert (op.op, op.base_version, op.fields) == ("update", 5, {"phone": "+1 555 0100"})
    finally:
        other.close()


def test_edits_coalesce_into_one_op_with_the_earliest_base(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"phone": "+1 555 0100"})
    replica.writes.update("customer", "c1", {"city": "Paris"})
    replica.writes.update("customer", "c1", {"phone": "+1 555 0199"})
    [op] = replica.outbox.pending()
    assert op.base_version == 5
    assert op.fields == {"phone": "+1 555 0199", "city": "Paris"}
    assert op.base_values == {"phone": "+49 30 1234567", "city": "Berlin"}
    # Editing back to the original value leaves nothing to send for that field.
    replica.writes.update("customer", "c1", {"city": "Berlin"})
    [op] = replica.outbox.pending()
    assert op.fields == {"phone": "+1 555 0199"}


def test_an_op_once_sent_is_never_changed(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"city": "Paris"})
    [sent] = replica.outbox.next_batch(10)
    replica.writes.update("customer", "c1", {"city": "Rome"})
    ops = replica.outbox.pending()
    assert [o.fields for o in ops] == [{"city": "Paris"}, {"city": "Rome"}]
    assert ops[0].op_id == sent.op_id
    # Only one op per record per batch: the second waits for the first's result.
    assert [o.op_id for o in replica.outbox.next_batch(10)] == [sent.op_id]


def test_create_then_delete_before_push_sends_nothing(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])]))
    note = replica.writes.create("activity", {"customer_id": "c1", "kind": "note", "body": "hi",
                                              "occurred_at": "2026-11-25T10:00:00Z"})
    assert note["author_id"] == "u1"
    replica.writes.delete("activity", note["id"])
    assert replica.outbox.pending() == []
    assert replica.get("activity", note["id"]) is None


def test_bad_values_are_refused_with_field_messages_and_nothing_written(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])]))
    with pytest.raises(ValidationError) as err:
        replica.writes.update("customer", "c1", {"email": "nope", "tier": "diamond", "version": 3})
    assert set(err.value.errors) == {"email", "tier", "version"}
    with pytest.raises(ValidationError) as err:
        replica.writes.create("contact", {"customer_id": "missing", "name": "X"})
    assert "customer_id" in err.value.errors
    with pytest.raises(RecordNotFound):
        replica.writes.update("customer", "nobody", {"city": "Oslo"})
    assert replica.outbox.pending() == []


def test_ticket_workflow_is_enforced_locally(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])]))
    t = replica.writes.create("ticket", {"customer_id": "c1", "subject": "Broken", "status": "new",
                                         "priority": "high"})
    assert t["sla_due"]
    replica.writes.update("ticket", t["id"], {"status": "solved"})
    replica.writes.update("ticket", t["id"], {"status": "closed"})
    with pytest.raises(ValidationError):
        replica.writes.update("ticket", t["id"], {"status": "open"})


def test_pull_never_overwrites_a_pending_field_and_rebases(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"phone": "+1 555 0100"})
    # The server changed another field: the local phone stays, the op re-bases to version 9.
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=9, city="Hamburg")])], cursor="2"))
    rec = replica.get("customer", "c1")
    assert (rec["phone"], rec["city"], rec["version"]) == ("+1 555 0100", "Hamburg", 9)
    [op] = replica.outbox.pending()
    assert op.base_version == 9
    # The server also changed the phone: local value still wins, but the op keeps its base so
    # the server will report the clash instead of silently overwriting.
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=12, phone="+44 20 7946")])],
                                 cursor="3"))
    assert replica.get("customer", "c1")["phone"] == "+1 555 0100"
    [op] = replica.outbox.pending()
    assert op.base_version == 9


def test_pending_delete_is_not_undone_by_a_pull(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.delete("customer", "c1")
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=6)])], cursor="2"))
    assert replica.get("customer", "c1") is None


def test_results_applied_conflict_rejected(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5), customer_row("c2")])]))
    replica.writes.update("customer", "c1", {"phone": "+1 555 0100", "city": "Paris"})
    replica.writes.update("customer", "c2", {"city": "Lyon"})
    ops = replica.outbox.next_batch(10)
    server_c1 = dict(zip(CUSTOMER.columns, customer_row("c1", version=20, phone="+44 20 7946", city="Paris"),
                         strict=True))
    results = [
        {"op_id": ops[0].op_id, "status": "conflict", "version": 20, "record": server_c1,
         "conflicts": [{"field": "phone", "server": "+44 20 7946", "client": "+1 555 0100"}]},
        {"op_id": ops[1].op_id, "status": "rejected",
         "error": {"code": "validation", "message": "city: not allowed", "fields": {"city": "not allowed"}}},
    ]
    stats = replica.results.apply(ops, results)
    assert (stats.conflicts, stats.rejected) == (1, 1)
    [conflict] = replica.conflicts.unresolved()
    assert conflict.fields["phone"] == {"mine": "+1 555 0100", "theirs": "+44 20 7946", "base": "+49 30 1234567"}
    # Mine stays on screen until the user chooses; the record carries the server's version.
    rec = replica.get("customer", "c1")
    assert (rec["phone"], rec["version"]) == ("+1 555 0100", 20)
    [rejected] = replica.outbox.rejected()
    assert rejected.error["code"] == "validation"
    assert replica.outbox.counts() == {"pending": 0, "rejected": 1, "conflicts": 1}

    replica.writes.resolve_conflict(conflict.id, {"phone": "mine"})
    [op] = replica.outbox.pending()
    assert (op.fields, op.base_version) == ({"phone": "+1 555 0100"}, 20)
    assert replica.conflicts.unresolved() == []

    replica.rejected.resend(rejected.seq, {"city": "Lille"})
    assert {o.record_id: o.fields for o in replica.outbox.pending()}["c2"] == {"city": "Lille"}
    assert replica.get("customer", "c2")["city"] == "Lille"


def test_resolving_with_theirs_takes_the_server_value(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"phone": "+1 555 0100"})
    [op] = replica.outbox.next_batch(10)
    server = dict(zip(CUSTOMER.columns, customer_row("c1", version=20, phone="+44 20 7946"), strict=True))
    replica.results.apply([op], [{"op_id": op.op_id, "status": "conflict", "version": 20, "record": server,
                                         "conflicts": [{"field": "phone", "server": "+44 20 7946",
                                                        "client": "+1 555 0100"}]}])
    [c] = replica.conflicts.unresolved()
    replica.writes.resolve_conflict(c.id, {"phone": "theirs"})
    assert replica.get("customer", "c1")["phone"] == "+44 20 7946"
    assert replica.outbox.pending() == []


def test_discarding_a_rejected_update_restores_the_server_value(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5)])]))
    replica.writes.update("customer", "c1", {"city": "Paris"})
    [op] = replica.outbox.next_batch(10)
    replica.results.apply([op], [{"op_id": op.op_id, "status": "rejected",
                                         "error": {"code": "scope", "message": "no"}}])
    replica.rejected.discard(op.seq)
    assert replica.get("customer", "c1")["city"] == "Berlin"
    assert replica.outbox.counts()["rejected"] == 0
    assert ("customer", "c1") in replica.refetch.wanted()


def test_customer_360_is_cached_and_invalidated_exactly(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1"), customer_row("c2")]),
                                  upsert("contact", [contact_row("k1", "c1")])]))
    first = replica.reads.customer_360("c1")
    assert first["counts"]["contacts"] == 1
    misses = replica.hot.misses
    replica.reads.customer_360("c1")
    assert replica.hot.misses == misses  # warm
    # A change to another customer leaves c1's entry alone...
    replica.server_apply.apply_page(page([upsert("contact", [contact_row("k2", "c2")])], cursor="2"))
    replica.reads.customer_360("c1")
    assert replica.hot.misses == misses
    # ...a change to c1's contacts (pulled or local) rebuilds it.
    replica.server_apply.apply_page(page([upsert("contact", [contact_row("k3", "c1")])], cursor="3"))
    assert replica.reads.customer_360("c1")["counts"]["contacts"] == 2
    replica.writes.create("contact", {"customer_id": "c1", "name": "Grace"})
    assert replica.reads.customer_360("c1")["counts"]["contacts"] == 3


def test_hot_cache_directory_is_private_and_disposable(replica, tmp_path):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])]))
    replica.reads.customer_360("c1")
    assert stat.S_IMODE(os.stat(tmp_path / "hot").st_mode) == 0o700
    replica.hot.close()
    for f in (tmp_path / "hot").iterdir():
        f.unlink()
    assert replica.reads.customer_360("c1")["customer"]["id"] == "c1"


def test_resync_keeps_pending_and_drops_what_the_snapshot_lacked(replica):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1"), customer_row("c2")])]))
    replica.writes.update("customer", "c2", {"city": "Oslo"})
    replica.server_apply.start_resync()
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=7)])], cursor="S", phase="snapshot"))
    # Until the new snapshot is complete the old data is still there to search.
    assert replica.get("customer", "c2") is not None
    dropped = replica.server_apply.finish_resync()
    assert dropped == 0  # c2 has a pending edit, so it stays
    assert replica.get("customer", "c2")["city"] == "Oslo"
    replica.results.apply(replica.outbox.next_batch(10), [])
    assert len(replica.outbox.pending()) == 1


def test_search_tiers(replica):
    rows = [
        customer_row("c1", name="Smith & Sons", email="info@smithsons.example", phone="+1 (555) 010-2000"),
        customer_row("c2", name="Anna Smithers", company="Globex", email="anna@globex.example"),
        customer_row("c3", name="Blacksmith Ltd", company="Smiley Corp", email="hello@black.example"),
        customer_row("c4", name="Zed", email="zed@zed.example", city="Smolensk"),
    ]
    replica.server_apply.apply_page(page([upsert("customer", rows), upsert("contact", [
        contact_row("k1", "c4", name="John Smith", email="john@zed.example")])]))
    res = replica.search("smi")
    kinds = [(h.id, h.match) for h in res.hits]
    assert kinds[0] == ("c1", "name")  # the name starts with it
    assert ("c2", "name") in kinds and ("k1", "name") in kinds  # a word in the name starts with it
    assert ("c3", "text") in kinds  # the company does
    assert "c4" not in [h.id for h in res.hits]
    assert res.summary == f"{len(res.hits)} matches"  # all shown: nothing more to say
    assert replica.search("anna@globex.example").hits[0] == next(h for h in res.hits if h.id == "c2").__class__(
        "customer", "c2", "c2", "Anna Smithers", "Globex · anna@globex.example · Berlin", "email")
    assert replica.search("555 010 2000").hits[0].id == "c1"
    assert replica.search("0102").hits[0].id == "c1"  # a phone fragment
    assert replica.search("@globex").hits[0].id == "c2"  # an email fragment


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60) | st.sampled_from(
    ['"', '""', 'name:', 'AND', 'OR NOT', '(', ')', '*', 'NEAR(', 'a" OR "b', '{name}:x', '^', '-', 'smi*',
     'NEAR(a b, 3)', '\x00', 'ü', '🙂', "'; DROP TABLE customers; --"]))
def test_any_search_text_is_valid(replica, text):
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", name="Ünal \"Quote\" (Paren)")])]))
    result = replica.search(text)
    assert result.total >= len(result.hits)
    json.dumps([h.__dict__ for h in result.hits])


def _derived(replica):
    return sorted(r[0] for r in replica.conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'"))


def test_bootstrap_builds_indexes_per_table_once_complete_and_search_works(replica, tmp_path):
    fresh = Replica(tmp_path / "fresh.db", tmp_path / "hot-fresh", key=TEST_KEY)
    expected = _derived(fresh)
    fresh.close()
    progress = {"entity": "customer", "done": 2, "total": 4, "complete": ["territory", "user"]}
    replica.server_apply.apply_page({**page([upsert("customer", [customer_row("c1", name="Smith & Co")])],
                                    cursor="s1", has_more=True, phase="snapshot"), "progress": progress})
    assert "ix_customers_name" not in _derived(replica)  # down while customers stream in
    # A save during the bootstrap is searchable once customers are complete.
    replica.writes.create("customer", {"name": "Smithers Local", "territory": "t1"})
    progress = {"entity": "contact", "done": 3, "total": 4, "complete": ["territory", "user", "customer"]}
    replica.server_apply.apply_page({**page([upsert("customer", [customer_row("c2", name="Other")]),
                                     upsert("contact", [contact_row("k1", "c2", name="Jo Smithson")])],
                                    cursor="s2", has_more=True, phase="snapshot"), "progress": progress})
    derived = _derived(replica)
    assert "ix_customers_name" in derived and "customers_fts_ai" in derived
    assert "ix_contacts_name" not in derived
    assert {h.title for h in replica.search("smi").hits} >= {"Smith & Co", "Smithers Local"}
    replica.server_apply.apply_page(page([upsert("contact", [contact_row("k2", "c2")])], cursor="f1", phase="feed"))
    assert _derived(replica) == expected
    assert "Jo Smithson" in {h.title for h in replica.search("smi").hits}
    replica.writes.update("customer", "c2", {"name": "Smirnoff"})
    assert "Smirnoff" in {h.title for h in replica.search("smir").hits}


def test_a_save_while_another_process_holds_the_lock_is_a_clear_error(replica, tmp_path):
    from cache.errors import ReplicaBusy

    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1")])]))
    impatient = Replica(tmp_path / "replica.db", tmp_path / "hot-2", key=TEST_KEY, busy_timeout=0.1)
    replica.conn.execute("BEGIN IMMEDIATE")  # e.g. the sync worker building an index
    try:
        with pytest.raises(ReplicaBusy):
            impatient.writes.update("customer", "c1", {"city": "Oslo"})
    finally:
        replica.conn.execute("ROLLBACK")
    assert impatient.writes.update("customer", "c1", {"city": "Oslo"})["city"] == "Oslo"
    impatient.close()


def test_a_v1_replica_is_migrated_in_place(tmp_path):
    """Schema migrations: a replica written by the first schema (one trigger per table for both
    search indexes) opens under the current one with its data, and search stays current."""
    import sqlite3

    from sqlite_utils import Database

    from cache.schema import _create_v1

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    _create_v1(db)
    for table in ("customers", "contacts"):  # the v1 trigger names
        for suffix in ("fts", "tri"):
            for op in ("ai", "ad", "au"):
                conn.execute(f"DROP TRIGGER {table}_{suffix}_{op}")
    conn.execute("""CREATE TRIGGER customers_search_ai AFTER INSERT ON customers BEGIN
        INSERT INTO customers_fts(rowid, name) VALUES (new.rowid, new.name); END""")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        triggers = {n for (n,) in r.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert "customers_search_ai" not in triggers and {"customers_fts_au", "contacts_tri_au"} <= triggers
        r.server_apply.apply_page(page([upsert("customer", [customer_row("c1", name="Migrated Mary")])]))
        assert [h.id for h in r.search("migrated").hits] == ["c1"]
    finally:
        r.close()


def test_refetches_waiting_in_a_schema_4_replica_are_still_fetched_after_the_upgrade(tmp_path):
    """Schema 5 keeps the records the next sync must fetch again in a table; a replica of
    schema 4 kept them as a JSON list in replica_meta. Requests waiting there when crm-tui is
    upgraded (a discarded rejected edit, a kept customer's history) are still fetched, in the
    order they were made, once each."""
    path = tmp_path / "replica.db"
    Replica(path, tmp_path / "hot").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE refetch")
    wanted = [["customer", "c2"], ["customer-history", "c1"], ["contact", "k1"], ["customer", "c2"]]
    conn.execute("INSERT INTO replica_meta(key, value) VALUES ('refetch', ?)", (json.dumps(wanted),))
    conn.execute("PRAGMA user_version = 4")
    conn.close()
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert r.refetch.wanted() == [("customer", "c2"), ("customer-history", "c1"), ("contact", "k1")]
        assert r.get_meta("refetch") is None
        r.refetch.done([("customer", "c2")])
        r.refetch.request("customer", "c3")
        r.refetch.request("contact", "k1")  # already asked for: fetched once
    finally:
        r.close()
    with Replica(path, tmp_path / "hot") as again:
        assert again.refetch.wanted() == [("customer-history", "c1"), ("contact", "k1"), ("customer", "c3")]


def test_a_replica_from_a_newer_crm_tui_is_refused(tmp_path):
    import sqlite3

    from cache.errors import SchemaTooNew

    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaTooNew):
        Replica(path, tmp_path / "hot")


def test_finished_words_match_whole_words_and_weak_words_are_dropped(replica):
    rows = [
        customer_row("c1", name="Smith & Sons", company="Smith Holdings Ltd"),
        customer_row("c2", name="Anna Smithers", company="Globex Ltd"),
        customer_row("c3", name="Zed", company="Zed Ltd"),
    ]
    replica.server_apply.apply_page(page([upsert("customer", rows)]))
    assert {h.id for h in replica.search("smith").hits} == {"c1", "c2"}  # still typing: a prefix
    assert {h.id for h in replica.search("smith ").hits} == {"c1"}  # a finished word: whole
    assert {h.id for h in replica.search("smith sons").hits} == {"c1"}
    # "ltd" is in every company: dropped when other words say more, kept when alone.
    assert [h.id for h in replica.search("globex ltd").hits] == ["c2"]
    assert replica.search("ltd").total == 3


def test_an_email_or_phone_search_skips_the_word_index(replica):
    rows = [customer_row("c1", email="info@acme.example", phone="+49 30 1234567"),
            customer_row("c2", email="sales@acme.example", phone="+49 40 7654321")]
    replica.server_apply.apply_page(page([upsert("customer", rows)]))
    res = replica.search("info@acme.example")
    assert [(h.id, h.match) for h in res.hits] == [("c1", "email")]
    res = replica.search("+49 40 7654321")
    assert [(h.id, h.match) for h in res.hits] == [("c2", "phone")]
    assert [h.id for h in replica.search("@acme").hits] == ["c1", "c2"]


def test_a_record_restored_by_discarding_a_rejected_delete_outlives_a_resync_under_way(replica):
    """Both ways of inserting a row stamp it with the sync generation: a record put back by a
    discard during a replacement sync is not swept as if the new snapshot lacked it."""
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c1", version=5), customer_row("c2")])]))
    replica.writes.delete("customer", "c1")
    [op] = replica.outbox.next_batch(10)
    replica.results.apply([op], [{"op_id": op.op_id, "status": "rejected",
                                         "error": {"code": "forbidden", "message": "no"}}])
    replica.server_apply.start_resync()
    replica.server_apply.apply_page(page([upsert("customer", [customer_row("c2")])], cursor="S", phase="snapshot"))
    replica.rejected.discard(op.seq)
    assert replica.get("customer", "c1") is not None
    replica.server_apply.finish_resync()
    assert replica.get("customer", "c1")["version"] == 5
