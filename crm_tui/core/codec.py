"""Booleans and tag lists between the wire (JSON), Python and SQLite: one codec for the replica
(cache/) and the server's SQLite store.

On the wire and in Python a boolean is ``True``/``False`` and tags are a list of strings; an SQLite
column stores a boolean as 0/1 and tags as JSON text. ``None`` stays ``None`` both ways.
(PostgreSQL keeps both natively: ``crm_server/store/pg_tx.py`` hands psycopg a bool and Jsonb.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from crm_tui.core.domain import ENTITIES, Entity

# A boolean (or a missing one) as SQLite stores it; a dict, so a long column maps in one pass.
SQL_BOOL: dict[bool | None, int | None] = {True: 1, False: 0, None: None}


def tags_to_sql(tags: Sequence[str]) -> str:
    """A tag list as the JSON text its SQLite column stores."""
    return orjson.dumps(list(tags)).decode()


def tags_from_sql(text: str | bytes) -> list[str]:
    """The tag list a stored JSON text holds."""
    tags: list[str] = orjson.loads(text)
    return tags


def encode_value(kind: str, value: Any) -> Any:
    """A wire value of a field of ``kind`` as stored in SQLite (tags as JSON text, booleans as 0/1)."""
    if value is None:
        return None
    if kind == "tags":
        return tags_to_sql(value)
    if kind == "bool":
        return 1 if value else 0
    return value


def decode_value(kind: str, value: Any) -> Any:
    """A stored SQLite value of a field of ``kind`` as a wire value."""
    if value is None:
        return None
    if kind == "tags" and isinstance(value, str):
        return tags_from_sql(value)
    if kind == "bool":
        return bool(value)
    return value


class RecordCodec:
    """Converts one entity's stored rows to wire records, and wire values to stored ones;
    built once per entity (``codec_for``)."""

    def __init__(self, ent: Entity) -> None:
        self.columns = ent.columns
        self.kinds = {f.name: f.kind for f in ent.fields}
        self.bools = tuple(i for i, c in enumerate(ent.columns) if self.kinds.get(c) == "bool")
        self.tags = tuple(i for i, c in enumerate(ent.columns) if self.kinds.get(c) == "tags")

    def to_wire(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row in ``columns`` order -> the wire record (a dict)."""
        values = list(row)
        for i in self.bools:
            if values[i] is not None:
                values[i] = bool(values[i])
        for i in self.tags:
            if values[i] is not None:
                values[i] = tags_from_sql(values[i])
        return dict(zip(self.columns, values, strict=True))

    def to_sql(self, name: str, value: Any) -> Any:
        """One wire value of field ``name`` -> the value stored in its column."""
        return encode_value(self.kinds.get(name, ""), value)


_CODECS = {name: RecordCodec(e) for name, e in ENTITIES.items()}


def codec_for(ent: Entity) -> RecordCodec:
    """The codec of an entity (built once: entities are immutable)."""
    return _CODECS[ent.name]
