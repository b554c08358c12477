"""The app shell: sections, app-wide keys, the status line's data, and sync in a thread worker.

The main thread owns the replica it is given (one SQLite connection): every read and local
write happens here and takes a few milliseconds at most. Sync is a blocking callable run only
in a thread worker, with its own connection; it reports back through small typed messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.theme import Theme
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from cache.replica import Replica
from crm_tui.config import ConfigError, Settings
from crm_tui.config_file import set_value
from crm_tui.core.syncstate import EXIT_WIPED, SyncEvent, SyncReport, SyncRunner, failed_attempts_text
from crm_tui.core.text import plural, verb
from screens.commands import run_command
from screens.conflicts import ConflictsScreen
from screens.customer import Customer360Screen
from screens.display import ago
from screens.help import HelpScreen, binding_rows
from screens.host import StatusInfo
from screens.keys import APP_BINDINGS, all_binding_ids, binding_table
from screens.messages import SaveStep, SyncFinished, SyncProgress
from screens.order_detail import OrderDetailScreen
from screens.palette import CrmCommands
from screens.pickers import CommandLine, ConfirmModal
from screens.pipeline import PipelineScreen
from screens.rejected import RejectedScreen
from screens.reports import ReportsScreen
from screens.saving import Saver
from screens.search import SearchScreen
from screens.side_connection import SideClosed, SideConnection
from screens.sync_screen import SyncScreen
from screens.ticket_detail import TicketDetailScreen
from screens.tickets import TicketQueueScreen
from screens.today import TodayScreen
from screens.typeahead import TypeAhead

REMINDER_CHECK = 15  # seconds between looks for tasks that fell due (by the app's clock)
CLOCK_TICK = 5  # seconds between refreshes of the relative times on screen ("synced 30 s ago")
QUIET_TICKS = 2  # ticks of a sync run without a word from it before the status says it waits for the server
REMINDERS_SHOWN = 3  # at most this many reminder toasts at once; the rest are counted
# Seconds from a save to the sync it asks for: the saves typed meanwhile go in the same push.
NUDGE_DELAY = 1.0


class CrmApp(App[None]):
    """The terminal CRM over a local replica.

    ``sync_runner(on_event) -> SyncReport`` runs one blocking sync (None: offline only);
    "now" (overdue marks, relative times, what saves are stamped with) is the replica's clock,
    handed to it when it was opened (``Settings.make_clock``); ``server_label`` is shown on the sync screen only;
    ``config_path`` is the config file a theme chosen in the app is saved to (None: not kept);
    ``daemon_probe()`` is the pid of a sync daemon serving the replica (or None), and
    ``daemon_wake()`` asks that daemon to sync now (its pid, or None when none serves).
    """

    TITLE = "crm-tui"
    CSS_PATH = "app.tcss"
    MODES: ClassVar = {
        "search": SearchScreen,
        "tickets": TicketQueueScreen,
        "pipeline": PipelineScreen,
        "sync": SyncScreen,
        "conflicts": ConflictsScreen,
        "rejected": RejectedScreen,
        "reports": ReportsScreen,
        "today": TodayScreen,
    }
    DEFAULT_MODE = "search"
    COMMANDS = App.COMMANDS | {CrmCommands}
    BINDINGS: ClassVar[list[BindingType]] = APP_BINDINGS  # declared in screens/keys.py, the key table

    def __init__(
        self,
        replica: Replica,
        settings: Settings,
        *,
        sync_runner: SyncRunner | None = None,
        server_label: str | None = None,
        config_path: Path | None = None,
        daemon_probe: Callable[[], int | None] | None = None,
        daemon_wake: Callable[[], int | None] | None = None,
        quit_note: Callable[[bool], str] | None = None,
    ) -> None:
        super().__init__()
        # What else the quit question says (the demo: whether its files are kept), given whether
        # anything was saved in this replica.
        self.quit_note = quit_note
        # Who else syncs this replica: the pid of a sync daemon serving it, or None.
        self.daemon_probe = daemon_probe
        self.daemon_wake = daemon_wake
        self.replica = replica
        self.settings = settings
        self.sync_runner = sync_runner
        self.server_label = server_label
        self.config_path = config_path
        self.cursor_blink = settings.animations
        if not settings.animations:
            self.animation_level = "none"
        self.data_gen = 0
        self.status_changed: Signal[StatusInfo] = Signal(self, "status_changed")
        if sync_runner is None:
            self.sync_state = "offline (no server)"
        else:
            self.sync_state = "online" if settings.sync_in_app else "sync by daemon"
        self.sync_detail = ""
        self.last_report: SyncReport | None = None
        self.revoked_message: str | None = None  # set when an admin revoked this device
        self.last_error: str | None = None
        self._sync_worker: Worker | None = None
        self._nudge: Timer | None = None  # a sync asked for by a save, NUDGE_DELAY after it
        self._sync_again = False  # a save came while a sync ran: one more run after it
        self.sync_nudges = 0  # syncs that saves asked for (tests count them)
        self._daemon_failing = False  # the daemon's last attempts found no server
        self._sync_said: tuple[str, str] = ("", "")  # the running sync's last (phase, message)
        self._quiet_ticks = 0  # clock ticks since the running sync last said anything
        self._last_seen_sync: str | None = None
        self._keymap_errors = self._apply_keymap(settings.keymap)
        self.saver = Saver(self)
        self._reminded_until: dt.datetime | None = None  # tasks due up to here were reminded of
        # The status line's unsynced counts: read once here, so the first frame shows them;
        # after that by a worker on its own connection (``recount_status``), never on this thread.
        self._status_counts: dict[str, int] = replica.outbox.counts()
        # Its own connection (one thread at a time): the UI's reads never wait on a count.
        self._count_side = SideConnection(lambda: self.replica.reopen(cache_mb=2))
        self._counts_wanted = 0
        self._counts_running = False
        self.status_counts_read = 0  # counts the worker has brought back (tests count them)
        self.type_ahead = TypeAhead(self, super().on_event)

    # ------------------------------------------------------------------ setup

    def _apply_keymap(self, keymap: dict[str, str]) -> list[str]:
        """Rebind by id; returns the ids that name none of the app's bindings (Textual's own
        widget bindings may still match them, so they are applied all the same)."""
        known = set(binding_ids())
        self.set_keymap(dict(keymap))
        return sorted(k for k in keymap if k not in known)

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        else:
            self.notify(f"unknown theme {self.settings.theme!r}; using {self.theme}", severity="warning")
        if self._keymap_errors:
            self.notify(f"keymap: no binding called {', '.join(self._keymap_errors)}", severity="warning")
        if self.saver.queued:
            self.saver.start()  # saves queued when the app last quit
        if self.sync_runner is not None and self.settings.sync_in_app:
            self._background_sync()
            self.set_interval(self.settings.sync.interval, self._background_sync)
        else:
            # Someone else (the daemon) may sync this replica: notice when it has.
            if self.sync_runner is not None:
                self._note_daemon()
            self._last_seen_sync = self.replica.get_meta("last_sync_at")
            self.set_interval(self.settings.sync.interval, self._check_outside_sync)
        # Table cells carry colours of the theme they were drawn in.
        self.theme_changed_signal.subscribe(self, lambda _theme: self.data_changed())
        self.theme_changed_signal.subscribe(self, self._keep_theme)
        # Relative times ("synced 3 min ago") age even when nothing happens.
        self.set_interval(CLOCK_TICK, self.clock_tick)
        # Tasks that were due before the app opened are on the Today screen; reminders are for
        # those that fall due while it is open.
        self._reminded_until = self.now()
        self.set_interval(REMINDER_CHECK, self.check_reminders)
        if not self.cursor_blink:
            self.screen_change_signal.subscribe(self, self._stop_blinking)

    def _keep_theme(self, theme: Theme) -> None:
        """A theme chosen in the app (palette, `:theme`) is the next session's theme too."""
        if self.config_path is None or theme.name == self.settings.theme:
            return
        try:
            set_value(self.config_path, "theme", theme.name)
        except ConfigError as exc:
            self.notify(f"The theme is used now but not kept: {exc}", severity="warning")
            return
        self.settings.theme = theme.name

    def _stop_blinking(self, screen: Screen) -> None:
        """Textual's own inputs (the palette's) blink too; with animations off, none do."""

        def stop() -> None:
            for widget in screen.query("Input, TextArea"):
                widget.cursor_blink = False  # type: ignore[attr-defined]

        self.call_after_refresh(stop)

    def _note_daemon(self) -> None:
        """With the app's own background sync off, say truthfully whether a daemon syncs."""
        pid = self.daemon_probe() if self.daemon_probe is not None else None
        if pid:
            self._by_daemon(pid)
        elif self.daemon_probe is not None:
            self.sync_state = "no background sync"
            self.sync_detail = f"no sync daemon runs; {self.key_for('app.sync_now')} syncs now"

    def _by_daemon(self, pid: int | None) -> None:
        """A sync daemon (pid) syncs this replica: say so, and whether its server answers (the
        failed attempts its runs counted in the replica; the same words as the app's own runs)."""
        self.sync_state = "sync by daemon"
        failing = self.replica.history.failed_attempts()
        self._daemon_failing = failing is not None
        parts = [f"pid {pid}"] if pid else []
        if failing is not None:
            parts.append(failed_attempts_text(int(failing["count"]), failing.get("reason")))
        self.sync_detail = " · ".join(parts)

    def _check_outside_sync(self, publish: bool = True) -> None:
        if self.sync_runner is not None and self.sync_state in ("sync by daemon", "no background sync"):
            self._note_daemon()
            if publish:
                self.publish_status()
        last = self.replica.get_meta("last_sync_at")
        if last != self._last_seen_sync:
            self._last_seen_sync = last
            self.data_changed()

    def now(self) -> dt.datetime:
        """The replica's clock: one notion of now for what the app shows and what it saves."""
        return self.replica.clock()

    def check_reminders(self) -> int:
        """Toast a reminder for each of the user's open tasks (everyone's when nobody is signed
        in) that fell due, by the app's clock, since the last look; returns how many fell due."""
        now = self.now()
        since = self._reminded_until
        if since is None or now <= since:
            return 0
        self._reminded_until = now
        me = self.replica.reads.me()
        owner = me.get("id") if me else None
        due = self.replica.tasks.falling_due(since, now, owner_id=owner, limit=100)
        for task in due[:REMINDERS_SHOWN]:
            customer = self.replica.get("customer", task["customer_id"]) or {}
            self.notify(f"{task.get('title')} · {customer.get('name') or task['customer_id']}",
                        title="Due now", severity="warning", timeout=15)
        if len(due) > REMINDERS_SHOWN:
            self.notify(f"and {plural(len(due) - REMINDERS_SHOWN, 'more task')} due now: "
                        f"{self.key_for('app.today')} shows Today.", title="Due now", severity="warning", timeout=15)
        if due and isinstance(self.screen, TodayScreen):
            self.data_changed()  # overdue marks move
        return len(due)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """As App.notify, but plain text by default: messages carry record names and server
        errors, whose brackets are not markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def key_for(self, binding_id: str) -> str:
        """The key (as displayed) currently bound to ``binding_id``, after the keymap."""
        keys = self._keymap.get(binding_id)
        if keys:
            return keys.split(",")[0].replace("question_mark", "?").replace("colon", ":")
        for ident, keys, _does in binding_table():
            if ident == binding_id:
                return self.get_key_display(Binding(keys.split(",")[0], ""))
        return ""

    # ------------------------------------------------------------------ data and status

    def data_changed(self) -> None:
        """The replica changed (a save, a sync): the visible screen re-reads it now, the others
        when they come back."""
        self.data_gen += 1
        from screens.base import CrmScreen

        screen = self.screen
        if isinstance(screen, CrmScreen):
            screen.sync_data()
        self.publish_status()

    def status_info(self) -> StatusInfo:
        counts = self._status_counts
        me = self.replica.reads.me()
        tone = {"online": "text-success", "syncing": "text-accent", "sync by daemon": "text-success",
                "no background sync": "text-warning",
                "offline": "text-warning", "sync failed": "text-error"}.get(self.sync_state, "text-muted")
        if self.sync_state == "sync by daemon" and self._daemon_failing:
            tone = "text-warning"  # the daemon's server does not answer
        return StatusInfo(
            state=self.sync_state, tone=tone, detail=self.sync_detail,
            last_sync=ago(self.replica.get_meta("last_sync_at"), self.now()),
            pending=counts.get("pending", 0), conflicts=counts.get("conflicts", 0),
            rejected=counts.get("rejected", 0), queued=self.saver.queued, queue_waiting=self.saver.waiting,
            user=(me or {}).get("name", ""),
        )

    def publish_status(self) -> None:
        """Show the status line again now, with the last known unsynced counts; new counts
        follow from a worker (the replica may have changed)."""
        self.status_changed.publish(self.status_info())
        self.recount_status()

    def recount_status(self) -> None:
        """Count what is unsynced again, in a worker on its own connection: a burst of requests
        while a count runs makes one more count after it, never one per request."""
        self._counts_wanted += 1
        if self._counts_running:
            return
        self._counts_running = True
        self._count_status(self._counts_wanted)

    @work(thread=True, exit_on_error=False, group="status-counts", description="count unsynced")
    def _count_status(self, wanted: int) -> None:
        try:
            with self._count_side.use() as replica:
                counts = replica.outbox.counts()
        except SideClosed:
            return  # the app has ended
        except Exception:
            with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
                self.call_from_thread(self._counts_arrived, wanted, None)
            raise
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(self._counts_arrived, wanted, counts)

    def _counts_arrived(self, wanted: int, counts: dict[str, int] | None) -> None:
        self._counts_running = False
        if counts is not None:
            self.status_counts_read += 1
            if counts != self._status_counts:
                self._status_counts = counts
                self.status_changed.publish(self.status_info())
        if wanted != self._counts_wanted and counts is not None:
            self.recount_status()  # the replica changed again while this count ran

    def clock_tick(self) -> None:
        """Every few seconds: what says how long ago something was is said again by the app's
        clock (the status line, the rows in view), and a sync run that has not said anything for
        a while is shown waiting for the server."""
        from screens.base import CrmScreen

        if self._sync_worker is not None and self._sync_worker.is_running and self.sync_state == "syncing":
            self._quiet_ticks += 1
            phase, said = self._sync_said
            if self._quiet_ticks >= QUIET_TICKS and phase != "wait":
                self.sync_detail = f"{said} · waiting for the server" if said else "waiting for the server"
        elif self.sync_state == "sync by daemon":
            if self.settings.sync_in_app and self.daemon_probe is not None and not self.daemon_probe():
                self.sync_soon()  # the daemon is gone: the app syncs again itself, from now on
            else:
                # A daemon's run (one a save asked for, say) shows as soon as it has ended.
                self._check_outside_sync(publish=False)
        screen = self.screen
        if isinstance(screen, CrmScreen):
            screen.clock_moved()
        self.publish_status()

    # ------------------------------------------------------------------ sync

    def _background_sync(self) -> None:
        """The app's own background run (at start, every ``sync.interval``, after a save), unless
        a sync daemon serves the replica: then the status goes on saying so (no "syncing" for a
        run the app leaves to it) and shows what the daemon's runs did."""
        pid = self.daemon_probe() if self.daemon_probe is not None else None
        if pid:
            self._by_daemon(pid)
            self._check_outside_sync(publish=False)
            self.publish_status()
            return
        self.action_sync_now(quiet=True)

    def sync_soon(self) -> None:
        """A save queued a change for the server: push it soon, not at the next ``sync.interval``
        (and find out soon whether the server is there). One request for a burst: saves within
        NUDGE_DELAY of the first go in one sync; a save while a sync runs gets one more after it."""
        if self.sync_runner is None or self._nudge is not None:
            return
        self._nudge = self.set_timer(NUDGE_DELAY, self._nudged, name="sync soon")

    def _nudged(self) -> None:
        self._nudge = None
        if self._sync_worker is not None and self._sync_worker.is_running:
            self._sync_again = True  # that run may have read the outbox before the save
            return
        self.sync_nudges += 1
        # A daemon serving the replica syncs it (SIGUSR1, its "sync now"); the app reads the
        # result from the replica (``_check_outside_sync``).
        pid = self.daemon_wake() if self.daemon_wake is not None else None
        if pid:
            self._by_daemon(pid)
            self.publish_status()
        elif self.settings.sync_in_app:
            self._background_sync()

    def action_sync_now(self, quiet: bool = False) -> None:
        if self.sync_runner is None:
            self.notify("No server configured: working offline. `crm-tui login` connects one.",
                        severity="warning")
            return
        if self._sync_worker is not None and self._sync_worker.is_running:
            if not quiet:
                self.notify("A sync is already running.")
            return
        if self.sync_state == "offline":
            # Offline until the server answers: another try is no news until it does.
            self.sync_detail = "trying the server again"
        else:
            self.sync_state, self.sync_detail = "syncing", ""
        self._sync_said, self._quiet_ticks = ("", ""), 0
        self.publish_status()
        self._sync_worker = self._run_sync(periodic=quiet)

    @work(exclusive=True, exit_on_error=False, group="sync", description="sync")
    async def _run_sync(self, periodic: bool) -> SyncReport:
        runner = self.sync_runner
        assert runner is not None
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[SyncReport] = loop.create_future()

        def on_event(event: SyncEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
                self.call_from_thread(self.post_message, SyncProgress(event))

        def settle(outcome: Callable[[], None]) -> None:
            with contextlib.suppress(RuntimeError):  # the app ended: nobody waits for the outcome
                loop.call_soon_threadsafe(lambda: None if finished.done() else outcome())

        def run() -> None:
            try:
                # A background (periodic) run is left to a sync daemon if one serves the replica.
                report = runner(on_event, periodic=periodic)
            except BaseException as exc:  # the worker's error state reports it
                error = exc
                settle(lambda: finished.set_exception(error))
            else:
                settle(lambda: finished.set_result(report))

        # Not Textual's thread pool: the process would wait for its threads when the app ends,
        # so quitting while a push waits for a slow server would hang until the answer came.
        # What a sync left half-done when the process ends resumes with the next one (the
        # sync contract holds for a kill at any instant).
        threading.Thread(target=run, name="crm-sync", daemon=True).start()
        report = await finished
        self.post_message(SyncFinished(report))
        return report

    @on(SyncProgress)
    def _sync_progress(self, message: SyncProgress) -> None:
        event = message.event
        if event.phase in ("done", "error"):
            return
        self._sync_said, self._quiet_ticks = (event.phase, event.message), 0
        # Offline as soon as a request finds no server (the run goes on retrying); syncing again
        # as soon as it says anything else.
        self.sync_state = "offline" if event.phase == "offline" else "syncing"
        self.sync_detail = event.message
        self.publish_status()
        if event.search_ready or event.phase in ("snapshot", "backfill"):
            # Bootstrap pages land while the user may already be searching.
            self.data_changed()

    @on(SyncFinished)
    def _sync_finished(self, message: SyncFinished) -> None:
        report = message.report
        self.last_report = report
        self.sync_detail = ""
        self._last_seen_sync = self.replica.get_meta("last_sync_at")
        self._after_run()
        if report.revoked:
            # The local data is gone (or going): nothing more is shown; the launcher says why.
            self.revoked_message = report.summary
            self.exit(return_code=EXIT_WIPED)
            return
        if report.by_daemon:
            self._by_daemon(report.daemon_pid)
            self.last_error = None  # the daemon's runs record theirs in the replica
        elif report.offline:
            self.sync_state = "offline"
            # What the run said last, with its last attempt counted; and the error that goes
            # with it (not an older run's).
            self.sync_detail = report.offline_detail
            self.last_error = None  # this run's error is the replica's last_error (the Sync screen)
        elif not report.ok:
            self.sync_state = "sync failed"
            self.last_error = report.error
            self.notify(report.summary, title="Sync", severity="error", timeout=8)
        else:
            self.sync_state = "online"
            self.last_error = None
            if report.conflicts or report.rejected:
                self.notify(f"{report.summary}. See Conflicts ({self.key_for('app.conflicts')}) and "
                            f"Rejected ({self.key_for('app.rejected')}).", title="Sync", severity="warning")
        self.data_changed()

    def _after_run(self) -> None:
        """A sync run ended: saves that came while it ran go in one more, soon."""
        if self._sync_again:
            self._sync_again = False
            self.sync_soon()

    def save(self, action: str, entity_name: str, fields: dict | None = None, *,
             record_id: str | None = None) -> dict:
        """Queue a save (see ``screens.saving.Saver.save``), and a sync soon to send it."""
        result = self.saver.save(action, entity_name, fields, record_id=record_id)
        if action != "discard":  # a discarded change sends nothing
            self.sync_soon()
        return result

    @on(SaveStep)
    def _save_step(self, message: SaveStep) -> None:
        self.saver.handle(message.step)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "saves":
            self.saver.worker_changed(event)
            return
        if event.worker.group != "sync" or event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        self._after_run()
        self.sync_state = "sync failed"
        self.sync_detail = ""
        self.last_error = f"{type(error).__name__}: {error}" if error else "unknown error"
        self.notify(f"sync failed: {self.last_error}", title="Sync", severity="error", timeout=8)
        self.data_changed()

    # ------------------------------------------------------------------ navigation and keys

    async def on_event(self, event: events.Event) -> None:
        # A key from the terminal goes where focus is once the keys before it have been handled
        # (screens/typeahead.py); keys bubbling back up from widgets are handled as ever.
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self.type_ahead.key(event)
        else:
            await super().on_event(event)

    def on_unmount(self) -> None:
        self._count_side.close()  # a count under way stops; its connection closes after it

    def exit(self, *args, **kwargs) -> None:
        self.saver.stop()  # what is still queued stays in the journal for the next start
        super().exit(*args, **kwargs)

    def action_section(self, mode: str) -> None:
        """Go to a section's own screen (what was opened from it is closed: a section key always
        shows the section it names)."""
        self.show_section(mode)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A section key under a form or a picker would throw away what is being typed there.
        return not (action == "section" and isinstance(self.screen, ModalScreen))

    async def action_quit(self) -> None:
        """`q` anywhere outside a text box: quit, after a yes (nothing is lost either way; the
        question says what waits to be sent)."""
        if isinstance(self.screen, ConfirmModal):
            return
        counts = self.replica.outbox.counts()
        waiting = counts.get("pending", 0)
        detail = (f"{plural(waiting, 'saved change')} not yet on the server "
                  f"{verb(waiting, 'stays', 'stay')} in the replica and {verb(waiting, 'goes', 'go')} with the next sync."
                  if waiting else
                  "Nothing waits to be sent.")
        if self.saver.queued:
            detail += (f" {plural(self.saver.queued, 'save')} still queued for the replica (a sync is "
                       f"writing to it) {verb(self.saver.queued, 'is', 'are')} kept and applied when crm-tui next opens it.")
        if self.quit_note is not None:
            detail += " " + self.quit_note(bool(self.saver.queued) or self.replica.outbox.ever_queued())

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmModal("Quit crm-tui?", detail), answered)

    def show_section(self, mode: str) -> None:
        """The section's own screen, whatever was opened from it before (keys, `:`, palette)."""
        if mode != self.current_mode:
            self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        from screens.base import CrmScreen

        if isinstance(self.screen, CrmScreen):
            self.screen.section_shown()

    def record_screen(self, entity_name: str, record_id: str, tab: str = "contacts") -> Screen:
        """The screen that shows one customer (on ``tab``), ticket or order; screens.navigation
        opens it, so the screens that link to each other need not import each other."""
        if entity_name == "customer":
            return Customer360Screen(record_id, tab=tab)
        if entity_name == "ticket":
            return TicketDetailScreen(record_id)
        return OrderDetailScreen(record_id)

    def switch_mode(self, mode: str):
        result = super().switch_mode(mode)
        self.publish_status()
        return result

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        self.push_screen(HelpScreen(getattr(screen, "HELP", ""), binding_rows(self, screen), title=_title(screen)))

    def action_command_line(self) -> None:
        def done(text: str | None) -> None:
            if text:
                run_command(self, text)

        self.push_screen(CommandLine(), done)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title not in ("Screenshot", "Maximize", "Minimize"):
                yield command


def _title(screen: Screen) -> str:
    return getattr(screen, "LABEL", "") or "this screen"


def binding_ids() -> list[str]:
    """Every binding id in the app, for the keymap check and the docs."""
    return all_binding_ids()


__all__ = ["CrmApp"]
