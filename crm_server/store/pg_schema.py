"""The PostgreSQL schema: entity tables from the domain model with native types, orders
partitioned by month, the change log keyed by writing transaction, and migrations.

Types: text for strings, enums, references and date-times (their wire form sorts in time
order); ``date`` for dates; ``bigint`` for integers and money; ``boolean``; ``jsonb`` for tags
and per-field versions.

Orders are range-partitioned on ``order_date``, one partition per month, made ahead of time
(:data:`MONTHS_BACK` .. :data:`MONTHS_AHEAD` around today, by every :meth:`Store.maintain`; the
bulk loader makes those of the months it loads). An order dated outside them lands in
``orders_default`` and maintenance moves it into a partition of its own month.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from crm_server.store import tokens
from crm_server.store.base import StoreError
from crm_server.store.gateway_pg import PG_GATEWAY_DDL
from crm_server.store.migrations import MIGRATIONS, Migration, SchemaEditor, upgrade
from crm_server.store.schema import PARTITIONED, IndexSpec, entity_indexes, q
from crm_tui.core.domain import ENTITIES, Entity, Field

PG_TYPES = {
    "str": "text", "text": "text", "enum": "text", "ref": "text", "datetime": "text",
    "date": "date", "int": "bigint", "money": "bigint", "bool": "boolean", "tags": "jsonb",
}
MONTHS_BACK = 1
MONTHS_AHEAD = 12
# Serialises schema changes and partition maintenance between server processes.
SCHEMA_LOCK = 0x63726D01

BASE_SQL = [
    "CREATE SEQUENCE IF NOT EXISTS change_seq",
    "CREATE SEQUENCE IF NOT EXISTS ticket_number",
    "CREATE SEQUENCE IF NOT EXISTS order_number",
    # kind: upsert | delete (one row per record: its latest change) | move (append-only).
    # xid: the writing transaction (pg_current_xact_id); the feed's order is (xid, seq).
    """CREATE TABLE IF NOT EXISTS changes (
        seq bigint PRIMARY KEY,
        xid bigint NOT NULL,
        entity text NOT NULL,
        record_id text NOT NULL,
        kind text NOT NULL,
        territory text,
        old_territory text,
        part_date date
    )""",
    """CREATE TABLE IF NOT EXISTS op_results (
        op_id text PRIMARY KEY,
        user_id text NOT NULL,
        entity text NOT NULL,
        record_id text NOT NULL,
        result jsonb NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS tokens (
        hash text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at text NOT NULL,
        expires_at bigint,
        lifetime bigint,
        revoked_device text
    )""",
    # Write transactions in commit order (the clock is taken just before COMMIT): when each
    # committed, and a nonce cursors carry, so a database restored from an older copy is detected.
    """CREATE TABLE IF NOT EXISTS commits (
        n bigint PRIMARY KEY,
        xid bigint NOT NULL,
        at timestamptz NOT NULL,
        nonce text NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS commit_clock (id int PRIMARY KEY CHECK (id = 1), n bigint NOT NULL)",
    """CREATE TABLE IF NOT EXISTS store_info (
        id int PRIMARY KEY CHECK (id = 1),
        schema_version int NOT NULL,
        epoch text NOT NULL,
        cursor_key bytea NOT NULL,
        horizon_tx bigint NOT NULL,
        horizon_seq bigint NOT NULL,
        commits_purged_through bigint NOT NULL
    )""",
    # Rate-limit buckets: not worth a WAL record (a crash just refills them).
    """CREATE UNLOGGED TABLE IF NOT EXISTS rate_buckets (
        key text PRIMARY KEY,
        tokens double precision NOT NULL,
        at double precision NOT NULL,
        ok boolean NOT NULL
    )""",
]

BASE_INDEXES = [
    IndexSpec("changes_pos", "changes", ("xid", "seq")),
    IndexSpec("changes_record", "changes", ("entity", "record_id"), where="kind <> 'move'", unique=True),
    IndexSpec("changes_territory", "changes", ("territory", "xid", "seq")),
    IndexSpec("changes_moves", "changes", ("old_territory", "xid", "seq"), where="kind = 'move'"),
    IndexSpec("op_results_at", "op_results", ("at",)),
    IndexSpec("tokens_user", "tokens", ("user_id",)),
    IndexSpec("commits_at", "commits", ("at",)),
]


def column_sql(f: Field) -> str:
    return f"{q(f.name)} {PG_TYPES[f.kind]}"


def entity_table_sql(ent: Entity) -> str:
    """The CREATE TABLE statement of an entity (partitioned by month for orders)."""
    key = PARTITIONED.get(ent.name)
    cols = ['"id" text NOT NULL']
    cols += [column_sql(f) + (" NOT NULL" if f.name == key else "") for f in ent.fields]
    if ent.anchor == "customer_id":
        cols.append('"territory" text')
    cols += ['"version" bigint NOT NULL', '"field_versions" jsonb']
    if key:
        # The primary key of a partitioned table must hold the partition key; ids stay unique
        # across partitions through the change log's unique (entity, record_id).
        cols.append(f'PRIMARY KEY ("id", {q(key)})')
        return f"CREATE TABLE IF NOT EXISTS {q(ent.table)} ({', '.join(cols)}) PARTITION BY RANGE ({q(key)})"
    cols[0] += " PRIMARY KEY"
    return f"CREATE TABLE IF NOT EXISTS {q(ent.table)} ({', '.join(cols)})"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_{month:%Y_%m}"


def existing_partitions(conn: Any, table: str) -> set[str]:
    """Names of the partitions attached to ``table``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def ensure_partition(conn: Any, ent: Entity, month: dt.date, existing: set[str]) -> tuple[bool, int]:
    """Make the partition of ``month`` if missing; rows of that month waiting in the default
    partition move into it. Returns (created, rows moved)."""
    table, key = ent.table, PARTITIONED[ent.name]
    name = partition_name(table, month)
    if name in existing:
        return False, 0
    lo, hi = month, add_months(month, 1)
    default = table + "_default"
    moved = conn.execute(
        f"SELECT count(*) FROM {q(default)} WHERE {q(key)} >= %s AND {q(key)} < %s", (lo, hi)
    ).fetchone()[0]
    if moved:
        # A new partition may not overlap rows of the default one: take them out first, attach
        # the filled table (its indexes are made to match the parent's on attach).
        conn.execute(f"CREATE TABLE {q(name)} (LIKE {q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        conn.execute(
            f"WITH gone AS (DELETE FROM {q(default)} WHERE {q(key)} >= %s AND {q(key)} < %s RETURNING *)"
            f" INSERT INTO {q(name)} SELECT * FROM gone",
            (lo, hi),
        )
        conn.execute(f"ALTER TABLE {q(table)} ATTACH PARTITION {q(name)} FOR VALUES FROM ('{lo}') TO ('{hi}')")
    else:
        conn.execute(f"CREATE TABLE {q(name)} PARTITION OF {q(table)} FOR VALUES FROM ('{lo}') TO ('{hi}')")
    existing.add(name)
    return True, int(moved)


def maintain_partitions(conn: Any, today: dt.date) -> tuple[list[str], int]:
    """Partitions for every month from MONTHS_BACK before ``today`` to MONTHS_AHEAD after it,
    and for every month that has rows in the default partition. Returns (created, rows moved)."""
    created: list[str] = []
    moved = 0
    for name in PARTITIONED:
        ent = ENTITIES[name]
        key = PARTITIONED[name]
        existing = existing_partitions(conn, ent.table)
        first = add_months(month_start(today), -MONTHS_BACK)
        months = [add_months(first, i) for i in range(MONTHS_BACK + MONTHS_AHEAD + 1)]
        stray = conn.execute(
            f"SELECT DISTINCT date_trunc('month', {q(key)})::date FROM {q(ent.table + '_default')}"
        ).fetchall()
        months += [r[0] for r in stray]
        for month in sorted(set(months)):
            made, n = ensure_partition(conn, ent, month, existing)
            if made:
                created.append(partition_name(ent.table, month))
            moved += n
    return created, moved


def create_entity(conn: Any, ent: Entity) -> None:
    conn.execute(entity_table_sql(ent))
    if ent.name in PARTITIONED:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {q(ent.table + '_default')} PARTITION OF {q(ent.table)} DEFAULT")
    for ix in entity_indexes(ent):
        conn.execute(ix.sql())


class PgSchemaEditor(SchemaEditor):
    """Runs migrations on one connection inside the opening transaction."""

    backend = "postgresql"
    sql_set_version = "UPDATE store_info SET schema_version = %s"

    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def create_entity(self, ent: Entity) -> None:
        create_entity(self.conn, ent)

    def add_field(self, ent: Entity, f: Field) -> None:
        self.conn.execute(f"ALTER TABLE {q(ent.table)} ADD COLUMN IF NOT EXISTS {column_sql(f)}")
        for ix in entity_indexes(ent):
            if f.name in ix.columns:  # the field's own indexes (others may need fields added later)
                self.conn.execute(ix.sql())

    def upgrade_first_release(self) -> None:
        raise StoreError("PostgreSQL databases start at schema version 2; there is no version 1 to upgrade")


def create_or_upgrade(conn: Any, today: dt.date, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Create the schema in an empty database or migrate an older one, inside the caller's
    transaction (which holds the schema lock). Returns the version it had (0 for a new one)."""
    has_info = conn.execute("SELECT to_regclass('store_info') IS NOT NULL").fetchone()[0]
    if has_info:
        version = int(conn.execute("SELECT schema_version FROM store_info").fetchone()[0])
        try:
            upgrade(version, PgSchemaEditor(conn), migrations)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        return version
    if conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()[0]:
        raise StoreError("this database holds tables that are not a crm-server database; use an empty one")
    for ent in ENTITIES.values():
        create_entity(conn, ent)
    for stmt in BASE_SQL + tokens.PG_DDL + PG_GATEWAY_DDL:
        conn.execute(stmt)
    for ix in BASE_INDEXES:
        conn.execute(ix.sql())
    conn.execute("INSERT INTO commit_clock VALUES (1, 0)")
    conn.execute(
        "INSERT INTO store_info VALUES (1, %s, %s, %s, 0, 0, 0)",
        (migrations[-1].version, secrets.token_hex(8), secrets.token_bytes(32)),
    )
    maintain_partitions(conn, today)
    return 0


def json_row_expr(ent: Entity) -> str:
    """An SQL expression building the JSON text of a row in wire order, inside PostgreSQL."""
    parts = []
    for c in ent.columns:
        f = ent.by_name.get(c)
        if f is not None and f.kind == "date":
            parts.append(f"to_char({q(c)}, 'YYYY-MM-DD')")
        else:
            parts.append(q(c))
    return "json_build_array(" + ", ".join(parts) + ")::text"
