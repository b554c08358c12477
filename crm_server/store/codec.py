"""Between wire values and SQLite values: booleans are 0/1, tag lists are JSON text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from crm_tui.core.domain import ENTITIES, Entity


class RecordCodec:
    """Converts one entity's rows; built once per entity."""

    def __init__(self, ent: Entity):
        self.columns = ent.columns
        self.bools = tuple(i for i, c in enumerate(ent.columns) if c in ent.by_name and ent.by_name[c].kind == "bool")
        self.tags = tuple(i for i, c in enumerate(ent.columns) if c in ent.by_name and ent.by_name[c].kind == "tags")
        self.kinds = {f.name: f.kind for f in ent.fields}

    def to_wire(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row in ``columns`` order -> the wire record (a dict)."""
        values = list(row)
        for i in self.bools:
            if values[i] is not None:
                values[i] = bool(values[i])
        for i in self.tags:
            if values[i] is not None:
                values[i] = orjson.loads(values[i])
        return dict(zip(self.columns, values, strict=True))

    def to_sql(self, name: str, value: Any) -> Any:
        """One wire value -> the value stored in its column."""
        if value is None:
            return None
        kind = self.kinds.get(name)
        if kind == "tags":
            return orjson.dumps(list(value)).decode()
        if kind == "bool":
            return int(bool(value))
        return value


_CODECS = {name: RecordCodec(e) for name, e in ENTITIES.items()}


def codec_for(ent: Entity) -> RecordCodec:
    """The codec of an entity (built once: entities are immutable)."""
    return _CODECS[ent.name]
