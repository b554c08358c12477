"""Lists of records: windows onto the whole result, rendered a line at a time.

A ``WindowTable`` is a Line-API ``ScrollView`` (Toolong's line list is the model): its virtual
height is the row count of the whole result, it reads from the replica only the block of rows
around what is in view, and it renders only the lines on screen. Column widths are fixed per
layout (one flexible column takes what is left), so rendering never measures content. A rendered
row is kept (keyed by its content, not its position), so a result that shifts or repeats under
new typing re-renders only the rows that changed.

``g``/``G`` go to the true first and last row, page keys and the scrollbar to any position, and
the `/` filter of a ``ListPanel`` narrows the query in SQL, over the whole result.

Columns that do not fit give way in a stated order (``Column.give_way``: the highest number goes
first) and the header names what went (``+customer, team``), so a narrow terminal hides columns
with a hint rather than silently. A column that identifies its row (``Column.ident``: a ticket or
order number) is never cut: it widens to the longest value read so far. Room the flexible column
does not need for the values read goes to the columns whose values are cut (the last to give way
first). The order per list is in the README (Keys and lists).

``CrmTable`` stays the plain DataTable for small fixed tables (help, reports, sync history).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeGuard

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowKey

from cache.sqlite import sqlite3
from cache.windows import ListWindow, Window
from screens.display import MARK_TONES, MARKS, plain
from screens.inputs import CrmInput
from screens.side_connection import SideClosed, SideConnection

if TYPE_CHECKING:
    from screens.host import CrmHost

BLOCK = 100  # rows read from the replica at a time, around what is in view
BLOCKS_KEPT = 12  # blocks of rows kept in memory
STRIPS_KEPT = 2000  # rendered rows kept
KEYSET_CAP = 10_000  # rows a keyset-paged source (fetch/next_key) reads at most


# Cell colours by theme variable: Rich text cannot name theme variables, so a table reads the colour
# from its own component classes (tone--text-error ...), which follow the theme in use. 'muted' (a
# colour relative to the background) is dim.
TONES = ("text-success", "text-warning", "text-error", "text-accent", "text-muted")
TONE_CSS = """
    & > .tone--text-success { color: $text-success; }
    & > .tone--text-warning { color: $text-warning; }
    & > .tone--text-error { color: $text-error; }
    & > .tone--text-accent { color: $text-accent; }
    & > .tone--text-muted { text-style: dim; }
"""


def tone(table: Widget, name: str) -> Style:
    """A Rich style in the current theme's colour called ``name`` (text-warning, text-error...),
    from ``table``'s component classes; no style for a name that is not one of TONES."""
    return table.get_component_rich_style(f"tone--{name}", partial=True, default=Style())


FLEX_MIN = 12  # cells the flexible column keeps before other columns give way


@dataclass
class Column:
    """One column of a list.

    ``width`` None makes it the one flexible column (it takes what is left). ``ident`` marks the
    column that identifies a row (a number): it is never cut and never hidden; it widens to the
    longest ``row[key]`` read. ``give_way`` says which columns are hidden when the row does not
    fit: 0 never, else the highest number first (ties: the rightmost first)."""

    key: str
    label: str
    width: int | None = None  # None: the one flexible column that takes the remaining width
    ident: bool = False
    give_way: int = 0
    min_width: int = FLEX_MIN  # the flexible column: cells it keeps before others give way


@dataclass
class RowContext:
    """What a row renderer may use besides the row: the table (for its tones), the unsynced state,
    the width, the clock."""

    table: Widget
    state: str | None
    wide: bool
    now: dt.datetime
    flex_width: int = 20  # cells of the flexible column

    def tone(self, name: str) -> Style:
        return tone(self.table, name)

    def mark(self) -> Text:
        if self.state is None:
            return Text("")
        return Text(MARKS[self.state], style=self.tone("text-" + MARK_TONES[self.state]))


class RowWindow(Protocol):
    """A whole result as a list shows it (``cache.windows.Window`` and ``ListWindow`` are two)."""

    def count(self, text: str = "") -> int: ...

    def rows(self, offset: int, limit: int, text: str = "", *, total: int | None = None) -> list[dict[str, Any]]: ...

    def position(self, record_id: str, text: str = "") -> int | None: ...


