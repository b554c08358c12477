"""What the user sees for a field under an open conflict is always "mine" or "theirs" (issue 9
item 11): never a third value from a later edit, whichever way that edit came."""

from __future__ import annotations

import pytest

from cache.replica import Replica
from crm_tui.core.domain import CUSTOMER, ENTITIES
from support.records import customer_row


def page(rows, cursor):
    return {"cursor": cursor, "has_more": False, "phase": "feed",
            "segments": [{"op": "upsert", "entity": "customer", "columns": list(ENTITIES["customer"].columns),
                          "rows": rows}]}


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "replica.db", tmp_path / "hot")
    r.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent"})
    r.server_apply.apply_page(page([customer_row("c1", version=5)], "1"))
    yield r
    r.close()


def conflict_result(op, city_theirs="Hamburg", client="Munich", version=20, **server):
    record = dict(zip(CUSTOMER.columns, customer_row("c1", version=version, city=city_theirs, **server), strict=True))
    return {"op_id": op.op_id, "status": "conflict", "version": version, "record": record,
            "conflicts": [{"field": "city", "server": city_theirs, "client": client}]}


def assert_shows_mine_or_theirs(replica: Replica) -> None:
    for c in replica.conflicts.unresolved():
        rec = replica.get(c.entity, c.record_id)
        for name, values in c.fields.items():
            assert rec[name] in (values["mine"], values["theirs"]), (name, rec[name], values)


def test_an_edit_queued_while_the_clashing_one_was_in_flight_becomes_mine(replica):
    replica.writes.update("customer", "c1", {"city": "Munich"})
    [sent] = replica.outbox.next_batch(10)  # on its way; its answer is still to come
    replica.writes.update("customer", "c1", {"city": "Cologne", "phone": "+49 221 555"})  # a later edit
    replica.results.apply([sent], [conflict_result(sent)])
    [conflict] = replica.conflicts.unresolved()
    assert conflict.fields["city"]["mine"] == "Cologne"  # the user's latest wish, not the older one
    assert conflict.fields["city"]["theirs"] == "Hamburg"
    assert replica.get("customer", "c1")["city"] == "Cologne"
    # The later edit no longer carries the clashing field: only the conflict decides it.
    [later] = replica.outbox.pending()
    assert later.fields == {"phone": "+49 221 555"}
    assert_shows_mine_or_theirs(replica)
    replica.writes.resolve_conflict(conflict.id, {"city": "theirs"})
    assert replica.get("customer", "c1")["city"] == "Hamburg"
    assert [op.fields for op in replica.outbox.pending()] == [{"phone": "+49 221 555"}]


def test_editing_a_field_under_an_open_conflict_changes_mine_and_queues_nothing(replica):
    replica.writes.update("customer", "c1", {"city": "Munich"})
    [sent] = replica.outbox.next_batch(10)
    replica.results.apply([sent], [conflict_result(sent)])
    replica.writes.update("customer", "c1", {"city": "Bonn", "tier": "silver"})
    [conflict] = replica.conflicts.unresolved()
    assert (conflict.fields["city"]["mine"], conflict.fields["city"]["theirs"]) == ("Bonn", "Hamburg")
    assert replica.get("customer", "c1")["city"] == "Bonn"
    assert [op.fields for op in replica.outbox.pending()] == [{"tier": "silver"}]
    assert_shows_mine_or_theirs(replica)
    # A newer server value refreshes theirs; the screen keeps mine.
    replica.server_apply.apply_page(page([customer_row("c1", version=30, city="Dresden")], "2"))
    [conflict] = replica.conflicts.unresolved()
    assert conflict.fields["city"]["theirs"] == "Dresden"
    assert replica.get("customer", "c1")["city"] == "Bonn"
    assert_shows_mine_or_theirs(replica)
    replica.writes.resolve_conflict(conflict.id, {"city": "mine"})
    assert replica.get("customer", "c1")["city"] == "Bonn"
    city_ops = [op for op in replica.outbox.pending() if "city" in op.fields]
    assert [(op.fields, op.base_version) for op in city_ops] == [({"city": "Bonn"}, 30)]
