"""Checking a page of pulled rows against the domain, column by column.

Every record a pull writes must pass ``crm_tui.core.domain``'s rules (sync-contract promise 10,
docs/sync-contract.md), and a bootstrap writes millions of them, so the common case is checked a
column at a time with C-speed builtins (type sets, ``max(map(len, ...))``, one regex over a whole column). Any
column that is not plainly canonical sends the page down the exact per-value path
(``domain.validate_record`` semantics), which also names the bad records. Both paths accept
and produce exactly the same values.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Sequence
from typing import Any

from crm_tui.core.codec import SQL_BOOL, encode_value, tags_to_sql
from crm_tui.core.domain import (
    COUNTRY_RE,
    CURRENCY_RE,
    EMAIL_RE,
    ID_RE,
    MAX_TAGS,
    PHONE_RE,
    TAG_RE,
    Entity,
    Field,
    ValidationError,
    _check_scalar,
)

_NONE = type(None)
MAX_VERSION = 2**53  # what JSON numbers carry exactly, and far below SQLite's 2**63

# A column is checked as one string: its values joined by newlines, matched by one regex that
# repeats the field's pattern (C speed, no Python call per value). That is exact only when no
# value contains a newline (checked by counting them) and the pattern can never match one, so
# only patterns read for that are joined; a field with any other pattern is checked per value.
# Atomic groups keep a failing match from backtracking across values; they can only make a
# valid column look invalid, which sends it down the exact path (slower, never wrong).
_SEP = "\n"
# Years before 1000 are left to the exact path: strftime writes them with fewer digits.
_DATE_P = r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_DATETIME_P = _DATE_P + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
_DAY = operator.itemgetter(slice(0, 10))


def _repeat(body: str) -> re.Pattern[str]:
    return re.compile(rf"(?>{body})(?:\n(?>{body}))*")


def _body(pattern: re.Pattern[str]) -> str:
    src = pattern.pattern
    assert src.startswith("^") and src.endswith(r"\Z"), src
    return src[1:-2]


# Patterns that never match a newline (character classes without \n or \s; no ".").
_JOINED = {p: _repeat(_body(p)) for p in (ID_RE, EMAIL_RE, PHONE_RE, COUNTRY_RE, CURRENCY_RE)}
_IDS = _JOINED[ID_RE]
_DATES = _repeat(_DATE_P)
_DATETIMES = _repeat(_DATETIME_P)


class _Slow(Exception):
    """This column needs the exact per-value path."""


def _strings(col: Sequence[Any], f: Field) -> list[str]:
    types = set(map(type, col))
    if not types <= {str, _NONE}:
        raise _Slow
    strs = list(filter(None, col))  # drops None and ''
    nones = col.count(None) if _NONE in types else 0
    if len(strs) + nones != len(col):
        raise _Slow  # '' is normalised to None by the exact path
    if f.required and nones:
        raise _Slow
    return strs


def _joined(strs: list[str]) -> str:
    """The values as one string, or raise _Slow if a value holds the separator (or a NUL)."""
    text = _SEP.join(strs)
    if text.count(_SEP) != len(strs) - 1 or "\x00" in text:
        raise _Slow
    return text


def _matches_all(pattern: re.Pattern[str], strs: list[str], text: str) -> bool:
    joined = _JOINED.get(pattern)
    if joined is not None:
        return joined.fullmatch(text) is not None
    return all(map(pattern.match, strs))


def _real_days(strs: list[str]) -> None:
    """Raise _Slow if a 29th, 30th or 31st among these dates is not in its month's calendar (the
    regex has checked the rest); each distinct date is looked at once."""
    try:
        for day in set(map(_DAY, strs)):
            if day[8:] >= "29":
                dt.date.fromisoformat(day)
    except ValueError:
        raise _Slow from None


def _fast_column(f: Field, col: Sequence[Any], tags_memo: dict[tuple[Any, ...], str]) -> Sequence[Any]:
    """The column encoded for SQLite, or raise _Slow if it is not plainly valid."""
    k = f.kind
    if k in ("str", "text", "enum", "ref"):
        strs = _strings(col, f)
        if not strs:
            return col
        if k == "text":
            if "\x00" in "".join(strs):
                raise _Slow
        else:
            if list(map(str.strip, strs)) != strs:
                raise _Slow
            text = _joined(strs)
            if k == "ref" and not _IDS.fullmatch(text):
                raise _Slow
            if f.pattern is not None and not _matches_all(f.pattern, strs, text):
                raise _Slow
        if f.max_len is not None and max(map(len, strs)) > f.max_len:
            raise _Slow
        if k == "enum" and not set(strs) <= set(f.choices):
            raise _Slow
        return col
    if k in ("int", "money"):
        types = set(map(type, col))
        if not types <= {int, _NONE} or (f.required and _NONE in types):
            raise _Slow
        nums = [v for v in col if v is not None] if _NONE in types else col
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
        return list(map(SQL_BOOL.__getitem__, col))
    if k in ("date", "datetime"):
        strs = _strings(col, f)
        if not strs:
            return col
        text = _joined(strs)
        if not (_DATES if k == "date" else _DATETIMES).fullmatch(text):
            raise _Slow
        _real_days(strs)
        return col
    if k == "tags":
        out: list[str | None] = []
        for v in col:
            if v is None:
                if f.required:
                    raise _Slow
                out.append(None)
                continue
            if type(v) is not list:
                raise _Slow
            try:
                key = tuple(v)
                out.append(tags_memo[key])
                continue
            except KeyError:
                pass
            except TypeError:
                raise _Slow from None
            if len(v) > MAX_TAGS or len(set(v)) != len(v):
                raise _Slow
            for t in v:
                if type(t) is not str or not TAG_RE.match(t) or t != t.strip():
                    raise _Slow
            tags_memo[key] = encoded = tags_to_sql(v)
            out.append(encoded)
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
        if set(map(type, ids)) != {str} or not _IDS.fullmatch(_joined(list(ids))):
            raise _Slow
        versions = by_col[index["version"]]
        if set(map(type, versions)) != {int} or min(versions) < 0 or max(versions) > MAX_VERSION:
            raise _Slow
        encoded: list[Sequence[Any]] = [ids]
        tags_memo: dict[tuple[Any, ...], str] = {}
        for f in ent.fields:
            i = index.get(f.name)
            col = by_col[i] if i is not None else (None,) * n
            encoded.append(_fast_column(f, col, tags_memo))
        encoded.append(versions)
        encoded.append([gen] * n)
        return list(zip(*encoded, strict=True)), []
    except _Slow:
        return _exact(ent, index, rows, gen)


def _exact(ent: Entity, index: dict[str, int], rows: list[list[Any]], gen: int,
           ) -> tuple[list[tuple[Any, ...]], list[tuple[list[Any], str]]]:
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