@dataclass
class ListSource:
    """What a list shows and how it reads it.

    ``window()`` returns the result as a window (built at each reload, so it can follow the
    screen's view and filters); ``cells(row, ctx)`` renders a row for ``columns(wide)``.
    A source that can only page forward gives ``fetch(after, limit)`` and ``next_key(row)``
    instead (a keyset; read whole up to KEYSET_CAP rows). ``entity`` names the records, for the
    unsynced markers; ``filter_text(row)`` is what a `/` filter looks in for in-memory windows.
    """

    columns: Callable[[bool], list[Column]]
    cells: Callable[[dict[str, Any], RowContext], list[Any]]
    window: Callable[[], RowWindow] | None = None
    fetch: Callable[[Any, int], list[dict[str, Any]]] | None = None
    next_key: Callable[[dict[str, Any]], Any] | None = None
    entity: str | None = None
    page_size: int = 50
    wide_at: int = 120
    row_height: int = 1
    row_key: Callable[[dict[str, Any]], str] = field(default=lambda row: str(row["id"]))
    filter_text: Callable[[dict[str, Any]], str] | None = None

    def open(self) -> RowWindow:
        if self.window is not None:
            return self.window()
        if self.fetch is None or self.next_key is None:
            raise ValueError("a ListSource needs window() or fetch() and next_key()")
        rows: list[dict[str, Any]] = []
        after: Any = None
        while len(rows) < KEYSET_CAP:
            batch = self.fetch(after, self.page_size)
            rows.extend(batch)
            if len(batch) < self.page_size:
                break
            after = self.next_key(batch[-1])
        if self.filter_text:
            return ListWindow(rows, text_of=self.filter_text)
        return ListWindow(rows)


