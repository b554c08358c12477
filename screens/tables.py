"""Lists of records: a DataTable fed one page at a time from the replica, with a `/` filter.

The built-in DataTable measures every row it holds, so a ``PagedTable`` never holds more than
the pages the user scrolled to: the first page on load, the next one when the cursor (or the
scrollbar) nears the end. Pages come from keyset-paginated reads (``ListSource.fetch``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from screens.display import MARK_TONES, MARKS, plain
from screens.inputs import CrmInput

if TYPE_CHECKING:
    from screens.app import CrmApp

FILTER_PAGES = 10  # a filter looks this many pages ahead for matches, then waits for scrolling
RELOAD_CAP = 500  # rows re-read when the data changed under a long list


def tone(app: Any, name: str) -> Style:
    """A Rich style in the current theme's colour called ``name`` (text-warning, text-error...).

    Table cells are Rich text, which cannot name theme variables; the colour is looked up in
    the theme in use, so every theme works. 'muted' variables (relative colours) become dim."""
    value = getattr(app, "theme_variables", {}).get(name)
    if value:
        try:
            return Style(color=Color.parse(value).rich_color)
        except Exception:  # a relative colour such as 'auto 60%'
            pass
    return Style(dim=True) if "muted" in name else Style()


@dataclass
class Column:
    key: str
    label: str
    width: int | None = None  # None: the one flexible column that takes the remaining width


@dataclass
class RowContext:
    """What a row renderer may use besides the row: the unsynced state, the width, the clock."""

    app: Any
    state: str | None
    wide: bool
    now: dt.datetime
    flex_width: int = 20  # cells of the flexible column

    def tone(self, name: str) -> Style:
        return tone(self.app, name)

    def mark(self) -> Text:
        if self.state is None:
            return Text("")
        return Text(MARKS[self.state], style=self.tone("text-" + MARK_TONES[self.state]))


@dataclass
class ListSource:
    """How a list pages through the replica.

    ``fetch(after, limit)`` returns up to ``limit`` rows after the keyset key ``after`` (None
    for the first page); ``next_key(row)`` is the key after a row; ``cells(row, ctx)`` renders
    a row for ``columns(wide)``. ``entity`` names the records, for the unsynced markers.
    """

    columns: Callable[[bool], list[Column]]
    fetch: Callable[[Any, int], list[dict[str, Any]]]
    next_key: Callable[[dict[str, Any]], Any]
    cells: Callable[[dict[str, Any], RowContext], list[Any]]
    entity: str | None = None
    page_size: int = 50
    wide_at: int = 120
    row_height: int = 1
    row_key: Callable[[dict[str, Any]], str] = field(default=lambda row: str(row["id"]))


class CrmTable(DataTable):
    """A row-cursor DataTable with the list keys (j/k, g/G) every list in the app shares."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "first", "Top", show=False, id="list.top"),
        Binding("G", "last", "Bottom", show=False, id="list.bottom"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)

    def action_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    @property
    def current_key(self) -> str | None:
        if not self.row_count or self.cursor_row < 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # the cursor sits outside the rows while they are rebuilt
            return None


