"""The gateway's own state (links, op ledger, named values) and its poller lock, on both stores:
what `crm-server serve --upstream ... --db postgresql://...` keeps in PostgreSQL."""

from __future__ import annotations

from crm_server.store import open_store
from crm_server.store.gateway_state import LedgerEntry, UpstreamLink


def test_links_ledger_and_values_are_kept_and_shared(store_target):
    first, second = open_store(store_target), open_store(store_target)  # two server processes' stores
    try:
        with first.write() as tx:
            tx.set_gateway_link(UpstreamLink("customer", "c-1", "up-1", "hash-a"))
            tx.set_gateway_link(UpstreamLink("customer", "c-2", "up-2", None))
            tx.put_gateway_ledger(LedgerEntry("op-1", "ticket", "t-1", {"name": "Printer", "account": "up-1"},
                                              "sending", None, 1700000000.5))
            tx.set_gateway_value("audit_last_entry", "42")
        with second.write() as tx:  # what one process wrote, the other reads and changes
            assert tx.gateway_link("customer", local_id="c-1") == UpstreamLink("customer", "c-1", "up-1", "hash-a")
            assert tx.gateway_link("customer", upstream_id="up-2").local_id == "c-2"
            entry = tx.gateway_ledger("op-1")
            assert entry == LedgerEntry("op-1", "ticket", "t-1", {"name": "Printer", "account": "up-1"}, "sending",
                                        None, 1700000000.5)
            tx.put_gateway_ledger(LedgerEntry("op-1", "ticket", "t-1", entry.natural_key, "done", "up-9",
                                              entry.started_at))
            # An upstream id adopted by the record a client made moves to it.
            tx.set_gateway_link(UpstreamLink("customer", "c-new", "up-2", "hash-b"))
            tx.set_gateway_link(UpstreamLink("customer", "c-1", "up-1", "hash-c"))
            tx.set_gateway_value("audit_last_entry", "43")
            tx.set_gateway_value("last_full_scan", None)
        with first.read() as tx:
            assert tx.gateway_ledger("op-1").state == "done" and tx.gateway_ledger("op-1").upstream_id == "up-9"
            assert tx.gateway_ledger("op-2") is None
            assert sorted(tx.gateway_links("customer"), key=lambda link: link.local_id) == [UpstreamLink("customer", "c-1", "up-1", "hash-c"),
                                                            UpstreamLink("customer", "c-new", "up-2", "hash-b")]
            assert tx.gateway_link("customer", local_id="c-2") is None
            assert tx.gateway_value("audit_last_entry") == "43" and tx.gateway_value("last_full_scan") is None
        with first.write() as tx:
            tx.drop_gateway_link("customer", "c-new")
        with second.read() as tx:
            assert [link.local_id for link in tx.gateway_links("customer")] == ["c-1"]
    finally:
        first.close()
        second.close()


def test_only_one_process_holds_the_poller_lock_until_it_lets_go(store_target):
    first, second = open_store(store_target), open_store(store_target)
    a, b = first.poller_lock(), second.poller_lock()
    try:
        assert a.try_acquire() and a.try_acquire(), "the holder keeps it"
        assert not b.try_acquire(), "a second process does not poll while the first does"
        a.release()
        assert b.try_acquire(), "the next process takes over once the first is gone"
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()
        first.close()
        second.close()
