"""The deal pipeline: one column per stage, deals by close date; move them with one key."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from cache.errors import ReplicaError
from cache.reads import StageSummary
from crm_tui.core.domain import DEAL_STAGES, ValidationError, value_label
from crm_tui.core.text import grouped
from screens.base import CrmScreen
from screens.counting import CountApart
from screens.display import MARKS, compact_money, compact_totals, stage_name
from screens.exporting import ExportPlan
from screens.form_specs import deal_form, deal_outcome_form
from screens.navigation import open_customer
from screens.pickers import ConfirmModal
from screens.tables import Column, ListSource, RowContext, WindowTable
from screens.task_forms import follow_up

OUTCOMES = ("won", "lost")
OPEN_STAGES = tuple(s for s in DEAL_STAGES if s not in OUTCOMES)


def fit_totals(totals: dict[str, int], width: int) -> str:
    """A stage's totals in ``width`` cells, no amount ever cut: those that fit whole, then '+N'
    for the N currencies that do not ('124k USD +1'), or only '+' where '+N' does not fit
    ('11.4M EUR +')."""
    parts = [compact_money(v, c or None) for c, v in totals.items() if v] or ["-"]
    shown = parts[0]
    for i in range(1, len(parts)):
        rest = len(parts) - i - 1
        more = f"{shown} + {parts[i]}"
        if len(more) + (len(f" +{rest}") if rest else 0) > width:
            counted = f"{shown} +{len(parts) - i}"
            return counted if len(counted) <= width else f"{shown} +" if len(shown) + 2 <= width else shown
        shown = more
    return shown


class StageTable(WindowTable):
    """A stage's deals; left/right move between stages instead of scrolling sideways."""

    DEFAULT_CSS = """
    StageTable {
        padding-left: 1;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "screen.focus_stage(-1)", "Previous stage", show=False, id="pipeline.prev_stage"),
        Binding("right,l", "screen.focus_stage(1)", "Next stage", show=False, id="pipeline.next_stage"),
    ]


class PipelineScreen(CrmScreen):
    LABEL = "Pipeline"
    HELP = ("Deals by stage, soonest close date first, with the count and total of each stage. h/l (or the "
            "arrows) move between stages, j/k between deals. > and < move an open deal to the next or previous "
            "open stage; w marks it won and x lost (each asks when it closed, and a lost deal why: they are "
            "outcomes, not stages), < on a won or lost deal offers to reopen it. Each card shows the deal, its "
            "customer, its amount and close date; a stage's header its deals and their total per currency (where the "
            "column is narrow, +2 counts two more currencies that did not fit, + alone some more). e edits it, enter opens its customer, m shows only your "
            "deals, f makes a follow-up task about the deal.")
    DEFAULT_CSS = """
    PipelineScreen {
        & #pipeline-board {
            height: 1fr;
        }
        & .stage-column {
            width: 1fr;
            height: 1fr;
            border-right: vkey $primary-muted;
        }
        & .stage-header {
            height: 2;
            padding: 0 0 0 1;
            background: $boost;
            text-wrap: nowrap;
            text-overflow: ellipsis;
        }
        & .stage-empty {
            padding: 0 1;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("greater_than_sign,L", "move(1)", "Next stage", id="pipeline.forward"),
        Binding("less_than_sign,H", "move(-1)", "Prev stage", id="pipeline.back"),
        Binding("w", "mark('won')", "Won", id="pipeline.won"),
        Binding("x", "mark('lost')", "Lost", id="pipeline.lost"),
        Binding("e", "edit", "Edit", id="pipeline.edit"),
        Binding("f", "follow_up", "Follow-up", id="pipeline.follow_up"),
        Binding("m", "toggle_mine", "Mine/all", id="pipeline.mine"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.only_mine = False
        self._follow: tuple[str, str] | None = None
        self._customers: dict[str, str] = {}
        # Each stage's count and totals look at every deal: counted apart, shown when they come.
        self.stage_counts = CountApart[list[StageSummary]](self, "pipeline-totals")
        self._totals_of: tuple[str | None] | None = None  # whose deals the headers total (mine or all)
        self._summaries: dict[str, Any] | None = None  # None: being counted

    def compose_body(self):
        with Horizontal(id="pipeline-board"):
            for stage in DEAL_STAGES:
                with Vertical(classes="stage-column", id=f"stage-{stage}"):
                    yield Static(classes="stage-header", id=f"stage-header-{stage}")
                    yield StageTable(self._source(stage), id=f"stage-table-{stage}", show_header=False,
                                     cell_padding=0)
                    yield Static("no deals", classes="empty-state stage-empty", id=f"stage-empty-{stage}")

    def _owner(self) -> str | None:
        if not self.only_mine:
            return None
        me = self.replica.reads.me() or {}
        return me.get("id") or None

    def _source(self, stage: str) -> ListSource:
        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            mark = MARKS.get(ctx.state or "", "")
            title = Text(f"{mark} " if mark else "", style=ctx.tone("text-warning"), no_wrap=True)
            title.append(row.get("title") or row["id"])
            title.append("\n")
            title.append(self._customer(row.get("customer_id")), style=ctx.tone("text-accent"))
            title.append("\n")
            amount = compact_money(row.get("amount"), row.get("currency"))
            when = f"  {row.get('close_date') or ''}" if ctx.flex_width >= 22 else ""
            title.append(amount + when, style=ctx.tone("text-muted"))
            return [title]

        return ListSource(
            columns=lambda wide: [Column("deal", "deal")], cells=cells, entity="deal", row_height=3,
            window=lambda: self.replica.lists.deals_in_stage(stage, owner_id=self._owner()),
        )

    def _customer(self, customer_id: str | None) -> str:
        if not customer_id:
            return ""
        if customer_id not in self._customers:
            record = self.replica.get("customer", customer_id)
            self._customers[customer_id] = (record or {}).get("name") or customer_id
        return self._customers[customer_id]

    def table(self, stage: str) -> StageTable:
        return self.query_one(f"#stage-table-{stage}", StageTable)

    def export_plan(self) -> ExportPlan:
        """`:export`: every stage's deals, stage by stage in board order (mine only when so)."""
        lists = [(self.table(stage).window, "") for stage in DEAL_STAGES if self.table(stage).window is not None]
        view = "only my deals" if self.only_mine else "all deals in the replica"
        return ExportPlan("pipeline", f"{view}, every stage ({', '.join(stage_name(s) for s in DEAL_STAGES)})", lists,
                          noun="deal")

    # ------------------------------------------------------------------ data

    def on_mount(self) -> None:
        super().on_mount()
        self.table(DEAL_STAGES[0]).focus()

    def refresh_data(self) -> None:
        self._customers.clear()
        owner = self._owner()
        summaries = self.replica.reads.pipeline_cached(owner)
        if summaries is not None:  # the hot cache has them for the replica as it is now
            self.stage_counts.drop()
            self._show_totals(summaries)
        else:
            if self._totals_of != (owner,):
                # Other deals (mine, all): never the last totals. The same board read again (a
                # save, a sync) keeps its last totals until the new ones come.
                self._show_totals(None)
            self.stage_counts.ask(lambda replica: replica.reads.pipeline(owner), self._show_totals)
        self._totals_of = (owner,)
        for stage in DEAL_STAGES:
            table = self.table(stage)
            table.reload()
            self.query_one(f"#stage-empty-{stage}").display = table.row_count == 0
        if self._follow is not None:
            stage, deal_id = self._follow
            self._follow = None
            table = self.table(stage)
            table.focus()
            try:
                table.move_cursor(row=table.get_row_index(deal_id), animate=False)
            except KeyError:  # the deal left the board (another owner, say)
                pass

    def _show_totals(self, summaries: list[StageSummary] | None) -> None:
        """Each stage's header: its name, how many deals and their total (None: being counted)."""
        self._summaries = None if summaries is None else {s.stage: s for s in summaries}
        self._show_headers()

    def _show_headers(self) -> None:
        """Each stage's name, count and totals ('4 · 238k USD'). When a column is too narrow for
        that, the totals go on a line of their own in every header (the cards stay aligned), as
        many currencies as fit whole and '+N' for the rest: an amount is never cut."""
        if self._summaries is None:
            for stage in DEAL_STAGES:
                header = self.query_one(f"#stage-header-{stage}", Static)
                header.styles.height = 2
                header.update(Content.assemble((stage_name(stage), "bold"), "\n", ("counting…", "$text-muted")))
            return
        rows = []
        for stage in DEAL_STAGES:
            summary = self._summaries.get(stage)
            header = self.query_one(f"#stage-header-{stage}", Static)
            # The header's text width (size is inside its padding); an unlaid column: its share of the screen.
            width = header.size.width or (self.size.width or self.app.size.width) // len(DEAL_STAGES) - 2
            rows.append((stage, header, summary.count if summary else 0, summary.totals if summary else {}, width))
        tall = any(len(grouped(count)) + 3 + len(compact_totals(totals)) > width for _, _, count, totals, width in rows)
        for stage, header, count, totals, width in rows:
            header.styles.height = 3 if tall else 2
            if tall:
                text = Content.assemble((stage_name(stage), "bold"), "\n", (grouped(count), "bold"),
                                        (" deal" if count == 1 else " deals", "$text-muted"), "\n",
                                        (fit_totals(totals, width), "$text-muted"))
            else:
                text = Content.assemble((stage_name(stage), "bold"), "\n", (grouped(count), "bold"),
                                        (f" · {compact_totals(totals)}", "$text-muted"))
            header.update(text)

    def on_resize(self, event: events.Resize) -> None:
        if self._summaries:
            self.call_after_refresh(self._show_headers)  # once the columns have their new widths

    def on_unmount(self) -> None:
        self.stage_counts.close()

    # ------------------------------------------------------------------ keys

    def _focused_stage(self) -> str:
        focused = self.focused
        if isinstance(focused, StageTable) and focused.id:
            return focused.id.removeprefix("stage-table-")
        return DEAL_STAGES[0]

    def current_deal(self) -> dict[str, Any] | None:
        row = self.table(self._focused_stage()).current_row()
        return self.replica.get("deal", row["id"]) if row else None

    def action_focus_stage(self, step: int) -> None:
        index = DEAL_STAGES.index(self._focused_stage())
        target = DEAL_STAGES[max(0, min(len(DEAL_STAGES) - 1, index + step))]
        self.table(target).focus()

    def _set_stage(self, deal: dict[str, Any], stage: str) -> None:
        try:
            result = self.crm.save("update", "deal", {"stage": stage}, record_id=deal["id"])
        except (ValidationError, ReplicaError) as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"{deal.get('title')}: {stage_name(deal.get('stage'))} → {stage_name(stage)}", timeout=3)
        self.crm.saver.after_save(result, lambda _record: self._follow_deal(stage, deal["id"]))

    def _follow_deal(self, stage: str, deal_id: str) -> None:
        """Once the move is in the replica, the cursor goes with the deal to its new column."""
        self._follow = (stage, deal_id)
        if self.is_mounted:
            self.refresh_data()

    def action_move(self, step: int) -> None:
        """Move an open deal one stage along the open stages. Won and lost are outcomes, not
        stages: a closed deal is only reopened (to negotiation) after a yes."""
        deal = self.current_deal()
        if deal is None:
            self.app.notify("No deal selected.", severity="warning")
            return
        stage = deal.get("stage")
        title = deal.get("title") or deal["id"]
        if stage in OUTCOMES:
            if step > 0:
                self.app.notify(f"{title} is {value_label(stage)}: an outcome, there is no next stage.", severity="warning")
                return
            self._confirm(f"Reopen {title}?", f"It is marked {value_label(stage)}; reopening puts it back in {stage_name(OPEN_STAGES[-1])}.",
                          deal, OPEN_STAGES[-1])
            return
        index = OPEN_STAGES.index(stage) if stage in OPEN_STAGES else 0
        target = index + step
        if target >= len(OPEN_STAGES):
            self.app.notify(f"{title} is in the last open stage: {self.crm.key_for('pipeline.won')} marks it won, "
                            f"{self.crm.key_for('pipeline.lost')} lost.")
            return
        if target < 0:
            return
        self._set_stage(deal, OPEN_STAGES[target])

    def action_mark(self, stage: str) -> None:
        """Won or lost, with the close date (and why, when lost): an outcome is not a step along
        the board."""
        deal = self.current_deal()
        if deal is None:
            self.app.notify("No deal selected.", severity="warning")
            return
        if deal.get("stage") == stage:
            self.app.notify(f"{deal.get('title')} is already marked {value_label(stage)}.")
            return
        was = deal.get("stage")
        if was in OUTCOMES:
            # Turning one outcome into the other rewrites what was recorded: asked first.
            def answered(yes: bool | None) -> None:
                if yes:
                    self._mark(deal, stage)

            title = deal.get("title") or deal["id"]
            self.app.push_screen(ConfirmModal(
                f"{title} was {value_label(was)}; mark it {value_label(stage)} instead?",
                f"It is recorded as {value_label(was)}"
                + (f" (closed {deal['close_date']})" if deal.get("close_date") else "")
                + f". y marks it {value_label(stage)}, n keeps it."), answered)
            return
        self._mark(deal, stage)

    def _mark(self, deal: dict[str, Any], stage: str) -> None:

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.app.notify(f"{deal.get('title')}: {stage_name(deal.get('stage'))} → {stage_name(stage)}", timeout=3)
                self.crm.saver.after_save(result, lambda _record: self._follow_deal(stage, deal["id"]))

        self.app.push_screen(deal_outcome_form(self.crm, deal, stage), saved)

    def _confirm(self, question: str, detail: str, deal: dict[str, Any], stage: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._set_stage(deal, stage)

        self.app.push_screen(ConfirmModal(question, detail), answered)

    def action_follow_up(self) -> None:
        deal = self.current_deal()
        if deal is None:
            self.crm.notify("No deal selected.", severity="warning")
            return
        follow_up(self.crm, deal.get("customer_id"), deal=deal)

    def action_edit(self) -> None:
        deal = self.current_deal()
        if deal is None:
            return

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.crm.saver.after_save(result, lambda record: self._follow_deal(
                    (record or {}).get("stage") or deal["stage"], deal["id"]))

        self.app.push_screen(deal_form(self.crm, deal["customer_id"], deal), saved)

    def action_toggle_mine(self) -> None:
        self.only_mine = not self.only_mine
        self.app.notify("Only your deals" if self.only_mine else "All deals in your replica", timeout=2)
        self.refresh_data()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        deal = self.current_deal()
        if deal is not None:
            open_customer(self.crm, deal.get("customer_id"), tab="deals")
