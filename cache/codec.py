"""How wire values are stored in SQLite columns, and back."""

from __future__ import annotations

import json
from typing import Any


def encode_value(kind: str, value: Any) -> Any:
    """A wire value as stored in SQLite (tags as JSON text, booleans as 0/1)."""
    if value is None:
        return None
    if kind == "tags":
        return json.dumps(value, ensure_ascii=False)
    if kind == "bool":
        return 1 if value else 0
    return value


def decode_value(kind: str, value: Any) -> Any:
    """A stored SQLite value as a wire value."""
    if value is None:
        return None
    if kind == "tags" and isinstance(value, str):
        return json.loads(value)
    if kind == "bool":
        return bool(value)
    return value
