"""The column-wise fast path and the exact per-value path accept and produce the same rows."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from cache.validate import _exact, validate_rows
from crm_tui.core.domain import ENTITIES

ODD = st.sampled_from([None, "", " x", "x ", "a\x00b", "abc\n", True, 1, -5, 10**17, 1.5, [], ["a", "a"],
                       ["ok", "tag"], "2026-02-30", "2026-02-28", "2026-11-25T09:00:00Z", "2026-11-25T25:00:00Z",
                       "2026-11-25 09:00:00", "gold", "x@y.de", "+49 30 1", "DE", "EUR", "cus-1", "é" * 300,
                       # what the column-wise checks must still catch: the separator they join values
                       # with, Unicode spaces at an edge, days a month lacks, short years, other digits
                       "a\nb", "cus-1\ncus-2", "x@y.de\nz@w.de", "\u00a0x", "x\u2003", "\x1fx", "2024-02-29",
                       "2023-02-29", "2026-04-31", "2026-12-31", "0000-01-01", "0999-01-01", "0001-01-01T00:00:00Z",
                       "2026-11-25T24:00:00Z", "2026-11-25T23:59:60Z", "2026-11-31T09:00:00Z", "٢٠٢٦-01-01",
                       "2026-11-25T09:00:00+00:00", "20261125", "a@b@c.de", ["a\nb"], ["x", "x "], [1]])


def values_for(field, odd):
    good = {
        "str": st.text(alphabet="abcdef XY", min_size=1, max_size=20).map(str.strip).filter(bool),
        "text": st.text(max_size=30).filter(lambda t: "\x00" not in t),
        "int": st.integers(0, 100),
        "money": st.integers(0, 10**9),
        "bool": st.booleans(),
        "date": st.dates(dt.date(1900, 1, 1)).map(lambda d: d.isoformat()),
        "datetime": st.datetimes(dt.datetime(1900, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "enum": st.sampled_from(field.choices or ("x",)),
        "ref": st.from_regex(r"\A[a-z0-9_-]{1,10}\Z"),
        "tags": st.lists(st.sampled_from(["vip", "b2b", "churn-risk"]), unique=True, max_size=3),
    }[field.kind]
    if field.pattern is not None:
        good = st.sampled_from({"email": ["a@b.example", "x.y@z.co"], "phone": ["+1 555 0100", "030 1234"],
                                "country": ["DE", "US"], "currency": ["EUR", "USD"]}[field.name])
    return st.one_of(good, good, st.none(), ODD) if odd else (good if field.required else st.one_of(good, st.none()))


@settings(max_examples=120, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(ENTITIES)))
def test_fast_and_exact_paths_agree(data, name):
    ent = ENTITIES[name]
    columns = list(ent.columns)
    n = data.draw(st.integers(1, 6))
    odd = data.draw(st.booleans())
    rows = []
    for i in range(n):
        extra = [ODD] if odd else []
        row = [data.draw(st.one_of(st.just(f"id-{i}"), *extra)) if c == "id" else
               data.draw(st.one_of(st.integers(0, 99), *extra)) if c == "version" else
               data.draw(values_for(ent.by_name[c], odd)) for c in columns]
        rows.append(row)
    index = {c: i for i, c in enumerate(columns)}
    fast = validate_rows(ent, columns, rows, 3)
    assert fast == _exact(ent, index, rows, 3)
    if not odd:
        assert fast[1] == []  # canonical rows all pass


def _canonical_row(ent, i):
    return [data_for(ent.by_name[c], i) if c not in ("id", "version") else (f"id-{i}" if c == "id" else i)
            for c in ent.columns]


def data_for(field, i):
    if field.pattern is not None:
        return {"email": "a@b.example", "phone": "+1 555 0100", "country": "DE", "currency": "EUR"}[field.name]
    return {"str": "name", "text": "free text", "int": 1, "money": 100, "bool": True, "date": "2026-01-31",
            "datetime": "2026-01-31T09:30:00Z", "enum": (field.choices or ("x",))[0], "ref": f"ref-{i}",
            "tags": ["vip"]}[field.kind]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(ENTITIES)))
def test_one_odd_value_among_canonical_rows_is_judged_as_alone(data, name):
    """Column-wise checks look at a whole column at once: one odd value among many plain ones
    must get the verdict (and stored value) the exact path gives it."""
    ent = ENTITIES[name]
    columns = list(ent.columns)
    rows = [_canonical_row(ent, i) for i in range(5)]
    col = data.draw(st.sampled_from(columns))
    rows[data.draw(st.integers(0, 4))][columns.index(col)] = data.draw(ODD)
    index = {c: i for i, c in enumerate(columns)}
    assert validate_rows(ent, columns, rows, 1) == _exact(ent, index, rows, 1)
