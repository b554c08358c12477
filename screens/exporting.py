"""`:export FILE` on any list: the whole filtered result, not only the rows in view, to CSV.

A screen says what it exports with ``export_plan()`` (an ``ExportPlan``); without one, the list
in focus (else the first on the screen) is exported with its `/` filter. The rows are streamed
from the replica in a thread worker on its own connection (``Window.batches``: one SELECT read
a batch at a time), through the replica's export hook (sealed while written, the file appears
whole or not at all). The file's first lines say what was exported and the filter that
produced it; the rows are the raw stored values, as the protocol has them, with the names the
screen shows beside the ids (``cache.export_names``: ``customer_id, customer_name``, ``stage,
stage_name`` ...), looked up a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cache.exports import write_csv
from crm_tui.core.domain import format_datetime
from crm_tui.core.text import plural
from screens.tables import WindowTable

if TYPE_CHECKING:
    from textual.screen import Screen

    from screens.host import CrmHost


@dataclass
class ExportPlan:
    """What `:export` writes: ``what`` (the list's name), ``view`` (the view and filters that
    produced it, in words) and the lists, each a (window, `/` filter text) pair, in order."""

    what: str
    view: str
    lists: list[tuple[Any, str]] = field(default_factory=list)
    noun: str = "row"


def filter_words(table: WindowTable) -> str:
    """A list's `/` filter, in words."""
    return f"/ filter “{table.filter_text}”" if table.filter_text else "no / filter"


def table_plan(screen: Screen, table: WindowTable, what: str, view: str = "") -> ExportPlan:
    """The plan for one list: its window and its `/` filter."""
    words = ", ".join(part for part in (view, filter_words(table)) if part)
    return ExportPlan(what, words, [(table.window, table.filter_text)] if table.window is not None else [])


def default_plan(screen: Screen) -> ExportPlan | None:
    """The list in focus, else the first list on the screen (None: the screen has no list)."""
    focused = screen.focused
    table = focused if isinstance(focused, WindowTable) else next(iter(screen.query(WindowTable)), None)
    if table is None:
        return None
    return table_plan(screen, table, getattr(screen, "LABEL", "") or type(screen).__name__)


def export_screen(app: CrmHost, target: str) -> bool:
    """`:export FILE` on the screen in front: starts the export; False when there is nothing to
    export or the file cannot be written there (the user is told)."""
    screen = app.screen
    plan_for = getattr(screen, "export_plan", None)
    plan = plan_for() if plan_for is not None else default_plan(screen)
    if plan is None or not plan.lists:
        app.notify("Nothing to export on this screen.", severity="warning")
        return False
    # One row read says whether there is anything (a count would look at every row, here on the UI thread).
    if not any(window.rows(0, 1, text) for window, text in plan.lists):
        app.notify(f"Nothing to export: the {plan.what} list is empty.", severity="warning")
        return False
    path = Path(target).expanduser()
    if path.is_dir() or not path.parent.is_dir():
        app.notify(f"Cannot write {path}: no such folder, or it is a folder.", severity="error")
        return False
    comments = [f"crm-tui export: {plan.what}", f"filter: {plan.view}",
                f"from the local replica at {format_datetime(app.now())}"]

    def run() -> None:
        try:
            rows = _write(app, path, comments, plan)
        except Exception as exc:  # told, never a crash: the file is not written
            app.call_from_thread(app.notify, f"Export failed: {exc}", severity="error")
            return
        app.call_from_thread(app.notify, f"Exported {plan.what} ({plural(rows, plan.noun)}) to {path}")

    screen.run_worker(run, thread=True, exit_on_error=False, group="export", description="export")
    return True


def _write(app: CrmHost, path: Path, comments: list[str], plan: ExportPlan) -> int:
    # Its own connection to the replica, so the screens stay answerable while a big list goes out.
    with app.replica.reopen(cache_mb=8, temp_in_memory=False) as replica:
        def batches() -> Iterator[list[dict[str, Any]]]:
            for window, text in plan.lists:
                yield from window.batches(text, conn=replica.conn)

        with replica.export_file(path, overwrite=True) as fh:
            return write_csv(fh, comments, batches(), replica.export_names().named)
