"""The app for end-to-end tests, opened as `crm-tui` opens it (crm_tui/launch.py)."""

from __future__ import annotations

from crm_tui.config import Settings
from crm_tui.replicas import open_replica
from screens.app import CrmApp
from support.client import ClientReplica
from sync.runner import sync_once


def open_app(client: ClientReplica) -> CrmApp:
    """The app over ``client``'s replica; its sync runner is the real ``sync_once``."""
    settings = Settings(sync=client.sync_settings, animations=False, sync_in_app=True)
    replica = open_replica(client.paths, client.settings)

    def runner(on_event, periodic=False):
        return sync_once(client.paths, settings, on_event, periodic=periodic)

    return CrmApp(replica, settings, sync_runner=runner)
