"""The memory scenario (bench/scenarios/memory.py) measures the app as `crm-tui` runs it: its
replica connection is opened with the launcher's options (page cache, temp store), not the
library defaults (a 64 MB page cache, 48 MB more than the app keeps, which a full scan such as
the pipeline's summary fills)."""

from __future__ import annotations

from bench.scenarios import memory
from cache.replica import Replica
from crm_tui.launch import UI_REPLICA


def test_the_memory_scenario_opens_the_replica_as_the_app_does(tmp_path):
    Replica(tmp_path / "replica.db", tmp_path / "hot").close()
    cfg = {"replica": str(tmp_path / "replica.db"), "hot_dir": str(tmp_path / "hot"), "encrypted": False}
    replica = memory.open_app_replica(cfg)
    try:
        assert replica.conn.execute("PRAGMA cache_size").fetchone()[0] == -UI_REPLICA["cache_mb"] * 1024
        assert replica.conn.execute("PRAGMA busy_timeout").fetchone()[0] == UI_REPLICA["busy_timeout"] * 1000
    finally:
        replica.close()
