"""Schema migrations upgrade a database in place, keeping its data and its behaviour.

``data/first_release.db`` was made by the first release's own code (``data/make_first_release.py``,
schema version 1: a key/value ``meta`` table, signed readable cursors). Opening it with this
server upgrades it; then everything a client relies on still holds. And a migration added for a
new field or entity gives an existing database exactly the schema a new one gets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import sqlite3
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from crm_server.auth import token_hash
from crm_server.batch import apply_batch
from crm_server.errors import ResyncRequired
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.store import open_store, pg_schema, sqlite_schema
from crm_server.store.migrations import LATEST, MIGRATIONS, Migration, add_entity, add_field
from crm_tui.core import domain
from crm_tui.core.domain import ENTITIES

DATA = Path(__file__).parent / "data"
FIRST = orjson.loads((DATA / "first_release.json").read_bytes())


@pytest.fixture
def upgraded(tmp_path):
    path = tmp_path / "first.db"
    shutil.copy(DATA / "first_release.db", path)
    store = open_store(path)
    yield store, path
    store.close()


def sqlite_schema_of(path) -> dict:
    """Tables (their columns, in any order: every statement names its columns) and indexes (their
    definitions) of a SQLite database; SQLite's own statistics tables left out."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'")]
        out = {t: sorted(tuple(c[1:]) for c in conn.execute(f'PRAGMA table_info("{t}")')) for t in tables}
        indexes = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
                               " AND sql IS NOT NULL").fetchall()
        out["indexes"] = sorted(
            (name, table, tuple(c[2] for c in conn.execute(f'PRAGMA index_info("{name}")')), sql.startswith("CREATE UNIQUE"),
             sql.partition(" WHERE ")[2].replace('"', ""))
            for name, table, sql in indexes)
        return out
    finally:
        conn.close()


def test_the_first_release_database_is_upgraded_with_every_record_kept(upgraded):
    store, path = upgraded
    assert store.opened_at_version == 1
    with store.read() as tx:
        for ent in ENTITIES.values():
            records = tx.list_records(ent, after=None, limit=100_000, filters={}, territories=None)
            old = FIRST["records"].get(ent.name, [])
            # Every value the first release stored is kept; fields and entities added since are empty.
            assert [{k: r[k] for k in o} for r, o in zip(records, old, strict=True)] == old, ent.name
            assert all(v is None for r, o in zip(records, old, strict=True) for k, v in r.items() if k not in o)
        assert tx.tombstone(ENTITIES["contact"], FIRST["deleted_contact"]) is not None
        for name, token in FIRST["tokens"].items():
            assert tx.user_id_for_token(token_hash(token)) == name
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT schema_version FROM store_info").fetchone()[0] == LATEST
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
    finally:
        conn.close()


def test_the_upgraded_schema_is_exactly_a_new_databases(upgraded, tmp_path):
    _, path = upgraded
    fresh = open_store(tmp_path / "fresh.db")
    fresh.close()
    assert sqlite_schema_of(path) == sqlite_schema_of(tmp_path / "fresh.db")


