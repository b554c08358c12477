"""A real crm-tui client (replica + sync engine, or the `crm-tui` CLI in a subprocess) for tests.

    client = ClientReplica(tmp_path / "alex", server, "alex")     # credentials stored, like `login`
    report = client.sync()                                        # one in-process sync run
    with client.replica() as r: r.writes.update(...)              # the user's own connection
    proc = client.cli("sync", "--once")                           # the real CLI, as a user runs it
    assert_replica_matches_server(client, server, "alex")         # record by record

Nothing is mocked: the server is the real crm-server subprocess from support.server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cache.records import decode_row
from cache.replica import Replica
from crm_tui import credentials
from crm_tui.config import Settings, SyncSettings
from crm_tui.core.domain import ENTITIES
from crm_tui.core.syncstate import SyncReport
from crm_tui.paths import Paths
from crm_tui.replicas import open_replica
from sync.client import CrmClient
from sync.engine import SyncEngine

ROOT = Path(__file__).resolve().parents[2]
FAST = {"max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.05, "connect_timeout": 2.0, "read_timeout": 10.0}


class ClientReplica:
    def __init__(self, data_dir: Path, server: Any, user: str, *, url: str | None = None,
                 token_store: str | None = None, **sync_options: Any):
        self.data_dir = Path(data_dir)
        self.server = server
        self.user = user
        self.paths = Paths(data_dir=self.data_dir, cache_dir=self.data_dir / "hot", config_dir=self.data_dir / "config",
                           state_dir=self.data_dir / "log")  # where the CLI's --data-dir puts it too
        self.paths.ensure()
        self.url = url or server.url
        credentials.save(self.paths, credentials.Credentials(self.url, server.tokens[user]), store=token_store)
        self.sync_settings = SyncSettings(**{**FAST, **sync_options})
        self.sleeps: list[float] = []

    @property
    def settings(self) -> Settings:
        return Settings(sync=self.sync_settings)

    @contextlib.contextmanager
    def replica(self, durable: bool = True, *, clock: str | None = None) -> Iterator[Replica]:
        """The replica as the product opens it (encrypted, its key from the keyring); ``clock``
        freezes its clock at that ISO time (``Settings.clock``)."""
        settings = self.settings if clock is None else Settings(sync=self.sync_settings, clock=clock)
        r = open_replica(self.paths, settings, durable=durable)
        try:
            yield r
        finally:
            r.close()

    @contextlib.contextmanager
    def engine(self, url: str | None = None) -> Iterator[SyncEngine]:
        with self.replica(durable=False) as r, CrmClient(
            url or self.url, self.server.tokens[self.user], self.sync_settings, sleep=self.sleeps.append
        ) as c:
            yield SyncEngine(r, c, self.sync_settings)

    def replica_runs(self) -> list[dict[str, Any]]:
        """The replica's sync history, newest first (every run by any process)."""
        with self.replica() as r:
            return r.reads.sync_runs(limit=1000)

    def sync(self, url: str | None = None) -> SyncReport:
        with self.engine(url) as engine:
            return engine.run_once()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_TUI_")}
        env.update({
            "CRM_TUI_CONFIG_DIR": str(self.paths.config_dir),
            "CRM_TUI_CACHE_DIR": str(self.paths.cache_dir),
            "CRM_TUI_SYNC__MAX_RETRIES": "2",
            "CRM_TUI_SYNC__BACKOFF_BASE": "0.01",
            "CRM_TUI_SYNC__BACKOFF_MAX": "0.05",
        })
        if self.config_file.exists():  # a named config file must exist (else: exit 2)
            env["CRM_TUI_CONFIG"] = str(self.config_file)
        env.update(extra)
        return env

    @property
    def config_file(self) -> Path:
        """The config file the CLI reads, once a test writes it."""
        return self.data_dir / "config.toml"

    def cli_cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "crm_tui.cli", "--data-dir", str(self.data_dir), *args]

    def cli(self, *args: str, input: str | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.cli_cmd(*args), input=input, capture_output=True, text=True, timeout=timeout,
                              env=self.env(**env), cwd=ROOT)

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(self.cli_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(**env), cwd=ROOT)


def settings_for(client: ClientReplica) -> Settings:
    return client.settings


def server_projection(server: Any, user: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record ``user`` may see, through the server's own list API, by entity and id."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with server.client(user) as http:
        for ent in ENTITIES.values():
            records: dict[str, dict[str, Any]] = {}
            after = None
            while True:
                params: dict[str, Any] = {"limit": 500}
                if after:
                    params["after"] = after
                response = http.get(f"/v1/{ent.table}", params=params)
                assert response.status_code == 200, response.text
                body = response.json()
                for rec in body["items"]:
                    records[rec["id"]] = rec
                after = body.get("next")
                if not after:
                    break
            out[ent.name] = records
    return out


def replica_contents(client: ClientReplica) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with client.replica() as r:
        for ent in ENTITIES.values():
            cur = r.conn.execute(f"SELECT * FROM {ent.table}")
            names = [d[0] for d in cur.description]
            out[ent.name] = {row[0]: decode_row(ent, row, names) for row in cur.fetchall()}
    return out


def assert_replica_matches_server(client: ClientReplica, server: Any, user: str | None = None) -> None:
    """The replica holds exactly the user's projection of the server, field by field."""
    expected = server_projection(server, user or client.user)
    actual = replica_contents(client)
    for name in ENTITIES:
        exp, act = expected[name], actual[name]
        missing = sorted(set(exp) - set(act))[:5]
        extra = sorted(set(act) - set(exp))[:5]
        assert not missing and not extra, f"{name}: missing {missing}, extra {extra}"
        for rid, rec in exp.items():
            got = act[rid]
            diff = {k: (v, got.get(k)) for k, v in rec.items() if got.get(k) != v}
            assert not diff, f"{name} {rid} differs (server, replica): {diff}"
