"""The server's schema, generated from the domain model for both backends.

One table per entity: the domain columns, a denormalised ``territory`` on customer-attached
tables (scope filtering must not join), ``version`` and ``field_versions`` (field -> seq of its
last change; NULL when no field changed since the record was created). Indexes come from the
same model: one per list filter the API offers (:func:`filter_fields`), by territory for scoped
entities, by customer for attached ones. Backend-specific tables (typed store info, counters,
commit bookkeeping) live next to each backend: ``sqlite_schema.py`` and ``pg_schema.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_tui.core.domain import ENTITIES, Entity, Field

# The order partitioned by month on PostgreSQL, and the date column it is partitioned on.
PARTITIONED = {"order": "order_date"}


def is_scoped(ent: Entity) -> bool:
    """True for customers and the records attached to them."""
    return ent.anchor is not None


def q(name: str) -> str:
    """Quote an identifier (``order`` is a keyword)."""
    return '"' + name + '"'


def filter_fields(ent: Entity) -> tuple[Field, ...]:
    """The fields a list may be filtered on: enums and references, and email on people."""
    return tuple(
        f for f in ent.fields if f.kind in ("enum", "ref") or (f.name == "email" and ent.name in ("customer", "contact"))
    )


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A secondary index: the same on both backends (PostgreSQL creates it on every partition)."""

    name: str
    table: str
    columns: tuple[str, ...]
    where: str | None = None
    unique: bool = False

    def sql(self) -> str:
        unique = "UNIQUE " if self.unique else ""
        where = f" WHERE {self.where}" if self.where else ""
        cols = ", ".join(q(c) for c in self.columns)
        return f"CREATE {unique}INDEX IF NOT EXISTS {q(self.name)} ON {q(self.table)} ({cols}){where}"


def entity_indexes(ent: Entity) -> list[IndexSpec]:
    """The secondary indexes of an entity table: every list the API offers reads one of them.

    * scoped entities: ``(territory, id)`` (a rep's snapshot and lists, one range per territory);
    * attached entities: ``(customer_id, id)`` (a customer's records);
    * every other filter field: ``(field, id)``; for an enum of a scoped entity also
      ``(territory, field, id)``, so a rep's filtered list reads only their territories.
    """
    t = ent.table
    out = []
    if is_scoped(ent):
        out.append(IndexSpec(f"{t}_territory", t, ("territory", "id")))
    if ent.anchor == "customer_id":
        out.append(IndexSpec(f"{t}_customer", t, ("customer_id", "id")))
    for f in filter_fields(ent):
        if f.name in ("customer_id", "territory"):
            continue
        out.append(IndexSpec(f"{t}_{f.name}", t, (f.name, "id")))
        if is_scoped(ent) and f.kind == "enum":
            out.append(IndexSpec(f"{t}_territory_{f.name}", t, ("territory", f.name, "id")))
    if ent.name in PARTITIONED:
        date = PARTITIONED[ent.name]
        # A customer's recent orders, newest first; revenue by month over a date range.
        out.append(IndexSpec(f"{t}_customer_date", t, ("customer_id", date)))
        out.append(IndexSpec(f"{t}_date", t, (date,)))
    return out


def all_entity_indexes() -> list[IndexSpec]:
    """The secondary indexes of every entity table."""
    return [ix for e in ENTITIES.values() for ix in entity_indexes(e)]


def writable_columns(ent: Entity) -> list[str]:
    """The stored columns of an entity except ``version`` and ``field_versions``, in the order the
    bulk loader receives them (wire order, then ``territory`` for attached records)."""
    names = [c for c in ent.columns if c != "version"]
    if ent.anchor == "customer_id":
        names.append("territory")
    return names


def select_columns(ent: Entity) -> str:
    """The column list that reads a record in wire order (``ent.columns``)."""
    return ", ".join(q(c) for c in ent.columns)
