"""Sync-contract promise 4 (docs/sync-contract.md): a save the UI acknowledged survives the process being killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from cache.replica import Replica
from support.keys import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
from cache.replica import Replica
from crm_tui.core.domain import CUSTOMER
r = Replica(sys.argv[1], sys.argv[2], key=bytes(range(32)))
rec = {c: None for c in CUSTOMER.columns}
rec.update(id="c1", name="Ada", territory="t1", version=1)
r.server_apply.apply_page({"cursor": "c", "has_more": False, "phase": "feed", "segments": [
    {"op": "upsert", "entity": "customer", "columns": list(CUSTOMER.columns), "rows": [[rec[c] for c in CUSTOMER.columns]]}]})
for i in range(100000):
    note = r.writes.create("activity", {"customer_id": "c1", "kind": "note", "body": f"note {i}",
                                        "occurred_at": "2026-11-25T10:00:00Z"})
    print(note["id"], flush=True)  # the UI says "saved" only after create() returned
"""


def test_every_acknowledged_save_survives_a_kill(tmp_path):
    db, hot = tmp_path / "replica.db", tmp_path / "hot"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(hot)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    acknowledged = []
    deadline = time.monotonic() + 30
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        acknowledged.append(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert len(acknowledged) >= 200
    with Replica(db, hot, key=TEST_KEY) as r:
        queued = {op.record_id for op in r.outbox.pending(limit=1_000_000)}
        for note_id in acknowledged:
            assert r.get("activity", note_id) is not None
            assert note_id in queued
        assert r.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
