"""The log file is shared by the app, the daemon and one-shot runs: rotation by one process must
not leave another writing into a backup, and no line may be lost or reordered."""

from __future__ import annotations

import logging
import logging.handlers
import subprocess
import sys
import time
from pathlib import Path

from crm_tui.logs import SharedRotatingFileHandler

MAX_BYTES = 4_000


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("crm_tui", logging.INFO, __file__, 1, msg, None, None)


def _write_until_rotated(handler: logging.Handler, log: Path) -> None:
    n = 0
    while not log.with_name(log.name + ".1").exists():
        handler.emit(_record(f"process A line {n} " + "x" * 80))
        n += 1
        assert n < 1000


def _newest_line_after_another_process_rotates(handler_a, handler_b, log: Path) -> str:
    handler_b.emit(_record("process B starts"))  # B has the file open before A rotates it
    _write_until_rotated(handler_a, log)
    # Short enough to fit in what is left of the renamed file (its size is fixed by the line
    # lengths), so the standard handler has no reason to rotate again and writes it there.
    handler_b.emit(_record("B: error 42"))
    for h in (handler_a, handler_b):
        h.close()
    return log.read_text()


def test_the_newest_line_is_in_the_log_file_after_another_process_rotated_it(tmp_path):
    log = tmp_path / "crm-tui.log"
    # Two handlers on one path hold two open file descriptions, exactly as two processes do.
    a = SharedRotatingFileHandler(log, max_bytes=MAX_BYTES, backups=3)
    b = SharedRotatingFileHandler(log, max_bytes=MAX_BYTES, backups=3)
    assert "B: error 42" in _newest_line_after_another_process_rotates(a, b, log)


def test_control_the_standard_rotating_handler_writes_into_the_renamed_backup(tmp_path):
    """The same steps with the standard library's handler: B still holds the renamed file and
    writes its newest line into the backup, not the file the user is pointed to. The test above
    can fail."""
    log = tmp_path / "crm-tui.log"
    a = logging.handlers.RotatingFileHandler(log, maxBytes=MAX_BYTES, backupCount=3)
    b = logging.handlers.RotatingFileHandler(log, maxBytes=MAX_BYTES, backupCount=3)
    assert "B: error 42" not in _newest_line_after_another_process_rotates(a, b, log)


_WRITER = """
import logging, sys
from pathlib import Path
from crm_tui.logs import SharedRotatingFileHandler
h = SharedRotatingFileHandler(Path(sys.argv[1]), max_bytes=int(sys.argv[2]), backups=int(sys.argv[3]))
h.setFormatter(logging.Formatter("%(message)s"))
go = Path(sys.argv[1]).with_name("go")
Path(sys.argv[1]).with_name("ready-" + sys.argv[4]).touch()
while not go.exists():  # all three start writing together
    pass
for i in range(int(sys.argv[5])):
    h.emit(logging.LogRecord("crm_tui", logging.INFO, "w", 1, f"{sys.argv[4]} {i:05d} " + "y" * 60, None, None))
h.close()
"""


def test_three_processes_rotating_one_file_lose_and_reorder_nothing(tmp_path):
    log = tmp_path / "crm-tui.log"
    lines, backups = 3000, 400  # enough backups that rotation deletes nothing
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(log), str(MAX_BYTES), str(backups), name, str(lines)])
        for name in ("app", "daemon", "once")
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(writers):
        assert time.monotonic() < deadline, "the writer processes did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    for w in writers:
        assert w.wait(timeout=120) == 0
    files = [*sorted((p for p in tmp_path.glob("crm-tui.log.*") if p.suffix[1:].isdigit()), key=lambda p: int(p.suffix[1:]), reverse=True), log]
    seen: dict[str, list[int]] = {"app": [], "daemon": [], "once": []}
    for f in files:
        assert f.stat().st_size <= MAX_BYTES + 100, f"{f.name} outgrew the rotation size"
        for line in f.read_text().splitlines():
            name, number, _ = line.split(" ")
            seen[name].append(int(number))
    for name, numbers in seen.items():
        assert numbers == list(range(lines)), f"{name}'s lines were lost, doubled or reordered across the files"
