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
import logging
import logging.handlers
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


def _handler(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(RedactingFormatter(FORMAT))
    handler._crm_tui = True  # type: ignore[attr-defined]  # ours: replaced on the next setup
    return handler


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
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            root.addHandler(_handler(logging.handlers.RotatingFileHandler(
                log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")))
            used = log_file
        except OSError:
            used = None
    if stderr:
        root.addHandler(_handler(logging.StreamHandler(sys.stderr)))
    return used
