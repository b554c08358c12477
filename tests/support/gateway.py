"""The REAL crm-server in gateway mode in front of a REAL BottleCRM, for tests.

    with BottleCRMProcess(tmp_path / "bcrm") as bcrm, GatewayProcess(tmp_path / "mirror.db", upstream=bcrm) as gw:
        client = ClientReplica(tmp_path / "alex", gw, "alex")      # the real crm-tui sync engine
        assert client.sync().ok

``GatewayProcess`` is a :class:`support.server.ServerProcess` whose ``serve`` gets
``--upstream bottlecrm --upstream-url ...`` and the token in ``CRM_SERVER_UPSTREAM_TOKEN`` (never
argv). Its mirror holds no seeded data: only the gateway's territory and the users ada (admin),
alex (agent) and sam (sales rep in the gateway's territory). ``upstream_url`` may point at a
``FaultProxy`` in front of BottleCRM instead of BottleCRM itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.bottlecrm import BottleCRMProcess
from support.server import ServerProcess, UserSpec

TERRITORY = "bottlecrm"
GATEWAY_USERS = (
    UserSpec("ada", "admin"),
    UserSpec("alex", "agent", team="support-l1"),
    UserSpec("sam", "sales", (TERRITORY,)),
)


@dataclass
class GatewayProcess(ServerProcess):
    upstream: BottleCRMProcess | None = None
    upstream_url: str | None = None  # default: the upstream's own URL
    poll_interval: float = 0.2
    scan_interval: float = 3600.0  # tests that need a scan ask for one (--scan-interval) or miss a window
    start_timeout: float = 120.0  # the first full scan runs before the server listens

    def prepare(self) -> None:
        """Create the mirror with its territory and the users (no seeded data)."""
        from crm_server.gateway.service import ensure_territory
        from crm_server.store import open_store

        self.db_path = Path(self.db_path)
        store = open_store(self.db_url)
        try:
            ensure_territory(store, TERRITORY)
            self.add_users(store, GATEWAY_USERS)
        finally:
            store.close()

    def command(self) -> list[str]:
        assert self.upstream is not None
        return [*super().command(), "--upstream", "bottlecrm", "--upstream-url", self.upstream_url or self.upstream.url,
                "--territory", TERRITORY, "--poll-interval", str(self.poll_interval),
                "--scan-interval", str(self.scan_interval), "--log-level", "info"]

    def environment(self) -> dict[str, str]:
        assert self.upstream is not None
        return {**os.environ, "CRM_SERVER_UPSTREAM_TOKEN": self.upstream.token}


def eventually(check: Callable[[], Any], *, timeout: float = 120.0, every: float = 0.2, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy (returned); AssertionError after ``timeout``.

    For what happens in the gateway's own time (its pull runs every ``poll_interval``); the
    deadline only bounds a failure, it is never what a test asserts.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)
