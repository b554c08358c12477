"""Every key binding of the app by id: what `settings.keymap` can rebind, and the docs' key table.

``python -m screens.keys`` prints the table (Markdown) for the README.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

# The app-wide keys (screens.app.CrmApp.BINDINGS), declared here so this table does not import
# the app: the app imports every screen, and the screens reach the app only through screens/host.py.
APP_BINDINGS: list[BindingType] = [
    Binding("1", "section('search')", "Search", show=False, id="app.search"),
    Binding("2", "section('tickets')", "Tickets", show=False, id="app.tickets"),
    Binding("3", "section('pipeline')", "Pipeline", show=False, id="app.pipeline"),
    Binding("4", "section('sync')", "Sync", show=False, id="app.sync"),
    Binding("5", "section('conflicts')", "Conflicts", show=False, id="app.conflicts"),
    Binding("6", "section('rejected')", "Rejected", show=False, id="app.rejected"),
    Binding("7", "section('reports')", "Reports", show=False, id="app.reports"),
    Binding("8", "section('today')", "Today", show=False, id="app.today"),
    Binding("q", "quit", "Quit", id="app.quit"),
    Binding("question_mark,f1", "help", "Help", id="app.help"),
    Binding("colon", "command_line", "Command", show=False, id="app.command"),
    Binding("f5", "sync_now", "Sync now", id="app.sync_now"),
    Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True, id="app.palette"),
]


def binding_owners() -> list[type]:
    """The classes that declare bindings, in the order the docs list them (after APP_BINDINGS)."""
    from screens.base import CrmScreen
    from screens.conflicts import ConflictResolveScreen
    from screens.customer import Customer360Screen
    from screens.forms import RecordForm
    from screens.help import HelpScreen
    from screens.order_detail import OrderDetailScreen
    from screens.pickers import ChoicePicker, CommandLine, ConfirmModal
    from screens.pipeline import PipelineScreen, StageTable
    from screens.reader import MessageReader
    from screens.rejected import RejectedScreen
    from screens.reports import ReportsScreen
    from screens.search import SearchBox, SearchScreen
    from screens.sync_screen import SyncScreen
    from screens.tables import CrmTable, ListPanel, WindowTable
    from screens.tickets import TicketQueueScreen
    from screens.today import TodayScreen

    return [CrmScreen, WindowTable, CrmTable, ListPanel, SearchScreen, SearchBox, Customer360Screen, OrderDetailScreen, TicketQueueScreen,
            PipelineScreen, StageTable, TodayScreen, SyncScreen, ConflictResolveScreen, RejectedScreen, ReportsScreen, RecordForm,
            MessageReader, ChoicePicker, ConfirmModal, CommandLine, HelpScreen]


def binding_table() -> list[tuple[str, str, str]]:
    """(binding id, default keys, what it does), each id once."""
    rows: dict[str, tuple[str, str, str]] = {}
    for bindings in [APP_BINDINGS, *(owner.__dict__.get("BINDINGS", []) for owner in binding_owners())]:
        for binding in bindings:
            if isinstance(binding, Binding) and binding.id and binding.id not in rows:
                rows[binding.id] = (binding.id, binding.key, binding.description)
    return list(rows.values())


def all_binding_ids() -> list[str]:
    return [row[0] for row in binding_table()]


if __name__ == "__main__":
    print("| id | keys | does |\n| --- | --- | --- |")
    for ident, keys, does in binding_table():
        print(f"| `{ident}` | `{keys}` | {does} |")
