"""Where crm-tui's logs go, and what never goes into them.

Users get one line on the terminal; the details (tracebacks included) go to a rotated file under
the state dir (``Paths.log_file``). The daemon also logs to stderr, for the journal. Every line,
at every level, passes a redacting formatter: the API token and change-feed cursors never reach a
log, whatever a library or an exception message puts in it. httpx and httpcore, which log every
request URL (cursor included) at INFO, are held to warnings; the client logs its own requests,
without query strings, at DEBUG.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import logging.handlers
import os
import re
import sys
import threading
from pathlib import Path

LOGGER = "crm_tui"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_BYTES = 1024 * 1024
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_secrets: set[str] = set()
_recent_cursors: collections.deque[str] = collections.deque(maxlen=8)
_secrets_lock = threading.Lock()
# A cursor in a query string, a JSON document or a Python repr; and any bearer token.
_CURSOR = re.compile(r"""(?i)(cursor["']?\s*[=:]\s*["']?)[^"'&\s,}]+""")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def add_secret(value: str | None) -> None:
    """Never write ``value`` (a token) to a log from now on."""
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def add_cursor(value: str | None) -> None:
    """A cursor now in use: redacted wherever it shows up, not only after ``cursor=``."""
    if value:
        with _secrets_lock:
            _recent_cursors.append(value)


def redact(text: str) -> str:
    """``text`` with every known secret, bearer token and cursor value replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted({*_secrets, *_recent_cursors}, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _CURSOR.sub(r"\1***", text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual (traceback included), then redacts the whole line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotated log file that several processes write at once (the app, the daemon, one-shot
    runs). The size check and the rotation happen under an exclusive ``flock`` on a sibling
    ``.lock`` file, and a process whose file another one rotated away reopens the current file
    before it writes: so the newest lines are always in ``log_file`` (the file a one-line error
    points the user to), never in a backup another process renamed under it.

    Nothing is created until the first line is written: a command that logs nothing (`status`,
    `agenda`, `--help`) leaves the log's directory as it found it, or absent."""

    def __init__(self, filename: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self._lock_fd = -1
        self._unwritable = False

    def _open_lock(self) -> bool:
        """The log's directory and lock file, made on the first write. False (and the line is
        dropped, quietly: a log must never stop the program) where they cannot be made."""
        if self._lock_fd >= 0:
            return True
        if self._unwritable:
            return False
        try:
            Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(f"{self.baseFilename}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            self._unwritable = True
            return False
        return True

    def _open(self):  # type: ignore[no-untyped-def]  # logging's own signature
        """The log file, private to the user like everything else in the data dir (0600)."""
        fd = os.open(self.baseFilename, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # the handler keeps it

    def _follow_rotation(self) -> None:
        if self.stream is None:
            return
        mine = os.fstat(self.stream.fileno())
        try:
            now = os.stat(self.baseFilename)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            self.stream.close()
            self.stream = None  # reopened by the next write

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds this handler's own lock, so threads of one process queue there;
        # the flock queues the processes.
        if not self._open_lock():
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except OSError:
            self.handleError(record)
            return
        try:
            self._follow_rotation()
            if self.shouldRollover(record):
                self.doRollover()
            logging.FileHandler.emit(self, record)
        except Exception:
            self.handleError(record)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it in __init__
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
        super().close()


def to_log_file_only(logger: logging.Logger, level: int, message: str) -> None:
    """``message`` to the log file alone (not to stderr, where the caller says it itself): a
    failure's one line is also kept in the log. Nothing happens before logging is set up."""
    record = logger.makeRecord(logger.name, level, "(crm-tui)", 0, message, (), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, SharedRotatingFileHandler) and record.levelno >= handler.level:
            handler.handle(record)


def _handler(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(RedactingFormatter(FORMAT))
    handler._crm_tui = True  # type: ignore[attr-defined]  # ours: replaced on the next setup
    return handler


def _can_make(log_file: Path) -> bool:
    """Whether ``log_file`` can be written: its directory, or the nearest one that exists, is
    writable (nothing is created to find out)."""
    if log_file.exists():
        return os.access(log_file, os.W_OK)
    for folder in (log_file.parent, *log_file.parent.parents):
        if folder.exists():
            return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    return False


def setup_logging(log_file: Path | None, level: str = "INFO", *, stderr: bool = False) -> Path | None:
    """Send crm-tui's logs at ``level`` to ``log_file`` (rotated: 1 MiB, 3 backups) and, if
    ``stderr``, to the terminal too. Returns the file in use, or None when it cannot be written
    (then only stderr, if asked, gets the logs: a log file must never stop the program)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_crm_tui", False)]:
        root.removeHandler(old)
        old.close()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("httpx", "httpcore", "hpack", "asyncio", "markdown_it"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    used: Path | None = None
    if log_file is not None and _can_make(log_file):
        # The file (and its directory) appear with the first line logged, not here.
        root.addHandler(_handler(SharedRotatingFileHandler(log_file, max_bytes=MAX_BYTES, backups=BACKUPS)))
        used = log_file
    if stderr:
        root.addHandler(_handler(logging.StreamHandler(sys.stderr)))
    return used