class PagedTable(CrmTable):
    """A CrmTable over a ListSource: loads page by page, filters what it has loaded."""

    class Changed(Message):
        """Rows were loaded, filtered or cleared."""

        def __init__(self, table: PagedTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, source: ListSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.records: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.has_more = True
        self.after: Any = None
        self.filter_text = ""
        self.loaded_once = False
        self._wide: bool | None = None
        self._flex_width = 20
        self._states: dict[str, str] = {}

    # ------------------------------------------------------------------ public

    @property
    def crm(self) -> CrmApp:
        return self.app  # type: ignore[return-value]

    def current_row(self) -> dict[str, Any] | None:
        key = self.current_key
        return self.by_key.get(key) if key is not None else None

    def reload(self, keep_cursor: bool = True) -> None:
        """Re-read from the first page (as many rows as were loaded, up to RELOAD_CAP)."""
        keep_key = self.current_key if keep_cursor else None
        keep_row = self.cursor_row if keep_cursor else 0
        want = min(max(len(self.records), self.source.page_size), RELOAD_CAP)
        self.records, self.by_key, self.after, self.has_more = [], {}, None, True
        self._refresh_states()
        self._ensure_columns()
        self.clear()
        while self.has_more and len(self.records) < want:
            self._fetch_page()
        self._show(self.records)
        self.loaded_once = True
        self._restore_cursor(keep_key, keep_row)
        self._fill_for_filter()
        self.post_message(self.Changed(self))

    def load_more(self) -> None:
        """Append the next page, if there is one."""
        if not self.has_more:
            return
        self._refresh_states()
        start = len(self.records)
        self._fetch_page()
        self._show(self.records[start:])
        self.post_message(self.Changed(self))

    def set_filter(self, text: str) -> None:
        """Show only loaded rows whose cells contain ``text`` (case-insensitive); loads a few
        more pages looking for matches."""
        text = text.strip().lower()
        if text == self.filter_text:
            return
        self.filter_text = text
        keep = self.current_key
        self.clear()
        self._show(self.records)
        self._fill_for_filter()
        self._restore_cursor(keep, 0)
        self.post_message(self.Changed(self))

    # ------------------------------------------------------------------ loading

    def _refresh_states(self) -> None:
        if self.source.entity:
            self._states = self.crm.replica.outbox.unsynced_ids(self.source.entity)

    def _fetch_page(self) -> None:
        limit = self.source.page_size
        batch = self.source.fetch(self.after, limit)
        for row in batch:
            key = self.source.row_key(row)
            if key in self.by_key:
                continue
            self.by_key[key] = row
            self.records.append(row)
        self.has_more = len(batch) >= limit
        if batch:
            self.after = self.source.next_key(batch[-1])

    def _fill_for_filter(self) -> None:
        pages = 0
        while self.filter_text and self.has_more and self.row_count < self.source.page_size and pages < FILTER_PAGES:
            self.load_more()
            pages += 1

    def _row_context(self, row: dict[str, Any]) -> RowContext:
        state = self._states.get(self.source.row_key(row)) if self._states else None
        return RowContext(self.app, state, bool(self._wide), self.crm.now(), self._flex_width)

    def _show(self, rows: list[dict[str, Any]]) -> None:
        out = []
        for row in rows:
            cells = [c if isinstance(c, Text) else plain(c) for c in self.source.cells(row, self._row_context(row))]
            if self.filter_text and not any(self.filter_text in c.plain.lower() for c in cells):
                continue
            out.append((cells, self.source.row_key(row)))
        for cells, key in out:
            self.add_row(*cells, key=key, height=self.source.row_height)

    def _restore_cursor(self, key: str | None, row: int) -> None:
        if not self.row_count:
            return
        if key is not None:
            try:
                self.move_cursor(row=self.get_row_index(key), animate=False)
                return
            except Exception:  # the row left the list (status changed, filtered out)
                pass
        self.move_cursor(row=min(max(row, 0), self.row_count - 1), animate=False)

    # ------------------------------------------------------------------ columns

    def _ensure_columns(self) -> bool:
        """(Re)build the columns for the current width; True if they changed."""
        width = self.size.width or self.app.size.width
        wide = width >= self.source.wide_at
        cols = self.source.columns(wide)
        fixed = sum((c.width or 0) for c in cols)
        # cell padding on both sides of each column, and room for the vertical scrollbar
        gutter = self.styles.scrollbar_size_vertical
        flex = max(6, width - fixed - 2 * self.cell_padding * len(cols) - gutter)
        if self._wide == wide and self._flex_width == flex and self.columns:
            return False
        self._wide, self._flex_width = wide, flex
        self.clear(columns=True)
        for c in cols:
            self.add_column(c.label, width=c.width if c.width is not None else flex, key=c.key)
        return True

    def on_resize(self) -> None:
        keep, row = self.current_key, self.cursor_row
        if self._ensure_columns() and self.loaded_once:
            self._show(self.records)
            self._restore_cursor(keep, row)

    # ------------------------------------------------------------------ paging triggers

    @on(DataTable.RowHighlighted)
    def _near_end(self, event: DataTable.RowHighlighted) -> None:
        if self.has_more and event.cursor_row >= self.row_count - 3:
            self.load_more()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.has_more and self.loaded_once and self._at_bottom():
            self.call_later(self._load_if_at_bottom)

    def _at_bottom(self) -> bool:
        # Counted in rows (known at once), not max_scroll_y (updated at the next layout).
        shown_to = (self.scroll_y + self.size.height) / max(1, self.source.row_height)
        return self.row_count > 0 and shown_to >= self.row_count

    def _load_if_at_bottom(self) -> None:
        # Checked again: the cursor may have loaded the page already.
        if self.has_more and self._at_bottom():
            self.load_more()


class ListPanel(Vertical):
    """A PagedTable with its `/` filter box and an empty-state text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="list.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="list.clear_filter"),
    ]

    def __init__(self, source: ListSource, *, empty: str, table_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.empty_text = empty
        self.table = PagedTable(source, id=table_id)

    def compose(self) -> ComposeResult:
        yield CrmInput(placeholder="filter the loaded rows; esc clears", classes="list-filter", compact=True)
        yield self.table
        yield Static(Content(self.empty_text), classes="empty-state")

    @property
    def filter_box(self) -> CrmInput:
        return self.query_one(".list-filter", CrmInput)

    @property
    def filtering(self) -> bool:
        return bool(self.table.filter_text) or self.has_class("-filtering")

    def reload(self) -> None:
        self.table.reload()

    def action_filter(self) -> None:
        self.add_class("-filtering")
        box = self.filter_box
        box.display = True  # now, not at the next style update, so it can take the focus
        box.focus()

    def action_clear_filter(self) -> None:
        if not self.filtering:
            raise SkipAction()
        self.clear_filter()

    def clear_filter(self) -> None:
        self.filter_box.value = ""
        self.filter_box.display = False
        self.remove_class("-filtering")
        self.table.set_filter("")
        self.table.focus()

    @on(CrmInput.Changed, ".list-filter")
    def _filter_changed(self, event: CrmInput.Changed) -> None:
        event.stop()
        self.table.set_filter(event.value)

    @on(CrmInput.Submitted, ".list-filter")
    def _filter_done(self, event: CrmInput.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.filter_box.display = False
            self.remove_class("-filtering")
        self.table.focus()

    @on(PagedTable.Changed)
    def _update_empty(self, event: PagedTable.Changed) -> None:
        empty = self.query_one(".empty-state", Static)
        is_empty = self.table.row_count == 0 and self.table.loaded_once
        if is_empty:
            empty.update(Content("No rows match the filter." if self.table.filter_text else self.empty_text))
        self.set_class(is_empty, "-empty")
