"""Typed messages the sync and save workers post back to the app (from its thread, via call_from_thread)."""

from __future__ import annotations

from textual.message import Message

from cache.save_queue import Applied
from crm_tui.core.syncstate import SyncEvent, SyncReport


class SyncProgress(Message):
    """A progress event of the running sync; a newer one replaces one not yet handled."""

    def __init__(self, event: SyncEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncProgress)


class SyncFinished(Message):
    """The sync runner returned its report (which may say it failed or was offline)."""

    def __init__(self, report: SyncReport) -> None:
        super().__init__()
        self.report = report


class SaveStep(Message):
    """The save worker applied a queued save, found the replica busy, or the replica refused it."""

    def __init__(self, step: Applied) -> None:
        super().__init__()
        self.step = step
