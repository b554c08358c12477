"""Order numbers as people type them: the server stores SO-00010042; the search hint says SO-10042."""

from __future__ import annotations

import pytest

from cache.replica import Replica
from crm_tui.core.domain import ENTITIES
from support.keys import TEST_KEY


def _order(oid: str, number: str) -> list:
    rec = {"id": oid, "customer_id": "c1", "number": number, "order_date": "2026-03-01", "amount": 100_00,
           "currency": "EUR", "status": "paid", "created_at": None, "updated_at": None, "version": 1}
    return [rec[c] for c in ENTITIES["order"].columns]


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)
    columns = list(ENTITIES["order"].columns)
    r.server_apply.apply_page({"cursor": "c1", "has_more": False, "phase": "feed", "segments": [
        {"op": "upsert", "entity": "order", "columns": columns,
         "rows": [_order("o1", "SO-00010042"), _order("o2", "SO-00010043"), _order("o3", "SO-00100420")]}]})
    yield r
    r.close()


@pytest.mark.parametrize("typed", ["SO-10042", "so-10042", "SO10042", "so10042", "SO-00010042", "so 10042",
                                   "10042"])
def test_an_order_number_is_found_however_it_is_typed(replica, typed):
    hits = [h for h in replica.search(typed).hits if h.kind == "order"]
    assert hits and hits[0].id == "o1" and hits[0].title == "SO-00010042"


def test_a_started_padded_number_lists_the_orders_it_begins(replica):
    hits = [h.id for h in replica.search("SO-0001004").hits if h.kind == "order"]
    assert hits == ["o1", "o2"]
