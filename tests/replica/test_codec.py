"""The replica and the server's SQLite store keep booleans and tag lists the same way (one codec,
crm_tui/core/codec.py): the same record is the same text in both, and reads back the same."""

from __future__ import annotations

import sqlite3

from cache.replica import Replica
from crm_server.store import open_store
from crm_server.store.schema import writable_columns
from crm_tui.core.domain import CUSTOMER, ENTITIES
from support.keys import TEST_KEY
from support.records import customer_row

TAGS = ["vip", "Größe", "key account"]


def test_a_record_is_stored_as_the_same_text_by_the_replica_and_the_server(tmp_path):
    row = dict(zip(CUSTOMER.columns, customer_row("c1", tags=TAGS), strict=True))

    store = open_store(tmp_path / "store.db")
    try:
        with store.bulk_load() as loader:
            loader.add(CUSTOMER, [[row[c] for c in writable_columns(CUSTOMER)]])
    finally:
        store.close()
    server_db = sqlite3.connect(tmp_path / "store.db")
    on_server = server_db.execute("SELECT tags FROM customers WHERE id = 'c1'").fetchone()[0]
    server_db.close()

    replica = Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)
    try:
        replica.server_apply.apply_page({"cursor": "A", "has_more": False, "phase": "feed", "segments": [
            {"op": "upsert", "entity": "customer", "columns": list(CUSTOMER.columns),
             "rows": [list(row.values())]}]})
        in_replica = replica.conn.execute("SELECT tags FROM customers WHERE id = 'c1'").fetchone()[0]
        assert replica.get("customer", "c1")["tags"] == TAGS
    finally:
        replica.close()

    assert in_replica == on_server


def test_booleans_and_tags_read_back_as_written_through_the_replica(tmp_path):
    contact = ENTITIES["contact"]
    replica = Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)
    try:
        replica.server_apply.apply_page({"cursor": "A", "has_more": False, "phase": "feed", "segments": [
            {"op": "upsert", "entity": "customer", "columns": list(CUSTOMER.columns),
             "rows": [customer_row("c1", tags=[])]},
            {"op": "upsert", "entity": "contact", "columns": list(contact.columns), "rows": [
                [{"id": cid, "customer_id": "c1", "name": f"Contact {cid}", "is_primary": primary,
                  "version": 1}.get(c) for c in contact.columns]
                for cid, primary in (("k1", True), ("k2", False), ("k3", None))]},
        ]})
        assert [replica.get("contact", cid)["is_primary"] for cid in ("k1", "k2", "k3")] == [True, False, None]
        assert replica.conn.execute("SELECT is_primary FROM contacts ORDER BY id").fetchall() == [(1,), (0,), (None,)]
        assert replica.get("customer", "c1")["tags"] == []
    finally:
        replica.close()
