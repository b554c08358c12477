"""`make demo` / `crm-tui demo`: a run leaves nothing in the temp dir, and a server that dies
while the app runs is reaped at once (no zombie)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crm_tui import demo


def _state(pid: int) -> str | None:
    """The process state letter from /proc (Z: a zombie), or None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_a_run_without_dir_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with demo.demo_workdir(None) as work:
        (work / "crm-server.db").write_bytes(b"x" * 1024)
        assert work.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_a_named_dir_is_kept_for_the_next_run(tmp_path):
    with demo.demo_workdir(tmp_path / "keep") as work:
        (work / "crm-server.db").write_bytes(b"x")
    assert (tmp_path / "keep" / "crm-server.db").exists()


def test_a_killed_demo_server_is_reaped_not_left_a_zombie(tmp_path):
    db = tmp_path / "crm.db"
    subprocess.run([sys.executable, "-m", "crm_server.cli", "seed", "--db", str(db), "--customers", "0"],
                   check=True, capture_output=True, timeout=120)
    proc, url = demo._start_server(db, tmp_path / "server.log")
    try:
        assert url.startswith("http://127.0.0.1:")
        os.kill(proc.pid, signal.SIGKILL)  # killed from outside, while "the app" still runs
        deadline = time.monotonic() + 30
        while _state(proc.pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(proc.pid) is None, f"server left as state {_state(proc.pid)!r}"
    finally:
        if proc.returncode is None:
            proc.kill()