class CrmTable(DataTable):
    """A row-cursor DataTable with the list keys (j/k, g/G), for small tables held whole."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "first", "Top", show=False, id="list.top"),
        Binding("G", "last", "Bottom", show=False, id="list.bottom"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"tone--{name}" for name in TONES}
    DEFAULT_CSS = """
    CrmTable {
        height: 1fr;
        background: $surface;
        /* Columns are sized to the screen; a long last cell is cut, never scrolled sideways. */
        overflow-x: hidden;
""" + TONE_CSS + """
    }
    """

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


class WindowTable(ScrollView, can_focus=True, inherit_bindings=False):
    """A list over a ``ListSource``: knows the whole count, reads and renders only what is in view."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g,home", "first", "Top", show=False, id="list.top"),
        Binding("G,end", "last", "Bottom", show=False, id="list.bottom"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="list.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="list.page_up"),
        Binding("enter", "select", "Open", show=False, id="list.open"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"window-table--header", "window-table--cursor",
                                             *(f"tone--{name}" for name in TONES)}
    DEFAULT_CSS = """
    WindowTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .window-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .window-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .window-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
""" + TONE_CSS + """
    }
    """

    class Changed(Message):
        """The rows were (re)read or filtered: the count may have changed."""

        def __init__(self, table: WindowTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> WindowTable:
            return self.table

    class RowHighlighted(DataTable.RowHighlighted):
        """The cursor moved to another row (also a ``DataTable.RowHighlighted``)."""

    class RowSelected(DataTable.RowSelected):
        """enter (or a click on the highlighted row) chose a row (also a ``DataTable.RowSelected``)."""

    def __init__(self, source: ListSource, *, show_header: bool = True, cell_padding: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.show_header = show_header
        self.cell_padding = cell_padding
        self.window: RowWindow | None = None
        self.total = 0
        self.unfiltered_total = 0  # the whole result before a `/` filter
        self.cursor_row = 0
        self.filter_text = ""
        # A `/` filter over a big window shows its first rows at once; its count over the whole
        # result comes from a worker on its own connection (``total`` is a lower bound meanwhile).
        self.counting = False
        # Under a `/` filter, the count of the whole result (``unfiltered_total``) may come from
        # the same worker too (a queue read again under its filter): true until it has come.
        self.unfiltered_counting = False
        # Its own connection, one thread at a time: the UI's reads never queue behind a count of 500k rows.
        self._counter = SideConnection(lambda: self.crm.replica.reopen(cache_mb=8))
        self._pending_place: tuple[str | None, int] | None = None  # (key, row) for the cursor once counted
        self.loaded_once = False
        # What a test or the bench can count: rows rendered (not served from the kept strips)
        # and reads of the replica (a count or a block of rows).
        self.rows_rendered = 0
        self.reads = 0
        self._blocks: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._strips: OrderedDict[Any, list[Strip]] = OrderedDict()
        self._drawn_at: dt.datetime | None = None  # the app's clock when a row was last drawn
        self._states: dict[str, str] = {}
        self._columns: list[Column] = []  # the columns shown
        self._all_columns: list[Column] = []  # all the source's columns at this width
        self._shown: list[int] = []  # positions in _all_columns of the shown ones
        self.hidden_columns: list[str] = []  # labels of the columns that gave way
        self._ident_widths: dict[str, int] = {}
        self._content_widths: dict[str, int] = {}  # the longest cell read per column (by key)
        self._widths: list[int] = []
        self._wide = False
        self._flex_width = 20
        self._layout_width = 0

    # ------------------------------------------------------------------ public

    @property
    def crm(self) -> CrmHost:
        return self.app  # type: ignore[return-value]

    @property
    def row_count(self) -> int:
        return self.total

    @property
    def header_height(self) -> int:
        return 1 if self.show_header else 0

    def row_at(self, index: int) -> dict[str, Any] | None:
        """The record at position ``index`` of the (filtered) result, read on demand."""
        if self.window is None or not 0 <= index < self.total:
            return None
        block_no, inside = divmod(index, BLOCK)
        block = self._blocks.get(block_no)
        if block is None:
            self.reads += 1
            block = self.window.rows(block_no * BLOCK, BLOCK, self.filter_text, total=self.total)
            self._blocks[block_no] = block
            self._measure(block)
            while len(self._blocks) > BLOCKS_KEPT:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(block_no)
        return block[inside] if inside < len(block) else None

    def current_row(self) -> dict[str, Any] | None:
        """The record under the cursor: the row the user sees highlighted."""
        return self.row_at(self.cursor_row)

    @property
    def current_key(self) -> str | None:
        row = self.current_row()
        return self.source.row_key(row) if row is not None else None

    def row_text(self, index: int) -> str:
        """A row's cells as shown (plain text, ``|`` between cells): what a user reads."""
        row = self.row_at(index)
        if row is None:
            return ""
        cells = self._shown_cells(row)
        return " | ".join(c.plain if isinstance(c, Text) else str(c) for c in cells)

    def line_text(self, index: int) -> str:
        """The row's first line exactly as drawn (cut and padded to the columns): what fits."""
        row = self.row_at(index)
        if row is None:
            return ""
        return self._row_strips(index, row, self.scrollable_content_region.width)[0].text

    def header_text(self) -> str:
        """The header line as drawn, with the hint naming the columns that gave way."""
        return self._header_strip(self.scrollable_content_region.width).text

    def get_row_index(self, key: str) -> int:
        """The position of the row with ``key``; raises KeyError if it is not in the list."""
        index = self._cached_position(key)
        if index is None and self.window is not None:
            self.reads += 1
            index = self.window.position(key, self.filter_text)
        if index is None:
            raise KeyError(key)
        return index

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on position ``row`` (clamped) and scroll it into view."""
        if not self.total:
            self.cursor_row = 0
            return
        old = self.cursor_row
        self.cursor_row = max(0, min(row, self.total - 1))
        if scroll:
            self._scroll_to_cursor()
        self._refresh_row(old)
        self._refresh_row(self.cursor_row)
        if old != self.cursor_row or not self.loaded_once:
            self._post_highlighted()

    def reload(self, keep_cursor: bool = True) -> None:
        """Read the result again (count and the rows in view); the cursor stays on its row if it
        is still near, else at its position."""
        keep_key = self.current_key if keep_cursor and self.loaded_once else None
        keep_row = self.cursor_row if keep_cursor else 0
        self._refresh_states()
        self._ident_widths.clear()  # a new result: identifying columns fit its own values
        self._content_widths.clear()
        self._layout()
        self._stop_counting()
        self.window = window = self.source.open()
        self._pending_place = None
        # Under a filter, the whole result's count comes apart too when the window says so.
        self.unfiltered_counting = bool(self.filter_text) and self._counts_apart(window, "")
        if self._counts_apart(window, self.filter_text):
            # The first rows at once, the count from a worker: the cursor goes back to a row
            # past them when the count has come.
            self._first_block_then_count(window, self.filter_text)
            if self.counting and keep_row >= self.total:
                self._pending_place = (keep_key, keep_row)
        else:
            self._recount()
        if not self.filter_text:
            self.unfiltered_total = self.total
        elif not self.unfiltered_counting:
            self.reads += 1
            self.unfiltered_total = self.window.count("")
        self._start_counting(window)
        self.loaded_once = True
        self._place_cursor(keep_key, keep_row)
        self._announce()

    def set_filter(self, text: str) -> None:
        """Show only rows matching ``text``: the query is narrowed over the whole result.

        Over a window that counts in the background (the ticket queue), the first block of
        matching rows is read and painted at once; when it is full, the count of every match
        follows from a worker (``counting`` is true until it does), and a newer key cancels it."""
        text = text.strip()
        if text == self.filter_text:
            return
        keep = self.current_key
        # The whole result's count, if a worker was still at it, is wanted still.
        whole_pending = self.unfiltered_counting or (self.counting and not self.filter_text)
        self.filter_text = text
        window = self.window
        self.unfiltered_counting = bool(text) and whole_pending
        if not text and not whole_pending and window is not None and self.loaded_once:
            # Back to the whole result, whose count is known: nothing to count again.
            self._stop_counting()
            self._blocks.clear()
            self.total = self.unfiltered_total
            self._size_to_rows()
            self.refresh()
        elif self._counts_apart(window, text):
            self._first_block_then_count(window, text)
        else:
            self._stop_counting()
            self._recount()
        if window is not None:
            self._start_counting(window)
        self._place_cursor(keep, 0)
        self._announce()

    @staticmethod
    def _counts_apart(window: RowWindow | None, text: str) -> TypeGuard[Window]:
        """Whether ``window`` (filtered by ``text``) is counted by a worker, after its first rows."""
        return isinstance(window, Window) and (window.count_in_background if text.strip()
                                               else window.count_whole_in_background)

    def _first_block_then_count(self, window: Window, text: str) -> None:
        """Read the first block of rows (``total`` is what it holds); when it is full, the
        count follows from the worker ``_start_counting`` starts (``counting`` until then)."""
        self._stop_counting()
        self._blocks.clear()
        self.reads += 1
        first = window.rows(0, BLOCK, text)  # walked from the top: no count needed
        self._blocks[0] = first
        self._measure(first)  # as any block read: a column whose values are cut may take room
        self.total = len(first)
        self.counting = len(first) == BLOCK
        self._size_to_rows()
        self.refresh()

    def _start_counting(self, window: RowWindow) -> None:
        """Start the worker for what is still to count: the (filtered) result, and under a
        filter the whole one, on the table's own connection."""
        texts = ([self.filter_text] if self.counting else []) + (
            [""] if self.unfiltered_counting and self.filter_text else [])
        if not texts or not isinstance(window, Window):
            return
        self._count(window, tuple(texts))

    def _wanted(self, window: RowWindow, text: str) -> bool:
        """Whether a count of ``window`` filtered by ``text`` is still wanted (not stale)."""
        if window is not self.window:
            return False
        return (self.counting and text == self.filter_text) or (
            self.unfiltered_counting and not text and bool(self.filter_text))

    @work(thread=True, exclusive=True, exit_on_error=False, group="list-count", description="count matches")
    def _count(self, window: Window, texts: tuple[str, ...]) -> None:
        for text in texts:
            total = self._count_one(window, text)
            if total is None:
                return  # stale, or the table is gone
            if total < 0:
                self.app.call_from_thread(self._count_here, window, text)
                return
            # The connection is let go of before the UI thread is asked anything: it may be closing it.
            self.app.call_from_thread(self.count_arrived, window, text, total)

    def _count_one(self, window: Window, text: str) -> int | None:
        """On the worker's thread: the count of ``window`` filtered by ``text``; None when it went
        stale or the table is gone, -1 when it was interrupted time and again."""
        def stale() -> bool:
            return not self._wanted(window, text)

        try:
            with self._counter.use(stale) as replica:
                counter = replace(window, conn=replica.conn)
                for _attempt in range(3):
                    try:
                        return int(counter.count(text))
                    except sqlite3.OperationalError:
                        # Interrupted: a newer key cancelled the count before this one (SQLite then
                        # also stops statements that start before the cancelled one has returned):
                        # count again unless this one is stale too.
                        if stale():
                            return None
        except SideClosed:
            return None
        return -1

    def _count_here(self, window: Window, text: str) -> None:
        """The worker could not count (interrupted time and again): count on this thread."""
        if self._wanted(window, text):
            self.reads += 1
            self.count_arrived(window, text, window.count(text))

    def show(self, window: RowWindow, *, total: int, counting: bool) -> None:
        """Show ``window`` whose first ``total`` rows are known, without counting it; with
        ``counting``, the true count comes later (``count_arrived``), or at once from the
        window's ``count`` when ``G`` needs the true end. The cursor goes to the top."""
        self._stop_counting()
        self._refresh_states()
        self._ident_widths.clear()
        self._content_widths.clear()
        self._layout()
        self.window = window
        self._blocks.clear()
        self.filter_text = ""
        self.total = self.unfiltered_total = total
        self.counting = counting
        self.unfiltered_counting = False
        self._size_to_rows()
        self.refresh()
        self.loaded_once = True
        self._place_cursor(None, 0)
        self._announce()

    def count_arrived(self, window: RowWindow, text: str, total: int) -> None:
        """The count of ``window`` (filtered by ``text``) from a worker; dropped when a newer
        key or a reload made it stale."""
        if window is not self.window:
            return  # a reload made this count stale
        if not text and self.filter_text:
            # The whole result's count, under a filter: the list itself stays as it is.
            if self.unfiltered_counting:
                self.unfiltered_counting = False
                self.unfiltered_total = total
                self._announce()
            return
        if text != self.filter_text or not self.counting:
            return  # a newer key made this count stale
        self.counting = False
        self._drop_short_blocks()
        self.total = total
        if not text:
            self.unfiltered_total = total
        if self._pending_place is not None:
            place, self._pending_place = self._pending_place, None
            self._size_to_rows()
            self._place_cursor(*place)
        self._size_to_rows()
        self.refresh()
        self._announce()

    def _stop_counting(self) -> None:
        """Cancel a count under way: its statement is interrupted, its result never shown."""
        if self.counting or self.unfiltered_counting:
            self._counter.interrupt()
        self.counting = False

    def finish_count(self) -> None:
        """Count now, on this thread, if a count is under way (``G`` needs the true end); the
        whole result's count under a filter, if it was under way too, goes on apart."""
        if self.counting and self.window is not None:
            self._stop_counting()
            self.reads += 1
            self._drop_short_blocks()
            self.total = self.window.count(self.filter_text)
            if not self.filter_text:
                self.unfiltered_total = self.total
            self._size_to_rows()
            self.refresh()
            self._start_counting(self.window)
            self._announce()

    def _drop_short_blocks(self) -> None:
        """Forget blocks read while only the first rows were known: they may end early."""
        for block_no in [n for n, block in self._blocks.items() if len(block) < BLOCK]:
            del self._blocks[block_no]

    def on_unmount(self) -> None:
        self._stop_counting()
        self._counter.close()  # waits for a count under way to let go of the connection

    def _announce(self) -> None:
        """Post Changed from the table itself: a message made while an ancestor handles one of
        its own (the filter box's Changed, in the ListPanel) counts that ancestor as its sender
        and stops bubbling there, and the screen would never hear of the new count."""
        self.call_next(lambda: self.post_message(self.Changed(self)))

    # ------------------------------------------------------------------ reading

    def _refresh_states(self) -> None:
        if self.source.entity:
            self._states = self.crm.replica.outbox.unsynced_ids(self.source.entity)

    def _recount(self) -> None:
        self._stop_counting()
        self._blocks.clear()
        self.reads += 1
        self.total = self.window.count(self.filter_text) if self.window is not None else 0
        self._size_to_rows()
        self.refresh()

    def _cached_position(self, key: str) -> int | None:
        for block_no, block in self._blocks.items():
            for i, row in enumerate(block):
                if self.source.row_key(row) == key:
                    return block_no * BLOCK + i
        return None

    def _place_cursor(self, key: str | None, row: int) -> None:
        if not self.total:
            self.cursor_row = 0
            self.scroll_to(y=0, animate=False, immediate=True)
            return
        row = max(0, min(row, self.total - 1))
        self.row_at(row)  # reads the block where the cursor was: the row is most likely still there
        found = self._cached_position(key) if key is not None else None
        self.cursor_row = -1
        self.move_cursor(row=found if found is not None else row)

    # ------------------------------------------------------------------ cursor and keys

    @property
    def _rows_in_view(self) -> int:
        return max(1, (self.scrollable_content_region.height - self.header_height) // self.source.row_height)

    def _scroll_to_cursor(self) -> None:
        h = self.source.row_height
        top = self.cursor_row * h
        view = max(h, self.scrollable_content_region.height - self.header_height)
        y = self.scroll_y
        if top < y:
            y = top
        elif top + h > y + view:
            y = -(-(top + h - view) // h) * h  # whole rows: a card never stops cut at the top
        if y != self.scroll_y:
            self.scroll_to(y=y, animate=False, immediate=True)

    def _refresh_row(self, index: int) -> None:
        if index < 0:
            return
        h = self.source.row_height
        self.refresh_lines(index * h + self.header_height, h)

    def _post_highlighted(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RowHighlighted(self, self.cursor_row, RowKey(key)))  # type: ignore[arg-type]

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.finish_count()
        self.move_cursor(row=self.total - 1)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * self._rows_in_view)

    def action_select(self) -> None:
        key = self.current_key
        if key is None:
            raise SkipAction()
        self.post_message(self.RowSelected(self, self.cursor_row, RowKey(key)))  # type: ignore[arg-type]

    async def _on_click(self, event: events.Click) -> None:
        y = event.y - self.header_height
        if y < 0:
            return
        index = int(self.scroll_y + y) // self.source.row_height
        if index >= self.total:
            return
        if index == self.cursor_row:
            self.action_select()
        else:
            self.move_cursor(row=index, scroll=False)

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    # ------------------------------------------------------------------ columns

    def _layout(self) -> bool:
        """Fix the column widths for the current width; True if they changed.

        Columns give way (are hidden) in their stated order until the fixed columns and the
        flexible one's minimum fit; identifying columns take the width of their longest value."""
        width = self.size.width or self.app.size.width
        wide = width >= self.source.wide_at
        cols = self.source.columns(wide)
        # cell padding on both sides of each column, and room for the vertical scrollbar
        room = width - self.styles.scrollbar_size_vertical
        natural = [self._ident_widths.get(c.key, c.width) if c.ident and c.width is not None else c.width
                   for c in cols]

        def need(shown: list[int]) -> int:
            return sum((natural[i] or cols[i].min_width) + 2 * self.cell_padding for i in shown)

        shown = list(range(len(cols)))
        yielding = sorted((i for i, c in enumerate(cols) if c.give_way > 0 and not c.ident),
                          key=lambda i: (cols[i].give_way, i), reverse=True)
        for i in yielding:
            if need(shown) <= room:
                break
            shown.remove(i)
        fixed = sum((natural[i] or 0) + 2 * self.cell_padding for i in shown)  # with the flexible one's padding
        flex = max(6, room - fixed)
        widths: list[int] = [w if (w := natural[i]) is not None else flex for i in shown]
        # Room the flexible column's own values leave over goes to the columns whose values are
        # cut, the last to give way first (a customer's name before the team).
        flexible = [at for at, i in enumerate(shown) if natural[i] is None]
        if flexible:
            flex_col = cols[shown[flexible[0]]]
            spare = flex - max(flex_col.min_width, self._content_widths.get(flex_col.key, 0))
            needy = sorted((at for at, i in enumerate(shown)
                            if natural[i] is not None and not cols[i].ident
                            and self._content_widths.get(cols[i].key, 0) > widths[at]),
                           key=lambda at: (cols[shown[at]].give_way, at))
            for at in needy:
                if spare <= 0:
                    break
                extra = min(spare, self._content_widths[cols[shown[at]].key] - widths[at])
                widths[at] += extra
                spare -= extra
                flex -= extra
            widths[flexible[0]] = flex
        if (wide, flex, widths, width, shown) == (self._wide, self._flex_width, self._widths, self._layout_width,
                                                   self._shown) and self._columns:
            return False
        self._wide, self._flex_width, self._widths, self._shown = wide, flex, widths, shown
        self._all_columns = cols
        self._columns = [cols[i] for i in shown]
        self.hidden_columns = [c.label or c.key for i, c in enumerate(cols) if i not in shown]
        self.tooltip = (f"Hidden at this width: {', '.join(self.hidden_columns)}. A wider terminal shows them."
                        if self.hidden_columns else None)
        self._layout_width = width
        self._strips.clear()
        self._size_to_rows()
        return True

    def _size_to_rows(self) -> None:
        """The virtual height: the rows, plus for multi-line rows the few lines that make the
        last scroll position a whole row, so the list always stops between rows."""
        h = self.source.row_height
        height = self.total * h + self.header_height
        if h > 1:
            view = self.scrollable_content_region.height - self.header_height
            if self.total * h > view > 0:
                height += view % h
        self.virtual_size = Size(self._layout_width, height)

    def validate_scroll_y(self, value: float) -> float:
        """Rows of several lines (pipeline cards) scroll whole: the top one is never cut."""
        value = super().validate_scroll_y(value)
        h = self.source.row_height
        return value if h == 1 else float(int(value) // h * h)

    def validate_scroll_target_y(self, value: float) -> float:
        value = super().validate_scroll_target_y(value)
        h = self.source.row_height
        return value if h == 1 else float(int(value) // h * h)

    def _on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        if self.source.row_height > 1 and not (event.ctrl or event.shift):
            event.stop()
            self.scroll_to(y=self.scroll_y + self.source.row_height, animate=False, immediate=True)
        else:
            super()._on_mouse_scroll_down(event)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.source.row_height > 1 and not (event.ctrl or event.shift):
            event.stop()
            self.scroll_to(y=self.scroll_y - self.source.row_height, animate=False, immediate=True)
        else:
            super()._on_mouse_scroll_up(event)

    def _measure(self, block: list[dict[str, Any]]) -> None:
        """Measure a block just read: an identifying column widens to its longest value (a number
        is never cut), and the longest cell of every column is kept, so room the flexible column
        does not need goes to a column whose values are cut. Lays the columns out again (and
        redraws) when one grew."""
        grew = False
        for col in self._all_columns:
            if not col.ident or col.width is None:
                continue
            longest = max((len(str(row.get(col.key) or "")) for row in block), default=0)
            if longest > self._ident_widths.get(col.key, col.width):
                self._ident_widths[col.key] = longest
                grew = True
        if self._all_columns and any(not c.ident for c in self._all_columns):
            longest_cells = [0] * len(self._all_columns)
            for row in block:
                cells = self.source.cells(row, self._row_context(row))
                if len(cells) != len(self._all_columns):
                    break
                for i, cell in enumerate(cells):
                    text = cell if isinstance(cell, Text) else plain(cell)
                    width = max((line.cell_len for line in text.split("\n")), default=0)
                    longest_cells[i] = max(longest_cells[i], width)
            for col, width in zip(self._all_columns, longest_cells, strict=True):
                if width > self._content_widths.get(col.key, 0):
                    self._content_widths[col.key] = width
                    grew = True
        if grew and self._layout():
            self.refresh()

    def on_resize(self) -> None:
        self._size_to_rows()
        if self._layout() and self.loaded_once:
            self._scroll_to_cursor()
            self.refresh()

    # ------------------------------------------------------------------ rendering

    def _row_context(self, row: dict[str, Any]) -> RowContext:
        state = self._states.get(self.source.row_key(row)) if self._states else None
        self._drawn_at = self.crm.now()
        return RowContext(self, state, self._wide, self._drawn_at, self._flex_width)

    def _shown_cells(self, row: dict[str, Any]) -> list[Any]:
        """The row's cells for the columns shown (the source renders one per column it gave)."""
        cells = self.source.cells(row, self._row_context(row))
        if len(cells) != len(self._all_columns) or len(self._shown) == len(cells):
            return cells
        return [cells[i] for i in self._shown]

    def _header_cells(self) -> list[Text]:
        """The labels; when columns gave way the flexible column's header (else the last one)
        names them, so a narrow terminal says what it hides."""
        labels = [Text(c.label) for c in self._columns]
        if self.hidden_columns and labels:
            at = next((i for i, c in enumerate(self._columns) if c.width is None), len(labels) - 1)
            hint = "+" + ", ".join(self.hidden_columns)
            for shorter in (f"+{len(self.hidden_columns)} more", f"+{len(self.hidden_columns)}"):
                if labels[at].cell_len + 1 + len(hint) <= self._widths[at]:
                    break
                hint = shorter  # the tooltip names them
            gap = self._widths[at] - labels[at].cell_len - len(hint)
            labels[at] = Text(f"{labels[at].plain}{' ' * max(1, gap)}{hint}", justify="left")
            labels[at].stylize("dim", len(labels[at].plain) - len(hint))
        return labels

    def _line_of_cells(self, cells: list[Text]) -> list[Text]:
        """The row's lines: each cell cut (with an ellipsis) or padded to its column's width."""
        pad = " " * self.cell_padding
        lines: list[Text] = []
        for line_no in range(self.source.row_height):
            line = Text(no_wrap=True, end="")
            for cell, width in zip(cells, self._widths, strict=False):
                parts = cell.split("\n", allow_blank=True) if "\n" in cell.plain else [cell]
                part = parts[line_no].copy() if line_no < len(parts) else Text("")
                part.truncate(width, overflow="ellipsis")
                room = width - part.cell_len
                if room > 0:
                    if cell.justify == "right":
                        part.pad_left(room)
                    else:
                        part.pad_right(room)
                line.append(pad)
                line.append_text(part)
                line.append(pad)
            lines.append(line)
        return lines

    def _strips_for(self, cells: list[Text], style: Style, width: int, cursor: Style | None = None) -> list[Strip]:
        """Rendered lines: ``style`` under the cells' own styles, the ``cursor`` style over them."""
        console = self.app.console
        out = []
        for line in self._line_of_cells(cells):
            segments = Segment.apply_style(line.render(console), style, post_style=cursor)
            out.append(Strip(segments).extend_cell_length(width, style + (cursor or Style())).crop(0, width))
        return out

    def _header_strip(self, width: int) -> Strip:
        key = ("header", width)
        strips = self._strips.get(key)
        if strips is None:
            style = self.get_component_rich_style("window-table--header")
            strips = self._strips_for(self._header_cells(), self.rich_style, width, style)
            self._strips[key] = strips
        return strips[0]

    def _row_strips(self, index: int, row: dict[str, Any], width: int) -> list[Strip]:
        key_of_row = self.source.row_key(row)
        cursor = index == self.cursor_row
        state = self._states.get(key_of_row) if self._states else None
        key = (key_of_row, repr(row), state, cursor and (self.has_focus, True), width)
        strips = self._strips.get(key)
        if strips is not None:
            self._strips.move_to_end(key)
            return strips
        self.rows_rendered += 1
        cursor_style = self.get_component_rich_style("window-table--cursor") if cursor else None
        cells = [c if isinstance(c, Text) else plain(c) for c in self._shown_cells(row)]
        strips = self._strips_for(cells, self.rich_style, width, cursor_style)
        self._strips[key] = strips
        while len(self._strips) > STRIPS_KEPT:
            self._strips.popitem(last=False)
        return strips

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y < self.header_height:
            return self._header_strip(width) if self._columns else Strip.blank(width, self.rich_style)
        line = int(self.scroll_y) + y - self.header_height
        index, sub = divmod(line, self.source.row_height)
        row = self.row_at(index) if index < self.total else None
        if row is None:
            return Strip.blank(width, self.rich_style)
        return self._row_strips(index, row, width)[sub]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def clock_moved(self) -> None:
        """The app's clock moved on: the rows in view are drawn again ("31 s ago" becomes
        "1 min ago", an SLA falls overdue) from the rows already read; nothing is re-read, and
        nothing is drawn again while the clock stands still (a frozen clock)."""
        if self._strips and self.crm.now() != self._drawn_at:
            self._strips.clear()
            self.refresh()


# The name the screens knew the list by before it became a window.
PagedTable = WindowTable


class ListPanel(Vertical):
    """A WindowTable with its `/` filter box and an empty-state text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="list.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="list.clear_filter"),
    ]
    DEFAULT_CSS = """
    ListPanel {
        height: 1fr;
        & > .list-filter {
            display: none;
            height: 1;
            margin: 0 1;
        }
        & > .empty-state {
            display: none;
            height: auto;
            padding: 1 2;
            color: $text-muted;
        }
        &.-empty {
            & > .empty-state {
                display: block;
            }
            & > WindowTable {
                height: 1;
            }
        }
    }
    """

    def __init__(self, source: ListSource, *, empty: str, table_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.empty_text = empty
        self.table = WindowTable(source, id=table_id)

    def compose(self) -> ComposeResult:
        yield CrmInput(placeholder="filter the whole list; esc clears", classes="list-filter", compact=True)
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
        if event.value != self.filter_box.value:
            return  # a newer key is on its way: filter for that one
        self.table.set_filter(event.value)

    @on(CrmInput.Submitted, ".list-filter")
    def _filter_done(self, event: CrmInput.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.filter_box.display = False
            self.remove_class("-filtering")
        self.table.focus()

    @on(WindowTable.Changed)
    def _update_empty(self, event: WindowTable.Changed) -> None:
        empty = self.query_one(".empty-state", Static)
        is_empty = self.table.row_count == 0 and self.table.loaded_once
        if is_empty:
            empty.update(Content("No rows match the filter." if self.table.filter_text else self.empty_text))
        self.set_class(is_empty, "-empty")
