import threading

from cache.schema import secondary_indexes
from support.client import ClientReplica
from sync.client import CrmClient
from sync.engine import SyncEngine


def test_bootstrap_interrupted_with_local_writes_keeps_fts_and_indexes(server_factory, tmp_path):
    """A bootstrap stopped mid-way (indexes down), local saves, then resumed: every index and
    search trigger is back, the search indexes are consistent, and the saves are searchable."""
    server = server_factory(seed_customers=150)
    c = ClientReplica(tmp_path / "c", server, "alex", page_size=40)
    stop = threading.Event()
    pages = []
    with c.replica(durable=False) as r, CrmClient(server.url, server.tokens["alex"], c.sync_settings) as http:
        def on_event(ev):
            if ev.phase in ("snapshot",):
                pages.append(ev)
                if len(pages) == 10:
                    stop.set()
        report = SyncEngine(r, http, c.sync_settings, on_event, stop).run_once()
        assert not report.ok and r.get_meta("bulk_tables")  # stopped mid-bootstrap, indexes down
    with c.replica() as r:
        cust = r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 3").fetchall()
        r.writes.update("customer", cust[0][0], {"name": "Zebulon Quixote"})
        r.writes.delete("customer", cust[1][0])
        r.writes.create("customer", {"name": "Xavier Yellowhammer", "territory": "dach", "email": "xy@example.com"})
        co = r.conn.execute("SELECT id FROM contacts LIMIT 1").fetchone()
        if co:
            r.writes.update("contact", co[0], {"name": "Wilhelmina Vortigern"})
    assert c.sync().ok
    assert c.sync().ok
    with c.replica() as r:
        assert r.get_meta("bulk_tables") is None
        names = {row[0] for row in r.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('index','trigger')")}
        missing = [n for _, n, _ in secondary_indexes() if n not in names]
        missing += [f"{t}_{k}_{s}" for t in ("customers", "contacts") for k in ("fts", "tri")
                    for s in ("ai", "ad", "au") if f"{t}_{k}_{s}" not in names]
        assert not missing, missing
        for t in ("customers", "contacts"):
            r.conn.execute(f"INSERT INTO {t}_fts({t}_fts, rank) VALUES('integrity-check', 1)")
            assert r.conn.execute(f"SELECT count(*) FROM {t}_tri").fetchone()[0] == r.count(t[:-1])
        assert [h.title for h in r.search("Xavier").hits] == ["Xavier Yellowhammer"]
        assert [h.title for h in r.search("Zebulon").hits] == ["Zebulon Quixote"]
