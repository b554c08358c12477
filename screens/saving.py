"""Saving without waiting: every save of the app goes through the replica's save queue.

``Saver.save`` validates on the spot (a bad value is shown in the form at once), writes the save
to the durable journal (milliseconds; nothing else locks it) and returns. A thread worker with
its own replica connection applies the journal in order, waiting as long as a sync holds the
replica's write lock; meanwhile the status line says a save is queued. Quitting while a save
waits loses nothing: the journal is applied the next time the app (or a sync) opens the replica.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.worker import Worker, WorkerState, get_current_worker

from cache.errors import RecordNotFound, ReplicaError
from cache.save_queue import Applied
from crm_tui.core.domain import entity, validate_fields
from screens.messages import SaveStep

if TYPE_CHECKING:
    from screens.host import CrmHost

LOCK_WAIT = 1.0  # seconds the worker's connection waits for the lock before it says "busy"
KEPT_OUTCOMES = 200

Then = Callable[[dict[str, Any] | None], None]


class Saver:
    def __init__(self, app: CrmHost) -> None:
        self.app = app
        self.waiting = False  # the worker found the replica's write lock held
        self._worker: Worker | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while no worker runs
        self._idle.set()
        self._then: dict[int, Then] = {}
        self._outcomes: dict[int, Applied] = {}

    @property
    def queued(self) -> int:
        return self.app.replica.saves.count()

    def save(self, action: str, entity_name: str, fields: dict[str, Any] | None = None, *,
             record_id: str | None = None) -> dict[str, Any]:
        """Queue a create, update or delete, or a decision about the outbox (resend or discard
        the rejected op ``record_id``, resolve the conflict ``record_id`` with the choices in
        ``fields``): validated now (raises ValidationError or ReplicaError), on disk when this
        returns, applied to the replica by the worker. Returns {"id", "queued_seq"}."""
        replica = self.app.replica
        fields = dict(fields or {})
        if action == "delete":
            if record_id is None or replica.get(entity_name, record_id) is None:
                raise RecordNotFound(entity_name, record_id or "")
        elif action == "resend":
            op = replica.outbox.get(int(record_id or 0))
            if op is None or op.state != "rejected":
                raise ReplicaError("only a rejected change can be re-sent")
            if op.op != "delete":
                validate_fields(entity(op.entity), {**op.fields, **fields}, creating=op.op == "create")
        elif action in ("create", "update"):
            replica.writes.check(entity_name, fields, record_id=None if action == "create" else record_id)
        rid = record_id or replica.writes.new_record_id(entity_name)
        seq = replica.saves.submit(action, entity_name, rid, fields)
        self.start()
        self.app.publish_status()
        return {"id": rid, "queued_seq": seq}

    def after_save(self, result: dict[str, Any] | None, then: Then) -> None:
        """Run ``then(record)`` on the UI thread once the save that returned ``result`` is in the
        replica (at once if it already is); never if the replica refused it."""
        seq = (result or {}).get("queued_seq")
        if seq is None:
            then(result)
            return
        done = self._outcomes.get(seq)
        if done is None:
            self._then[seq] = then
        elif done.state == "applied":
            then(done.record)

    # ------------------------------------------------------------------ the worker

    def start(self) -> None:
        """Start the worker unless it runs (it stops when the journal is empty)."""
        if self._worker is None or self._worker.is_finished:
            self._idle.clear()
            self._worker = self.app.run_worker(self._apply, thread=True, group="saves", description="saves",
                                               exit_on_error=False)

    def _apply(self) -> None:
        app = self.app
        worker = get_current_worker()
        try:
            with app.replica.reopen(busy_timeout=LOCK_WAIT, cache_mb=2) as replica:
                # The app quitting ends the loop at the next step: what is left stays in the journal.
                while not (worker.is_cancelled or self._stop.is_set()):
                    step = replica.saves.apply_next(replica)
                    if step is None:
                        return
                    app.post_message(SaveStep(step))  # thread-safe, and never blocks on a closing app
        finally:
            self._idle.set()

    def stop(self) -> None:
        """The app is quitting: the worker ends after its current step (at most LOCK_WAIT)."""
        self._stop.set()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait until no worker runs (after ``stop``); True if none does."""
        return self._idle.wait(timeout)

    def handle(self, step: Applied) -> None:
        """A step of the worker, on the UI thread."""
        app = self.app
        if step.state == "busy":
            if not self.waiting:
                self.waiting = True
                app.notify("Your change is saved in the queue: a sync is writing to the replica. It is applied "
                           "as soon as the sync lets go, even if you quit meanwhile.", title="Queued", timeout=6)
                app.publish_status()
            return
        self.waiting = False
        self._outcomes[step.save.seq] = step
        if len(self._outcomes) > KEPT_OUTCOMES:
            self._outcomes.pop(next(iter(self._outcomes)))
        then = self._then.pop(step.save.seq, None)
        app.data_changed()
        if step.state == "failed":
            app.notify(f"A queued {step.save.action} of {step.save.entity} {step.save.record_id} could not be "
                       f"applied: {step.error}", title="Not saved", severity="error", timeout=12)
        elif then is not None:
            then(step.record)

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """The worker ended: start it again if saves came in as it stopped."""
        if event.worker is not self._worker:
            return
        if event.state == WorkerState.ERROR:
            self.app.notify(f"Saving stopped: {event.worker.error}. Your changes stay queued; the next save "
                            "or restart applies them.", severity="error", timeout=12)
        elif event.state == WorkerState.SUCCESS and self.queued:
            self.start()
