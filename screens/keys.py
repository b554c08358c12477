"""Every key binding of the app by id: what `settings.keymap` can rebind, and the docs' key table.

``python -m screens.keys`` prints the table (Markdown) for the README.
"""

from __future__ import annotations

from textual.binding import Binding


def binding_owners() -> list[type]:
    """The classes that declare bindings, in the order the docs list them."""
    from screens.app import CrmApp
    from screens.base import CrmScreen
    from screens.conflicts import ConflictResolveScreen
    from screens.customer import Customer360Screen
    from screens.forms import RecordForm
    from screens.help import HelpScreen
    from screens.pickers import ChoicePicker, CommandLine, ConfirmModal
    from screens.pipeline import PipelineScreen, StageTable
    from screens.rejected import RejectedScreen
    from screens.reports import ReportsScreen
    from screens.search import SearchScreen
    from screens.sync_screen import SyncScreen
    from screens.tables import CrmTable, ListPanel
    from screens.tickets import TicketQueueScreen
    from screens.today import TodayScreen

    return [CrmApp, CrmScreen, CrmTable, ListPanel, SearchScreen, Customer360Screen, TicketQueueScreen,
            PipelineScreen, StageTable, TodayScreen, SyncScreen, ConflictResolveScreen, RejectedScreen, ReportsScreen, RecordForm,
            ChoicePicker, ConfirmModal, CommandLine, HelpScreen]


def binding_table() -> list[tuple[str, str, str]]:
    """(binding id, default keys, what it does), each id once."""
    rows: dict[str, tuple[str, str, str]] = {}
    for owner in binding_owners():
        for binding in owner.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id and binding.id not in rows:
                rows[binding.id] = (binding.id, binding.key, binding.description)
    return list(rows.values())


def all_binding_ids() -> list[str]:
    return [row[0] for row in binding_table()]


if __name__ == "__main__":
    print("| id | keys | does |\n| --- | --- | --- |")
    for ident, keys, does in binding_table():
        print(f"| `{ident}` | `{keys}` | {does} |")
