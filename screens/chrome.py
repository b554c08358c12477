"""The frame around every screen: the navigation bar on top, the status line at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from crm_tui.core.text import grouped, plural

if TYPE_CHECKING:
    from screens.host import CrmHost, StatusInfo

# (mode, label, binding id) in the order the number keys go.
SECTIONS = (
    ("search", "Search", "app.search"),
    ("tickets", "Tickets", "app.tickets"),
    ("pipeline", "Pipeline", "app.pipeline"),
    ("sync", "Sync", "app.sync"),
    ("conflicts", "Conflicts", "app.conflicts"),
    ("rejected", "Rejected", "app.rejected"),
    ("reports", "Reports", "app.reports"),
    ("today", "Today", "app.today"),
)


class NavBar(Static):
    """The sections of the app with their keys; the current one highlighted."""

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def on_mount(self) -> None:
        self.refresh_nav()
        app: CrmHost = self.app  # type: ignore[assignment]
        app.status_changed.subscribe(self, lambda _info: self.refresh_nav())

    def refresh_nav(self) -> None:
        app: CrmHost = self.app  # type: ignore[assignment]
        items = [(app.key_for(binding_id), label, app.current_mode == mode) for mode, label, binding_id in SECTIONS]
        # Roomy when it fits; else one space between sections (80 columns hold all eight).
        roomy = sum(len(key) + len(label) + 3 for key, label, _ in items) <= (self.size.width or app.size.width)
        parts: list[str | tuple[str, str]] = []
        for i, (key, label, active) in enumerate(items):
            if roomy or active:
                parts.append((f" {key} {label} ", "bold reverse $accent" if active else ""))
            else:
                before = "" if i == 0 or items[i - 1][2] else " "
                parts.append(f"{before}{key} {label}")
        self.update(Content.assemble(*parts))

    def on_resize(self) -> None:
        self.refresh_nav()


class StatusLine(Horizontal):
    """Sync state, last sync, unsynced counts and the signed-in user; always at the bottom."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        padding: 0 1;
        & > #status-sync {
            width: 1fr;
            text-wrap: nowrap;
            text-overflow: ellipsis;
        }
        & > #status-user {
            width: auto;
            padding-left: 1;
            color: $text-muted;
        }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="status-sync")
        yield Static(id="status-user")

    def on_mount(self) -> None:
        app: CrmHost = self.app  # type: ignore[assignment]
        app.status_changed.subscribe(self, self.show)
        self.show(app.status_info())

    def show(self, info: StatusInfo) -> None:
        parts: list[str | tuple[str, str]] = [(f"● {info.state}", f"bold ${info.tone}")]
        if info.detail:
            parts.append((f" {info.detail}", "$text-muted"))
        narrow = self.size.width < 100
        parts.append(f" · ↻ {info.last_sync}" if narrow else f" · synced {info.last_sync}")
        if info.queued:
            waiting = " (replica busy)" if info.queue_waiting else ""
            parts.append((f" · {plural(info.queued, 'save')} queued{waiting}", "bold $text-warning"))
        if info.pending:
            parts.append((f" · {grouped(info.pending)} pending", "$text-warning"))
        if info.conflicts:
            parts.append((f" · {plural(info.conflicts, 'conflict')}", "bold $text-error"))
        if info.rejected:
            parts.append((f" · {grouped(info.rejected)} rejected", "bold $text-error"))
        self.query_one("#status-sync", Static).update(Content.assemble(*parts))
        user = info.user.split(" ")[0] if narrow else info.user
        self.query_one("#status-user", Static).update(Content(user))

    def on_resize(self) -> None:
        app: CrmHost = self.app  # type: ignore[assignment]
        self.show(app.status_info())


# The footer's keys that give way first when not all fit, in this order: f5 (the app syncs by
# itself, the status line says how it went), then / (a list's filter). Then each screen's own
# keys from the right (a screen lists its keys most-used first), then q. `?` never gives way:
# help lists every key, those the footer had no room for included.
GIVE_WAY_FIRST = ("app.sync_now", "list.filter")
GIVE_WAY_LAST = ("app.quit",)
NEVER_GIVES_WAY = ("app.help",)


class CrmFooter(Footer):
    """The footer of every screen: each key it shows is readable whole; when they do not all
    fit, keys give way in a stated order (GIVE_WAY_FIRST, the screen's own from the right,
    GIVE_WAY_LAST) and `? Help` stays, which lists them all."""

    def __init__(self, **kwargs) -> None:
        super().__init__(compact=True, show_command_palette=False, **kwargs)
        self._width = 0
        self.left_out: list[str] = []  # binding ids the footer had no room for

    def compose(self) -> ComposeResult:
        keys = [k for k in super().compose() if isinstance(k, FooterKey)]
        ids = {binding.action: binding.id or binding.action for _, binding, _, _ in self.screen.active_bindings.values()}
        self._width = self.size.width or self.app.size.width
        shown = _fitting(keys, [ids.get(k.action, k.action) for k in keys], self._width)
        self.left_out = [ids.get(k.action, k.action) for k in keys if k not in shown]
        yield from shown

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width and self._bindings_ready:
            self.call_after_refresh(self.recompose)


def _fitting(keys: list[FooterKey], ids: list[str], width: int) -> list[FooterKey]:
    """The keys that fit in ``width`` cells (each key, a space, its description, a space between
    keys), those that give way taken out in the stated order."""
    def cells(key: FooterKey) -> int:
        return cell_len(key.key_display) + (1 + cell_len(key.description) if key.description else 0) + 1

    own = [i for i, ident in enumerate(ids) if ident not in (*GIVE_WAY_FIRST, *GIVE_WAY_LAST, *NEVER_GIVES_WAY)]
    order = ([i for name in GIVE_WAY_FIRST for i, ident in enumerate(ids) if ident == name] + own[::-1]
             + [i for name in GIVE_WAY_LAST for i, ident in enumerate(ids) if ident == name])
    kept = set(range(len(keys)))
    total = sum(cells(k) for k in keys) - 1
    for i in order:
        if total <= width:
            break
        kept.discard(i)
        total -= cells(keys[i])
    return [k for i, k in enumerate(keys) if i in kept]
