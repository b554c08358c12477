"""Memory a search's whole match set holds (issue 11: the TUI's RSS stays ≤ 200 MB at 1M).

The search screen keeps every match of the query as a window (`G` reaches the last one, the
count is exact). At a million customers a broad query ("mar", "s") matches hundreds of
thousands of rows: held as a Python object per match that was ~300 bytes each, hundreds of MB.
These tests count bytes per match (tracemalloc: Python's own allocations; SQLite's page cache
is not among them), never time, over a replica with tens of thousands of matches, and check the
compact form lists the same matches, in the same order, as before.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from cache.replica import Replica
from cache.search import SearchWindow
from crm_tui.core.domain import ENTITIES
from support.keys import TEST_KEY
from support.records import customer_row

CUSTOMERS = 12_000
CONTACTS = 24_000
HELD_PER_MATCH = 16  # bytes the window holds per match once every match is found
PEAK_PER_MATCH = 24  # bytes allocated at most per match while finding them all


def _upsert(entity, rows):
    return {"cursor": "c", "has_more": False, "phase": "feed",
            "segments": [{"op": "upsert", "entity": entity, "columns": list(ENTITIES[entity].columns), "rows": rows}]}


def _contact(i: int, customer_id: str, **kw):
    rec = {"id": f"k{i:06d}", "customer_id": customer_id, "name": f"Contact {i}", "title": "Buyer", "email": None,
           "phone": None, "is_primary": False, "created_at": None, "updated_at": None, "version": 1}
    rec.update(kw)
    return [rec[c] for c in ENTITIES["contact"].columns]


def _customer(i: int):
    # Every tier of "mar" has many rows: names that start with it, names with a word that does,
    # a company word, a mail address that only contains it (trigram), and rows that do not match.
    name = ("Marlow Trading", "Quentin Marsh", "Olsen Foods", "Olsen Foods", "Pike & Co")[i % 5]
    company = "Marigold AG" if i % 5 == 4 else "Acme GmbH"
    email = f"c{i}@umar.example" if i % 5 in (2, 4) else f"c{i}@acme.example"
    return customer_row(f"c{i:06d}", name=f"{name} {i}", company=company, email=email, phone="+49 30 1234567")


def _contact_for(i: int):
    name = ("Mara Jones", "Ola Marten", "Ola Berg", "Ola Berg")[i % 4]
    email = f"k{i}@gomar.example" if i % 4 == 2 else None
    return _contact(i, f"c{i % CUSTOMERS:06d}", name=f"{name} {i}", email=email)


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    path = tmp_path_factory.mktemp("searchmem")
    r = Replica(path / "replica.db", path / "hot", key=TEST_KEY)
    for start in range(0, CUSTOMERS, 4000):
        r.server_apply.apply_page(_upsert("customer", [_customer(i) for i in range(start, start + 4000)]))
    for start in range(0, CONTACTS, 4000):
        r.server_apply.apply_page(_upsert("contact", [_contact_for(i) for i in range(start, start + 4000)]))
    yield r
    r.close()


def _reference_every(conn, text):
    """Every match of a broad word (more than RANK_BELOW matches), the way the search lists
    them (cache/search.py's tiers, in order): names that start with it, names with a word that
    does, the word anywhere, the text as a fragment of a mail address or phone; a row once,
    where it first appears. Built here from the tiers' own SQL, a Python tuple per match."""
    word = f'"{text}"*'
    tiers = [
        ("customer", "name", "SELECT rowid FROM customers WHERE name >= ? COLLATE NOCASE AND name < ? COLLATE NOCASE "
                             "ORDER BY name COLLATE NOCASE", (text, text + "\U0010ffff")),
        ("contact", "name", "SELECT rowid FROM contacts WHERE name >= ? COLLATE NOCASE AND name < ? COLLATE NOCASE "
                            "ORDER BY name COLLATE NOCASE", (text, text + "\U0010ffff")),
        ("customer", "name", "SELECT rowid FROM customers_fts WHERE customers_fts MATCH ?", (f"{{name}} : ({word})",)),
        ("contact", "name", "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?", (f"{{name}} : ({word})",)),
        ("customer", "text", "SELECT rowid FROM customers_fts WHERE customers_fts MATCH ?", (word,)),
        ("contact", "text", "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?", (word,)),
        ("customer", "fragment", "SELECT rowid FROM customers_tri WHERE customers_tri MATCH ?", (f'"{text}"',)),
        ("contact", "fragment", "SELECT rowid FROM contacts_tri WHERE contacts_tri MATCH ?", (f'"{text}"',)),
    ]
    seen: set[tuple[str, int]] = set()
    out = []
    for kind, match, sql, params in tiers:
        for (rowid,) in conn.execute(sql, params):
            if (kind, rowid) not in seen:
                seen.add((kind, rowid))
                out.append((kind, rowid, match))
    return out


@pytest.mark.parametrize("query", ["mar", "ola"])
def test_every_match_is_listed_once_in_the_order_the_first_ones_are(replica, query):
    search = replica.search
    every = search.every(query)
    listed = [(k.kind, k.rowid, k.match) for k in every]
    assert len(listed) == len(every)
    assert len({(kind, rowid) for kind, rowid, _ in listed}) == len(listed)  # no duplicates
    assert listed == _reference_every(replica.conn, query)
    for n in (1, 50, 301, 3000):
        first, _complete = search.first(query, n)
        assert [(k.kind, k.rowid, k.match) for k in first] == listed[:n]


def test_the_window_over_every_match_holds_a_few_bytes_per_match(replica):
    """What the search screen does for a broad query: the first matches at once, then every
    match from a worker, which the window takes; the window then serves any position."""
    search = replica.search
    window: SearchWindow = search.window("mar", 50)
    assert not window.complete
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        every = search.every("mar")
        _, peak = tracemalloc.get_traced_memory()
        window.found_all(every)
        del every
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = window.count()
    assert n > 25_000  # a broad query: tens of thousands of customers and contacts
    assert held - before <= HELD_PER_MATCH * n, f"{(held - before) / n:.1f} bytes held per match"
    assert peak - before <= PEAK_PER_MATCH * n, f"{(peak - before) / n:.1f} bytes per match at the peak"
    # ... and it is still the whole, exact list: the last match, a record's position.
    last = window.rows(n - 1, 5)
    assert len(last) == 1
    assert window.position(last[0]["key"]) == n - 1
    assert window.rows(0, 3) == search.window("mar", 50).rows(0, 3)