def test_the_upgraded_database_behaves(upgraded):
    store, _ = upgraded
    before = FIRST["records"]
    # Idempotent replays of ops applied before the upgrade: the stored result, nothing changed.
    (replayed,) = apply_batch(store, SYSTEM.id, [{"op_id": "fr-ticket", "op": "create", "entity": "ticket",
                                                  "id": "fr-ticket", "fields": {"subject": "x"}}])
    assert replayed["replayed"] and replayed["version"] == FIRST["results"][3]["version"]
    # Ids of deleted records stay taken; server numbers and versions continue after the old ones.
    gone = FIRST["deleted_contact"]
    customer = before["customer"][0]
    results = apply_batch(store, SYSTEM.id, [
        {"op_id": "up-1", "op": "create", "entity": "contact", "id": gone, "fields": {"customer_id": customer["id"], "name": "X"}},
        {"op_id": "up-2", "op": "create", "entity": "ticket", "id": "after-upgrade",
         "fields": {"customer_id": customer["id"], "subject": "After", "status": "new", "priority": "low"}},
        {"op_id": "up-3", "op": "update", "entity": "customer", "id": customer["id"], "base_version": customer["version"],
         "fields": {"city": "Upgraded"}},
    ])
    assert results[0]["status"] == "rejected" and results[0]["error"]["code"] == "exists"
    assert results[1]["record"]["number"] == max(t["number"] for t in before["ticket"]) + 1
    highest = max(r["version"] for records in before.values() for r in records)
    assert results[1]["version"] > highest and results[2]["status"] == "applied"
    # A cursor of the first release: resync (the server cannot read it any more), never 400.
    with pytest.raises(ResyncRequired):
        pull_changes(store, "sam", FIRST["sam_cursor"], 100)
    # A new replica of the rep: exactly the upgraded database's dach and benelux records.
    cursor, got = None, {}
    while True:
        page = orjson.loads(pull_changes(store, "sam", cursor, 100))
        for seg in page["segments"]:
            if seg["op"] == "upsert":
                got.setdefault(seg["entity"], set()).update(row[0] for row in seg["rows"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    with store.read() as tx:
        mine = {c["id"] for c in tx.list_records(ENTITIES["customer"], after=None, limit=1000, filters={},
                                                 territories=["dach", "benelux"])}
    assert got["customer"] == mine


# ---------------------------------------------------------------------- the one-line step


EXTRA = (
    Migration(LATEST + 1, "deals name their next step", add_field("deal", "next_step")),
    Migration(LATEST + 2, "chores", add_entity("chore")),
)


@pytest.fixture
def grown_domain(monkeypatch):
    """The domain model with a new field and a new entity, as another engineer would add them."""
    deal = ENTITIES["deal"]
    step = domain.Field(name="next_step", kind="enum", label="Next step", choices=("call", "visit"))
    monkeypatch.setitem(ENTITIES, "deal", dataclasses.replace(deal, fields=(*deal.fields, step)))
    chore = domain.Entity("chore", "chores", "Chore", (
        domain.Field(name="customer_id", kind="ref", label="Customer", required=True, ref="customer"),
        domain.Field(name="title", kind="str", label="Title", required=True),
        domain.Field(name="done", kind="bool", label="Done"),
        domain.Field(name="due", kind="date", label="Due"),
    ), anchor="customer_id")
    monkeypatch.setitem(ENTITIES, "chore", chore)


def _open_raw(backend: str, target: str, migrations) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            sqlite_schema.create_or_upgrade(conn, migrations)
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("BEGIN")
            pg_schema.create_or_upgrade(conn, dt.date.today(), migrations)
            conn.execute("COMMIT")


def _schema(backend: str, target: str) -> dict:
    if backend == "sqlite":
        return sqlite_schema_of(target)
    with psycopg.connect(target) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, column_name").fetchall()
        indexes = conn.execute("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                               " ORDER BY tablename, indexname").fetchall()
        version = conn.execute("SELECT schema_version FROM store_info").fetchone()[0]
    return {"columns": columns, "indexes": indexes, "version": version}


def test_a_new_field_and_entity_are_one_line_migrations(backend, store_target, tmp_path, request):
    _open_raw(backend, store_target, MIGRATIONS)  # an existing database of today's schema
    fresh = str(tmp_path / "fresh.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    request.getfixturevalue("grown_domain")
    _open_raw(backend, store_target, (*MIGRATIONS, *EXTRA))  # upgraded in place
    _open_raw(backend, fresh, (*MIGRATIONS, *EXTRA))  # made new from the grown domain
    upgraded, made = _schema(backend, store_target), _schema(backend, fresh)
    assert upgraded == made
    text = repr(upgraded)
    assert "next_step" in text and "chores" in text and "chores_customer" in text


def _before_order_history(backend: str) -> list[str]:
    """Statements that take today's schema back to version 5: no order history, no call outcomes,
    no lost reasons (SQLite drops a column only after its indexes)."""
    indexes = [f"DROP INDEX {n}" for n in ("activities_outcome", "activities_territory_outcome", "activities_contact_id")]
    indexes = indexes if backend == "sqlite" else []
    return [*indexes, "DROP TABLE order_events", "ALTER TABLE deals DROP COLUMN lost_reason",
            *(f"ALTER TABLE activities DROP COLUMN {c}" for c in ("outcome", "duration_min", "contact_id"))]


def _as_version_2(backend: str, target: str) -> None:
    """Turn a database of today's schema into one as the release before token expiry made it:
    tokens without expiry, no device tables (no gateway tables on PostgreSQL), no tasks, schema
    version 2."""
    statements = ["DROP TABLE device_tokens", "DROP TABLE devices", "DROP TABLE tasks",
                  *(f"ALTER TABLE tokens DROP COLUMN {c}" for c in ("expires_at", "lifetime", "revoked_device")),
                  *_before_order_history(backend), "UPDATE store_info SET schema_version = 2"]
    if backend == "sqlite":
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            for stmt in statements:
                conn.execute(stmt)
        finally:
            conn.close()
    else:
        # ... and on PostgreSQL no gateway tables (SQLite has had them since version 2).
        statements += ["DROP TABLE gateway_links", "DROP TABLE gateway_ledger", "DROP TABLE gateway_meta"]
        with psycopg.connect(target, autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)


def test_a_version_2_database_gets_token_expiry_devices_gateway_tables_and_tasks(backend, store_target, tmp_path,
                                                                                request):
    _open_raw(backend, store_target, MIGRATIONS)
    store = open_store(store_target)
    try:
        apply_batch(store, SYSTEM.id, [{"op_id": "u1", "op": "create", "entity": "user", "id": "old-timer",
                                        "fields": {"name": "Old Timer", "role": "agent", "active": True}}])
    finally:
        store.close()
    _as_version_2(backend, store_target)
    old = "crm_an-old-token"
    if backend == "sqlite":
        conn = sqlite3.connect(store_target, isolation_level=None)
        conn.execute("INSERT INTO tokens (hash, user_id, created_at) VALUES (?, 'old-timer', '2026-01-01T00:00:00Z')",
                     (token_hash(old),))
        conn.close()
    else:
        with psycopg.connect(store_target, autocommit=True) as conn:
            conn.execute("INSERT INTO tokens (hash, user_id, created_at) VALUES (%s, 'old-timer', '2026-01-01T00:00:00Z')",
                         (token_hash(old),))
    fresh = str(tmp_path / "fresh.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    _open_raw(backend, store_target, MIGRATIONS)
    _open_raw(backend, fresh, MIGRATIONS)
    assert _schema(backend, store_target) == _schema(backend, fresh)
    store = open_store(store_target)
    try:
        with store.read() as tx:
            info = tx.token_info(token_hash(old))
    finally:
        store.close()
    assert info.user_id == "old-timer" and info.lifetime == 90 * 86400
    assert 89.9 * 86400 < info.expires_at - time.time() <= 90 * 86400, "old tokens expire 90 days after the upgrade"


def test_a_version_5_database_gets_order_history_call_outcomes_and_lost_reasons(backend, store_target, tmp_path,
                                                                                  request):
    """The release before order history: no order_events table, no outcome, duration or contact on
    activities, no lost reason on deals. Upgraded in place, its schema is a new database's, and
    its deals and activities keep their values."""
    _open_raw(backend, store_target, MIGRATIONS)
    store = open_store(store_target)
    try:
        apply_batch(store, SYSTEM.id, [
            {"op_id": "t1", "op": "create", "entity": "territory", "id": "dach", "fields": {"name": "DACH"}},
            {"op_id": "c1", "op": "create", "entity": "customer", "id": "c1", "fields": {"name": "Old", "territory": "dach"}},
            {"op_id": "d1", "op": "create", "entity": "deal", "id": "d1",
             "fields": {"customer_id": "c1", "title": "Old deal", "stage": "proposal"}},
        ])
    finally:
        store.close()
    statements = [*_before_order_history(backend), "UPDATE store_info SET schema_version = 5"]
    if backend == "sqlite":
        conn = sqlite3.connect(store_target, isolation_level=None)
        try:
            for stmt in statements:
                conn.execute(stmt)
        finally:
            conn.close()
    else:
        with psycopg.connect(store_target, autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)
    fresh = str(tmp_path / "fresh.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    _open_raw(backend, store_target, MIGRATIONS)
    _open_raw(backend, fresh, MIGRATIONS)
    assert _schema(backend, store_target) == _schema(backend, fresh)
    store = open_store(store_target)
    try:
        (lost,) = apply_batch(store, SYSTEM.id, [
            {"op_id": "d2", "op": "update", "entity": "deal", "id": "d1", "base_version": 0,
             "fields": {"stage": "lost", "close_date": "2026-11-30", "lost_reason": "Went with a competitor"}}])
    finally:
        store.close()
    assert lost["record"]["title"] == "Old deal" and lost["record"]["lost_reason"] == "Went with a competitor"


def test_a_version_6_postgresql_database_gets_order_dates_in_its_change_log(postgres_url, tmp_path, request):
    """The release before the change log carried order dates: upgraded in place, its schema is a
    new database's, and the change rows of its orders get their orders' dates (what lets a feed
    page read an order from its month's partition only: tests/server/test_partitions.py)."""
    _open_raw("postgresql", postgres_url, MIGRATIONS)
    store = open_store(postgres_url)
    try:
        apply_batch(store, SYSTEM.id, [
            {"op_id": "t1", "op": "create", "entity": "territory", "id": "dach", "fields": {"name": "DACH"}},
            {"op_id": "c1", "op": "create", "entity": "customer", "id": "c1", "fields": {"name": "Old", "territory": "dach"}},
            {"op_id": "o1", "op": "create", "entity": "order", "id": "o1",
             "fields": {"customer_id": "c1", "order_date": "2026-06-15", "amount": 700, "currency": "EUR",
                        "status": "paid"}},
        ])
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE changes DROP COLUMN part_date")
        conn.execute("UPDATE store_info SET schema_version = 6")
    fresh = request.getfixturevalue("postgres").create_database()
    _open_raw("postgresql", postgres_url, MIGRATIONS)
    _open_raw("postgresql", fresh, MIGRATIONS)
    assert _schema("postgresql", postgres_url) == _schema("postgresql", fresh)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        dates = conn.execute("SELECT entity, part_date FROM changes WHERE kind = 'upsert' ORDER BY seq").fetchall()
    assert dates == [("territory", None), ("customer", None), ("order", dt.date(2026, 6, 15)), ("order_event", None)]
    assert _schema("postgresql", postgres_url)["version"] == LATEST == 7
