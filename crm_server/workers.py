"""``crm-server serve --workers N``: N server processes on one listening socket, and the
supervisor that starts, watches and stops them.

The supervisor binds the socket, then forks the workers; each accepts connections from the one
socket (the kernel hands every connection to one of them) and runs its own app, database pool and
housekeeping. Everything the workers must agree on is in the database (rate limits, the cursor
key, tokens, idempotency records) or in memory mapped before the fork (the connection counts,
crm_server/connection_table.py); nothing else is shared.

* **Start.** The URL is announced once every worker accepts connections. A worker that fails
  before that (the database went away, say) stops the others, and its one-line error is the
  supervisor's.
* **A worker dies.** Its connections are reset by the kernel (clients retry: batch writes are
  idempotent, reads are), the connections queued on the socket go to the others, and a new worker
  takes its place; the death is logged with its exit status. If workers keep dying
  (:data:`MAX_DEATHS` within :data:`DEATH_WINDOW` seconds) the supervisor stops the rest and
  fails with one line, so a service manager sees it and can restart the whole server.
* **Stop.** SIGTERM or SIGINT to the supervisor is passed on to every worker, which finishes the
  requests in flight (``GRACEFUL_SHUTDOWN`` seconds) and closes its database; one that is still
  there :data:`KILL_AFTER` seconds later is killed. Then the supervisor exits 0. A worker whose
  supervisor is gone gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable

from crm_server.serving import GRACEFUL_SHUTDOWN, ServeError

log = logging.getLogger("crm_server.workers")

START_TIMEOUT = 60.0  # seconds for all workers to accept connections
KILL_AFTER = GRACEFUL_SHUTDOWN + 5  # seconds a stopping worker gets before SIGKILL
MAX_DEATHS = 5
DEATH_WINDOW = 60.0
RESTART_DELAY = 0.5  # seconds before a worker that died quickly is replaced
_PR_SET_PDEATHSIG = 1

Work = Callable[[int, Callable[[], None]], None]


class Supervisor:
    """Runs ``work(index, ready)`` in ``count`` forked processes; see the module docstring.

    ``work`` serves until SIGTERM and returns; it calls ``ready()`` once it accepts connections.
    ``forget(index)`` is called (in the supervisor) when worker ``index`` has died.
    """

    def __init__(self, count: int, work: Work, forget: Callable[[int], None] = lambda index: None):
        if count < 1:
            raise ValueError("count must be at least 1")
        self.count, self.work, self.forget = count, work, forget
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.deaths: list[float] = []
        self._stopping = False
        self._signals: list[int] = []

    # ------------------------------------------------------------------ the supervisor

    def run(self, announce: Callable[[], None]) -> None:
        """Start the workers, call ``announce`` once all accept connections, replace dead ones,
        and return after a stop signal once all have exited. Raises ServeError."""
        status_r, status_w = os.pipe()
        wake_r, wake_w = os.pipe()
        for fd in (status_r, wake_r, wake_w):
            os.set_blocking(fd, False)
        os.set_inheritable(status_w, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(wake_w)
        buffer = b""
        children_close = (status_r, wake_r, wake_w)
        try:
            for index in range(self.count):
                self._spawn(index, status_w, children_close)
            waiting = set(range(self.count))  # workers not yet accepting connections, until all are
            start_deadline = time.monotonic() + START_TIMEOUT
            kill_at = float("inf")
            while True:
                if self._signals and not self._stopping:
                    self._stopping = True
                    log.info("stopping %d workers", len(self.pids))
                    self._signal_all(signal.SIGTERM)
                    kill_at = time.monotonic() + KILL_AFTER
                ready, _, _ = _select([status_r, wake_r], 0.5)
                if wake_r in ready:
                    _drain(wake_r)
                # The pipe before the exits: a worker says why it failed before it exits.
                if status_r in ready:
                    buffer += _drain(status_r)
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        kind, _, rest = line.decode(errors="replace").partition(" ")
                        index_text, _, message = rest.partition(" ")
                        if kind == "failed" and waiting and not self._stopping:
                            self._stop_all()
                            raise ServeError(message or f"worker {index_text} could not start")
                        if kind == "ready" and waiting:
                            waiting.discard(int(index_text))
                            if not waiting and not self._stopping:
                                announce()
                        elif kind == "ready":
                            log.warning("worker %s (pid %s) accepts connections", index_text, message)
                failure = self._reap(status_w, children_close, starting=bool(waiting))
                if failure is not None:
                    self._stop_all()
                    raise ServeError(failure)
                if self._stopping:
                    if not self.pids:
                        return
                    if time.monotonic() > kill_at:
                        log.warning("%d workers did not stop in %d s; killing them", len(self.pids), KILL_AFTER)
                        self._signal_all(signal.SIGKILL)
                        kill_at = float("inf")
                elif waiting and time.monotonic() > start_deadline:
                    self._stop_all()
                    raise ServeError(f"{len(waiting)} of {self.count} workers did not start within {START_TIMEOUT:.0f} s")
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (status_r, status_w, wake_r, wake_w):
                os.close(fd)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum != signal.SIGCHLD:
            self._signals.append(signum)

    def _reap(self, status_w: int, close_in_child: tuple[int, ...], starting: bool) -> str | None:
        """Collect exited workers; replace them unless stopping. Returns a reason to give up, or None."""
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            index = self.pids.pop(pid, None)
            if index is None:
                continue
            self.forget(index)
            how = _exit_text(status)
            if self._stopping:
                if status != 0:
                    log.warning("worker %d (pid %d) %s while stopping", index, pid, how)
                continue
            if starting:
                return f"worker {index} exited while starting ({how}); see the log"
            log.warning("worker %d (pid %d) %s; starting a new one", index, pid, how)
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t < DEATH_WINDOW] + [now]
            if len(self.deaths) >= MAX_DEATHS:
                return f"{len(self.deaths)} workers died within {DEATH_WINDOW:.0f} s (last: {how}); see the log"
            time.sleep(RESTART_DELAY)
            self._spawn(index, status_w, close_in_child)
        return None

    def _signal_all(self, sig: int) -> None:
        for pid in list(self.pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _stop_all(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL) and wait for them."""
        self._stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + KILL_AFTER
        while self.pids:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                index = self.pids.pop(pid, None)
                if index is not None:
                    self.forget(index)
                continue
            if time.monotonic() > deadline:
                self._signal_all(signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.05)

    # ------------------------------------------------------------------ a worker

    def _spawn(self, index: int, status_w: int, close_in_child: tuple[int, ...]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.pids[pid] = index
            return
        code = 1
        try:
            code = _worker(index, self.work, status_w, close_in_child)
        finally:
            os._exit(code)


def _worker(index: int, work: Work, status_w: int, close_in_child: tuple[int, ...]) -> int:
    """The body of worker ``index`` in the forked child; returns its exit status."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Stopped before it serves (while it opens the database): a quiet exit, its cleanup run.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_quietly)
    for fd in close_in_child:
        os.close(fd)
    _die_with_parent()

    def tell(line: str) -> None:
        try:
            os.write(status_w, (line.replace("\n", " ") + "\n").encode())
        except OSError:
            pass

    try:
        work(index, lambda: tell(f"ready {index} {os.getpid()}"))
    except SystemExit:
        return 0
    except ServeError as exc:
        tell(f"failed {index} {exc}")
        return 1
    except Exception as exc:  # a worker's failure is the supervisor's one line; the log gets the details
        log.error("worker %d failed:\n%s", index, "".join(traceback.format_exception(exc)))
        tell(f"failed {index} {_one_line(exc)}")
        return 1
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor is gone (Linux); a no-op elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _select(fds: list[int], timeout: float) -> tuple[list[int], list[int], list[int]]:
    try:
        return select.select(fds, [], [], timeout)
    except InterruptedError:
        return [], [], []


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return out
            raise
        if not chunk:
            return out
        out += chunk
