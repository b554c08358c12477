"""One clock: the clock handed to the replica when it is opened is "now" for the sync engine,
the outbox and the pull, whether the replica is opened in a test or by `crm-tui sync`.

A clock frozen years from the wall clock shows which one each part really asked.
"""

from __future__ import annotations

import datetime as dt

from cache.replica import Replica
from crm_tui.core.domain import format_datetime
from crm_tui.replicas import open_replica
from support.client import ClientReplica, settings_for
from sync.client import CrmClient
from sync.engine import SyncEngine

FROZEN = dt.datetime(2031, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
FROZEN_TEXT = format_datetime(FROZEN)


def test_the_sync_engine_records_runs_with_the_replicas_clock(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    replica = Replica(tmp_path / "plain" / "replica.db", tmp_path / "plain" / "hot", clock=lambda: FROZEN)
    try:
        with CrmClient(server.url, server.tokens["alex"], client.sync_settings) as http:
            report = SyncEngine(replica, http).run_once()
        assert report.ok, report.error
        [run] = replica.reads.sync_runs()
        assert (run["started_at"], run["finished_at"]) == (FROZEN_TEXT, FROZEN_TEXT)
        customer_id = replica.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()[0]
        replica.writes.update("customer", customer_id, {"city": "Clocktown"})
        [op] = replica.outbox.pending()
        assert op.created_at == FROZEN_TEXT
        assert replica.get("customer", customer_id)["updated_at"] == FROZEN_TEXT
    finally:
        replica.close()


def test_the_clock_in_the_settings_is_the_one_crm_tui_sync_records(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    done = client.cli("sync", "--once", CRM_TUI_CLOCK=FROZEN_TEXT)
    assert done.returncode == 0, done.stderr
    [run] = client.replica_runs()
    assert (run["started_at"], run["finished_at"]) == (FROZEN_TEXT, FROZEN_TEXT)
    settings = settings_for(client).model_copy(update={"clock": FROZEN_TEXT})
    with open_replica(client.paths, settings) as replica:
        assert replica.clock() == FROZEN
        assert replica.reopen().clock() == FROZEN  # a worker's connection keeps it
