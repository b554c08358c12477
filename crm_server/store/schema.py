"""The SQLite schema, generated from the domain model.

One table per entity: the domain columns, a denormalised ``territory`` on customer-attached
tables (scope filtering must not join), ``version`` and ``field_versions`` (JSON: field -> seq of
its last change; NULL when no field changed since the record was created). Tables are clustered
by id (WITHOUT ROWID) because every read pages through them by id.
"""

from __future__ import annotations

from crm_tui.domain import ENTITIES, Entity

SCHEMA_VERSION = 1

# Entities whose records belong to a territory (and so to a sales rep's scope).
def is_scoped(ent: Entity) -> bool:
    """True for customers and the records attached to them."""
    return ent.anchor is not None


def q(name: str) -> str:
    """Quote an identifier (``order`` is a keyword)."""
    return '"' + name + '"'


def entity_table_sql(ent: Entity) -> str:
    """The CREATE TABLE statement of an entity."""
    cols = ['"id" TEXT PRIMARY KEY NOT NULL']
    cols += [f"{q(f.name)} {f.sql_type}" for f in ent.fields]
    if ent.anchor == "customer_id":
        cols.append('"territory" TEXT')
    cols += ['"version" INTEGER NOT NULL', '"field_versions" TEXT']
    return f"CREATE TABLE IF NOT EXISTS {q(ent.table)} ({', '.join(cols)}) WITHOUT ROWID"


def entity_indexes(ent: Entity) -> list[tuple[str, str]]:
    """(index name, CREATE INDEX statement) for an entity table's secondary indexes."""
    out = []
    t = ent.table
    if is_scoped(ent):
        out.append((f"{t}_territory", f'CREATE INDEX IF NOT EXISTS {q(t + "_territory")} ON {q(t)} (territory, id)'))
    if ent.anchor == "customer_id":
        out.append((f"{t}_customer", f'CREATE INDEX IF NOT EXISTS {q(t + "_customer")} ON {q(t)} (customer_id, id)'))
    if ent.name in ("customer", "contact"):
        out.append((f"{t}_email", f'CREATE INDEX IF NOT EXISTS {q(t + "_email")} ON {q(t)} (email)'))
    return out


BASE_SQL = [
    # kind: upsert | delete (one row per record: its latest change) | move (append-only)
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        territory TEXT,
        old_territory TEXT
    )""",
    # Tombstones are looked up by record (update/create of a deleted id); they are few.
    "CREATE INDEX IF NOT EXISTS changes_tombstones ON changes (entity, record_id) WHERE kind = 'delete'",
    """CREATE TABLE IF NOT EXISTS op_results (
        op_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        result TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS tokens (
        hash TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_id)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID",
    # Each write transaction (by its last seq): when it committed, for `compact --keep-days`, and
    # a random nonce that cursors carry, so a database restored from an older copy is detected.
    "CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, nonce TEXT)",
]


def all_ddl() -> list[str]:
    """Every CREATE statement, tables before the indexes on them."""
    stmts = [entity_table_sql(e) for e in ENTITIES.values()]
    stmts += BASE_SQL
    for e in ENTITIES.values():
        stmts += [sql for _, sql in entity_indexes(e)]
    return stmts


def select_columns(ent: Entity) -> str:
    """The column list that reads a record in wire order (``ent.columns``)."""
    return ", ".join(q(c) for c in ent.columns)


def json_row_expr(ent: Entity) -> str:
    """An SQL expression building the JSON array of a row in wire order, inside SQLite.

    Booleans become true/false and tag lists are embedded as arrays, so the rows need no work in
    Python before they go on the wire.
    """
    parts = []
    for c in ent.columns:
        f = ent.by_name.get(c)
        if f is not None and f.kind == "bool":
            parts.append(f"CASE {q(c)} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END")
        elif f is not None and f.kind == "tags":
            parts.append(f"json({q(c)})")
        else:
            parts.append(q(c))
    return "json_array(" + ", ".join(parts) + ")"
