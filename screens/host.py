"""What a screen, widget or helper of screens/ may ask of the app: the narrow interface
``screens.app.CrmApp`` implements.

Screens reach the app through ``CrmHost`` (``self.crm``), never by importing screens/app.py, so the
app can import every screen without an import cycle (tests/test_import_cycles.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import RenderableType
from textual.geometry import Size
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.signal import Signal
from textual.theme import Theme
from textual.worker import Worker

from cache.replica import Replica
from crm_tui.core.syncstate import SyncRunner


@dataclass(frozen=True)
class StatusInfo:
    """Everything the status line shows, computed by the app from the replica and the sync state."""

    state: str  # online, offline, syncing, sync by daemon, sync failed, offline (no server)
    tone: str  # a theme variable: text-success, text-warning, text-error, text-muted
    detail: str = ""  # bootstrap progress while syncing, or the last error
    last_sync: str = "never"
    pending: int = 0
    conflicts: int = 0
    rejected: int = 0
    queued: int = 0  # saves in the save queue, not yet in the replica
    queue_waiting: bool = False  # ... because a sync holds the replica's write lock
    user: str = ""


class SaveFollowUp(Protocol):
    """The app's save queue as screens see it."""

    def after_save(self, result: dict[str, Any], then: Callable[[dict[str, Any] | None], None]) -> None:
        """Call ``then`` with the saved record once the queued save ``result`` is applied."""
        ...


class CrmHost(Protocol):
    """The app as screens/ use it: the replica, the clock, saves, keys, status and sections,
    plus the few Textual ``App`` calls the screens' helpers make."""

    @property
    def replica(self) -> Replica: ...
    @property
    def saver(self) -> SaveFollowUp: ...
    @property
    def sync_runner(self) -> SyncRunner | None: ...
    @property
    def data_gen(self) -> int: ...
    @property
    def status_changed(self) -> Signal[StatusInfo]: ...

    @property
    def server_label(self) -> str | None: ...

    last_error: str | None

    def now(self) -> dt.datetime: ...
    def data_changed(self) -> None: ...
    def publish_status(self) -> None: ...
    def status_info(self) -> StatusInfo: ...
    def key_for(self, binding_id: str) -> str: ...
    def show_section(self, mode: str) -> None: ...
    def record_screen(self, entity_name: str, record_id: str, tab: str = "contacts") -> Screen[Any]: ...
    def save(self, action: str, entity_name: str, fields: dict | None = None, *,
             record_id: str | None = None) -> dict: ...
    def action_sync_now(self, quiet: bool = False) -> None: ...
    def action_help(self) -> None: ...
    def action_command_line(self) -> None: ...
    async def action_quit(self) -> None: ...
    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...
    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None: ...

    # Textual's App, as far as the screens' helpers (commands, navigation, the save queue) use it.
    theme: str

    @property
    def screen(self) -> Screen[object]: ...
    @property
    def current_mode(self) -> str: ...
    @property
    def size(self) -> Size: ...
    @property
    def available_themes(self) -> dict[str, Theme]: ...

    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], Any] | None = None) -> Any: ...
    def switch_mode(self, mode: str) -> Any: ...
    def search_themes(self) -> None: ...
    def call_later(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> bool: ...
    def post_message(self, message: Message) -> bool: ...
    def run_worker(self, work: Callable[[], None], name: str | None = "", group: str = "default",
                   description: str = "", exit_on_error: bool = True, start: bool = True,
                   exclusive: bool = False, thread: bool = False) -> Worker[None]: ...
    def exit(self, result: None = None, return_code: int = 0, message: RenderableType | None = None) -> None: ...
