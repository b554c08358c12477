"""Checking a page of pulled rows against the domain, column by column.

Every record a pull writes must pass ``crm_tui.domain``'s rules (sync-contract promise 10), and a
bootstrap writes millions of them, so the common case is checked a column at a time with
C-speed builtins (type sets, ``max(map(len, ...))``, ``all(map(regex.fullmatch, ...))``). Any
column that is not plainly canonical sends the page down the exact per-value path
(``domain.validate_record`` semantics), which also names the bad records. Both paths accept
and produce exactly the same values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from cache.codec import encode_value
from crm_tui.domain import ID_RE, MAX_TAGS, TAG_RE, Entity, Field, ValidationError, _check_scalar

_NONE = type(None)
MAX_VERSION = 2**53  # what JSON numbers carry exactly, and far below SQLite's 2**63
_UNSTRIPPED = re.compile(r"^\s|\s$|\x00")
_NUL = re.compile(r"\x00")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class _Slow(Exception):
    """This column needs the exact per-value path."""


def _strings(col: Sequence[Any], f: Field) -> list[str]:
    types = set(map(type, col))
    if not types <= {str, _NONE}:
        raise _Slow
    strs = [v for v in col if v is not None]
    if f.required and len(strs) != len(col):
        raise _Slow
    if "" in strs:
        raise _Slow  # '' is normalised to None by the exact path
    return strs


def _fast_column(f: Field, col: Sequence[Any]) -> Sequence[Any]:
    """The column encoded for SQLite, or raise _Slow if it is not plainly valid."""
    k = f.kind
    if k in ("str", "text", "enum", "ref"):
        strs = _strings(col, f)
        if k == "text":
            if any(map(_NUL.search, strs)):
                raise _Slow
        elif any(map(_UNSTRIPPED.search, strs)):
            raise _Slow
        if f.max_len is not None and max(map(len, strs), default=0) > f.max_len:
            raise _Slow
        if k == "enum" and not set(strs) <= set(f.choices):
            raise _Slow
        if k == "ref" and not all(map(ID_RE.match, strs)):
            raise _Slow
        if f.pattern is not None and not all(map(f.pattern.match, strs)):
            raise _Slow
        return col
    if k in ("int", "money"):
        types = set(map(type, col))
        if not types <= {int, _NONE} or (f.required and _NONE in types):
            raise _Slow
        nums = [v for v in col if v is not None]
        if nums:
            lo = f.min if f.min is not None else -(2**53)
            hi = f.max if f.max is not None else 2**53
            if min(nums) < lo or max(nums) > hi:
                raise _Slow
        return col
    if k == "bool":
        types = set(map(type, col))
        if not types <= {bool, _NONE} or (f.required and _NONE in types):
            raise _Slow
        return [None if v is None else int(v) for v in col]
    if k in ("date", "datetime"):
        strs = _strings(col, f)
        try:
            if k == "date":
                if not all(map(_DATE.fullmatch, strs)):
                    raise _Slow
                for v in strs:
                    dt.date.fromisoformat(v)
            else:
                if not all(map(_DATETIME.fullmatch, strs)):
                    raise _Slow
                for v in strs:
                    dt.datetime.fromisoformat(v[:-1])
        except ValueError:
            raise _Slow from None
        return col
    if k == "tags":
        out = []
        for v in col:
            if v is None:
                if f.required:
                    raise _Slow
                out.append(None)
                continue
            if type(v) is not list or len(v) > MAX_TAGS or len(set(v)) != len(v):
                raise _Slow
            for t in v:
                if type(t) is not str or not TAG_RE.match(t) or t != t.strip():
                    raise _Slow
            out.append(json.dumps(v, ensure_ascii=False))
        return out
    raise _Slow


def validate_rows(
    ent: Entity, columns: list[str], rows: list[list[Any]], gen: int
) -> tuple[list[tuple[Any, ...]], list[tuple[list[Any], str]]]:
    """Rows (wire order ``columns``) -> (good rows as ``id, *fields, version, gen`` tuples, bad rows
    with their error). Bad rows are rows the exact path refuses; nothing else is dropped."""
    if not rows:
        return [], []
    index = {c: i for i, c in enumerate(columns)}
    by_col = list(zip(*rows, strict=True))
    n = len(rows)
    try:
        ids = by_col[index["id"]]
        if set(map(type, ids)) != {str} or not all(map(ID_RE.match, ids)):
            raise _Slow
        versions = by_col[index["version"]]
        if set(map(type, versions)) != {int} or min(versions) < 0 or max(versions) > MAX_VERSION:
            raise _Slow
        encoded = [ids]
        for f in ent.fields:
            i = index.get(f.name)
            col = by_col[i] if i is not None else (None,) * n
            encoded.append(_fast_column(f, col))
        encoded.append(versions)
        encoded.append([gen] * n)
        return list(zip(*encoded, strict=True)), []
    except _Slow:
        return _exact(ent, index, rows, gen)


def _exact(ent: Entity, index: dict[str, int], rows: list[list[Any]], gen: int):
    good: list[tuple[Any, ...]] = []
    bad: list[tuple[list[Any], str]] = []
    id_i, ver_i = index["id"], index["version"]
    field_idx = [index.get(f.name) for f in ent.fields]
    for row in rows:
        rid = row[id_i]
        try:
            if not isinstance(rid, str) or not ID_RE.match(rid):
                raise ValidationError({"id": "is not a valid id"})
            version = row[ver_i]
            if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
                raise ValidationError({"version": f"must be an integer from 0 to {MAX_VERSION}"})
            values: list[Any] = [rid]
            errors: dict[str, str] = {}
            for f, i in zip(ent.fields, field_idx, strict=True):
                try:
                    values.append(encode_value(f.kind, _check_scalar(f, row[i] if i is not None else None)))
                except ValueError as exc:
                    errors[f.name] = str(exc)
            if errors:
                raise ValidationError(errors)
            values.append(version)
            values.append(gen)
            good.append(tuple(values))
        except ValidationError as exc:
            bad.append((row, f"invalid {ent.name} from the server: {exc}"))
    return good, bad
