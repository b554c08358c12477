"""Fixtures for the UI tests: a deterministic replica per test and an app factory.

Everything non-deterministic is switched off: the clock is frozen (settings.clock), animations
and cursor blink are off, no CRM_TUI_* variable or user config reaches the settings, and the
sync runner (when a test needs one) is a plain function handed to the app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cache.replica import Replica
from crm_tui.config import Settings
from crm_tui.core.syncstate import SyncEvent, SyncReport
from support import ui_data
from support.notified import NotifiedCrmApp

KINDS = ("full", "empty", "bootstrapping")


@pytest.fixture(autouse=True)
def _no_user_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CRM_TUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_TUI_CONFIG", str(tmp_path / "no-config.toml"))


@pytest.fixture(scope="session")
def replica_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kind of replica built once per test process; tests get private copies."""
    root = tmp_path_factory.mktemp("replica-templates")
    return {kind: ui_data.build(root / kind, kind) for kind in KINDS}


@pytest.fixture
def open_replica(replica_templates: dict[str, Path], tmp_path: Path) -> Iterator[Callable[[str], Replica]]:
    opened: list[Replica] = []

    def make(kind: str = "full", clock: Callable[[], dt.datetime] | None = None) -> Replica:
        # Frozen at NOW, as the app's settings say (ui_settings), unless a test hands in its own:
        # the replica's clock is the app's.
        replica = ui_data.copy_replica(replica_templates[kind], tmp_path / f"replica-{kind}-{len(opened)}",
                                       clock=clock or ui_settings().make_clock())
        opened.append(replica)
        return replica

    yield make
    for replica in opened:
        replica.close()


@pytest.fixture
def replica(open_replica: Callable[[str], Replica]) -> Replica:
    return open_replica("full")


def ui_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"clock": ui_data.NOW_ISO, "animations": False, "theme": "textual-dark",
                              "sync_in_app": True}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_app(open_replica: Callable[[str], Replica]) -> Callable[..., NotifiedCrmApp]:
    """``make_app(kind='full', sync_runner=None, **settings)`` -> a CrmApp over a private replica
    (a NotifiedCrmApp, so tests can read what it told the user)."""

    def make(kind: str = "full", *, sync_runner: Any = None, replica: Replica | None = None,
             daemon_probe: Callable[[], int | None] | None = None, **settings: Any) -> NotifiedCrmApp:
        return NotifiedCrmApp(replica or open_replica(kind), ui_settings(**settings), sync_runner=sync_runner,
                              daemon_probe=daemon_probe)

    return make


# ----------------------------------------------------------------------------- sync runners
# Plain callables handed to the app as its sync dependency; they stand in for nothing else.


def failing_report_runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
    on_event(SyncEvent("push", "sending 2 changes", 0, 2))
    return SyncReport(ok=False, error="the server answered 500 Internal Server Error")


def offline_runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
    return SyncReport(ok=False, offline=True, error="cannot reach the server")


def daemon_runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
    return SyncReport(ok=True, by_daemon=True)


def raising_runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
    raise RuntimeError("connection reset by peer")


def ok_runner(on_event: Callable[[SyncEvent], None], periodic: bool = False) -> SyncReport:
    on_event(SyncEvent("pull", "pulled 3 changes", 3, 3, search_ready=True))
    return SyncReport(ok=True, pushed=2, pulled=3)


@pytest.fixture
def runners() -> SimpleNamespace:
    return SimpleNamespace(failing=failing_report_runner, offline=offline_runner, daemon=daemon_runner,
                           raising=raising_runner, ok=ok_runner)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
