"""`crm-tui agenda` as a shell or a cron job runs it: the real CLI over a replica synced from the
real server, the clock fixed by CRM_TUI_CLOCK; text, --json, --all, --quiet and the exit codes."""

from __future__ import annotations

import json

import pytest

from support.client import ClientReplica
from support.server import make_op

NOW = "2026-11-25T09:00:00Z"  # a Wednesday


@pytest.fixture
def alex(server, tmp_path):
    """Alex's replica, synced, with tasks of Alex's overdue, due today, upcoming, later and done,
    and one of Sam's due today."""
    with server.client("ada") as http:
        c1, c2 = http.get("/v1/customers", params={"limit": 2}).json()["items"]
    me, sam = server.user_ids["alex"], server.user_ids["sam"]

    def task(tid, customer, title, due, owner=me, **kw):
        return make_op("create", "task", tid, {"customer_id": customer["id"], "title": title, "due_at": due,
                                               "owner_id": owner, "status": "open", **kw})

    results = server.batch([
        task("ag-late", c1, "Call back about the invoice", "2026-11-24T10:00:00Z"),
        task("ag-today", c2, "Send the quote", "2026-11-25T15:00:00Z"),
        task("ag-fri", c1, "Book the site visit", "2026-11-27T09:00:00Z"),
        task("ag-later", c2, "Renewal talk", "2026-12-30T09:00:00Z"),
        task("ag-done", c1, "Send the brochure", "2026-11-24T09:00:00Z", status="done",
             done_at="2026-11-25T08:00:00Z"),
        task("ag-sams", c2, "Sam's visit", "2026-11-25T11:00:00Z", owner=sam),
    ])
    assert {r["status"] for r in results} == {"applied"}, results
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.cli("sync", "--once").returncode == 0
    client.names = (c1["name"], c2["name"])  # type: ignore[attr-defined]
    return client


def test_agenda_prints_overdue_today_and_upcoming_with_the_customer(alex):
    done = alex.cli("agenda", CRM_TUI_CLOCK=NOW)
    assert done.returncode == 0, done.stderr
    c1, c2 = alex.names
    lines = done.stdout.splitlines()
    assert lines[0] == "Agenda for alex · Wed 2026-11-25 09:00 UTC"
    text = done.stdout
    assert "Overdue (1)\n  overdue 23 h      Call back about the invoice · " + c1 in text
    assert "Due today (1)\n  today 15:00       Send the quote · " + c2 in text
    assert "Next 7 days (1)\n  Fri 11-27 09:00   Book the site visit · " + c1 in text
    assert "Renewal talk" not in text and "Send the brochure" not in text and "Sam's visit" not in text
    assert "1 task due later; 1 done today." in text
    assert lines[-1].startswith("As of the last sync: 2026-")


def test_agenda_all_and_json_for_scripts(alex):
    done = alex.cli("agenda", "--all", "--json", CRM_TUI_CLOCK=NOW)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["everyone"] is True and info["owner"] is None
    assert [t["id"] for t in info["overdue"] if t["id"].startswith("ag-")] == ["ag-late"]
    assert [t["id"] for t in info["today"] if t["id"].startswith("ag-")] == ["ag-sams", "ag-today"]
    assert [t["id"] for t in info["upcoming"] if t["id"].startswith("ag-")] == ["ag-fri"]
    assert info["today"][0]["customer_name"] and info["now"] == NOW and info["today_ends"] == "2026-11-26T00:00:00Z"
    mine = json.loads(alex.cli("agenda", "--json", "--days", "40", CRM_TUI_CLOCK=NOW).stdout)
    assert mine["owner"]["id"] == alex.server.user_ids["alex"]
    assert [t["id"] for t in mine["upcoming"]] == ["ag-fri", "ag-later"]


def test_agenda_quiet_prints_nothing_when_nothing_is_due_for_a_cron_mail(alex):
    later = "2027-06-01T09:00:00Z"  # by then every open task of Alex's is overdue
    done = alex.cli("agenda", "--quiet", CRM_TUI_CLOCK=later)
    assert done.returncode == 0 and "Overdue (4)" in done.stdout, "--quiet still prints what is due"
    # Complete them all: then a cron run says nothing, and a plain run says so in one line.
    with alex.replica() as r:
        for tid in ("ag-late", "ag-today", "ag-fri", "ag-later"):
            r.writes.update("task", tid, {"status": "done", "done_at": NOW})
    quiet = alex.cli("agenda", "--quiet", CRM_TUI_CLOCK=NOW)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    plain = alex.cli("agenda", CRM_TUI_CLOCK=NOW)
    assert "Nothing due: no task overdue, today or in the next 7 days." in plain.stdout


def test_agenda_without_a_replica_or_with_bad_options_is_one_line_and_an_exit_code(server, tmp_path):
    fresh = ClientReplica(tmp_path / "new", server, "alex")
    done = fresh.cli("agenda")
    assert done.returncode == 3 and done.stderr.startswith("crm-tui: there is no replica") and \
        done.stderr.count("\n") == 1, done.stderr
    bad = fresh.cli("agenda", "--days", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
