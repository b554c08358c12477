"""Write transactions whose every change was rolled back by a savepoint still commit cleanly."""

from __future__ import annotations

import pytest

from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES


class Rejected(Exception):
    pass


def test_a_transaction_whose_changes_were_all_rolled_back_commits(store_target):
    store = open_store(store_target)
    try:
        with store.write() as tx:
            tx.insert(ENTITIES["territory"], {"id": "kept", "name": "Kept"})
        for _ in range(2):  # twice: the second must not collide with the first's bookkeeping
            with store.write() as tx, pytest.raises(Rejected), tx.savepoint():
                tx.insert(ENTITIES["territory"], {"id": "undone", "name": "Undone"})
                raise Rejected
        with store.read() as tx:
            assert tx.get(ENTITIES["territory"], "kept") is not None
            assert tx.get(ENTITIES["territory"], "undone") is None
    finally:
        store.close()
