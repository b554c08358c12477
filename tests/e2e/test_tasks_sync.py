"""Tasks end to end, on both stores: a follow-up made offline reaches the server with the next
sync; one completed on both sides is a conflict the user sees with both values; a completion on
the server reaches the replica; a rep's replica holds only their territories' tasks."""

from __future__ import annotations

import pytest

from crm_tui.core.agenda import completion
from crm_tui.core.domain import format_datetime
from support.client import ClientReplica, assert_replica_matches_server
from support.postgres import BACKENDS
from support.server import FIXED_NOW, make_op


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


def a_customer(server, territory="dach"):
    with server.client("ada") as http:
        return http.get("/v1/customers", params={"limit": 1, "territory": territory}).json()["items"][0]


def test_a_follow_up_made_offline_reaches_the_server_with_the_next_sync(server, tmp_path):
    client = ClientReplica(tmp_path / "sam", server, "sam")
    assert client.sync().ok
    customer = a_customer(server)
    with client.replica(clock=format_datetime(FIXED_NOW)) as r:
        # The server is out of reach now: the save is local, and queued.
        task = r.writes.create("task", {"customer_id": customer["id"], "title": "Bring the new price list",
                                        "due_at": "2026-11-26T09:00:00Z", "owner_id": server.user_ids["sam"],
                                        "status": "open"})
        assert r.outbox.counts()["pending"] == 1
    assert server.get_record("tasks", task["id"]) is None
    report = client.sync()
    assert report.ok and report.pushed == 1, report
    on_server = server.get_record("tasks", task["id"])
    assert on_server["title"] == "Bring the new price list" and on_server["customer_id"] == customer["id"]
    assert on_server["owner_id"] == server.user_ids["sam"] and on_server["version"] > 0
    with client.replica() as r:
        assert r.outbox.counts()["pending"] == 0
        assert r.get("task", task["id"])["version"] == on_server["version"]
    assert_replica_matches_server(client, server)


def test_a_task_completed_here_and_rescheduled_there_is_a_conflict_shown_with_both_values(server, tmp_path):
    customer = a_customer(server)
    (created,) = server.batch([make_op("create", "task", "tk-both", {
        "customer_id": customer["id"], "title": "Call back", "due_at": "2026-11-26T09:00:00Z", "status": "open"})])
    assert created["status"] == "applied"
    client = ClientReplica(tmp_path / "sam", server, "sam")
    assert client.sync().ok
    with client.replica() as r:
        r.writes.update("task", "tk-both", {"due_at": "2026-11-27T10:00:00Z", **completion(True, FIXED_NOW)})
    # Meanwhile a colleague moves the same task to another day.
    (theirs,) = server.batch([make_op("update", "task", "tk-both", {"due_at": "2026-11-30T09:00:00Z"},
                                      base_version=created["version"])], user="alex")
    assert theirs["status"] == "applied"
    report = client.sync()
    assert report.conflicts == 1, report
    with client.replica() as r:
        [conflict] = r.conflicts.unresolved()
        assert conflict.entity == "task" and conflict.record_id == "tk-both"
        assert set(conflict.fields) == {"due_at"}
        assert conflict.fields["due_at"]["mine"] == "2026-11-27T10:00:00Z"
        assert conflict.fields["due_at"]["theirs"] == "2026-11-30T09:00:00Z"
    # The fields nobody else touched went through: the task is done on the server.
    on_server = server.get_record("tasks", "tk-both")
    assert on_server["status"] == "done" and on_server["due_at"] == "2026-11-30T09:00:00Z"


def test_a_task_completed_on_the_server_is_done_in_the_replica_and_a_reps_replica_has_only_their_tasks(server,
                                                                                                       tmp_path):
    dach, france = a_customer(server, "dach"), a_customer(server, "france")
    results = server.batch([
        make_op("create", "task", "tk-dach", {"customer_id": dach["id"], "title": "Visit", "status": "open",
                                              "due_at": "2026-11-25T15:00:00Z"}),
        make_op("create", "task", "tk-france", {"customer_id": france["id"], "title": "Visite", "status": "open",
                                                "due_at": "2026-11-25T15:00:00Z"}),
    ])
    assert [r["status"] for r in results] == ["applied", "applied"]
    client = ClientReplica(tmp_path / "sam", server, "sam")
    assert client.sync().ok
    with client.replica() as r:
        assert r.get("task", "tk-dach")["status"] == "open"
        assert r.get("task", "tk-france") is None
    server.batch([make_op("update", "task", "tk-dach", completion(True, FIXED_NOW),
                          base_version=results[0]["version"])], user="alex")
    assert client.sync().ok
    with client.replica() as r:
        assert r.get("task", "tk-dach")["status"] == "done"
        assert r.get("task", "tk-dach")["done_at"] == "2026-11-25T09:00:00Z"
    assert_replica_matches_server(client, server)
