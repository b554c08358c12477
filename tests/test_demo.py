"""`make demo` / `crm-tui demo`: a run leaves nothing in the temp dir, and a server that dies
while the app runs is reaped at once (no zombie)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_tui import demo
from support.pilot import settle


def _state(pid: int) -> str | None:
    """The process state letter from /proc (Z: a zombie), or None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_a_run_without_dir_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with demo.demo_workdir(None) as work:
        (work.path / "crm-server.db").write_bytes(b"x" * 1024)
        assert work.path.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_a_named_dir_is_kept_for_the_next_run(tmp_path):
    with demo.demo_workdir(tmp_path / "keep") as work:
        (work.path / "crm-server.db").write_bytes(b"x")
    assert (tmp_path / "keep" / "crm-server.db").exists()


def test_a_killed_demo_server_is_reaped_not_left_a_zombie(tmp_path, capsys):
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
        # When the demo ends, it says the server had already ended, not that it stopped it.
        demo._stop_server(proc, tmp_path / "server.log")
        said = capsys.readouterr().err
        assert "the demo server had already ended (exit code -9" in said and "server stopped" not in said
    finally:
        if proc.returncode is None:
            proc.kill()


def _demo_in_a_headless_terminal(monkeypatch, tmp_path, user_steps) -> tuple[int, str, Path]:
    """`run_demo` as `make demo` runs it (seeded server, login, bootstrap, the app), the app in a
    headless terminal driven by ``user_steps(pilot)``, which ends by pressing q. Returns the exit
    code, the quit question's text, and the demo's temp dir."""
    from screens.app import CrmApp
    from screens.pickers import ConfirmModal

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("CRM_TUI_CONFIG_DIR", str(tmp_path / "not-the-demos"))  # put back after the test
    asked: list[str] = []

    async def drive(pilot) -> None:
        await pilot.pause()
        await user_steps(pilot)
        await pilot.press("escape", "q")  # out of the search box, then quit
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmModal)
        asked.append(pilot.app.screen.detail)
        await pilot.press("y")

    real_run = CrmApp.run
    monkeypatch.setattr(CrmApp, "run", lambda app: real_run(app, headless=True, size=(120, 36), auto_pilot=drive))
    code = demo.run_demo(customers=10)
    [work] = [p for p in tmp_path.iterdir() if p.name.startswith("crm-tui-demo-")] or [tmp_path / "gone"]
    return code, asked[0], work


@pytest.mark.slow  # make test-slow: the demo end to end (seed, server, login, the app)
def test_quitting_a_demo_with_saved_changes_keeps_them_and_says_where(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("CRM_TUI_SYNC_IN_APP", "false")  # the change is still unsynced when the user quits
    async def save_a_change(pilot) -> None:
        app = pilot.app
        [cid] = app.replica.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()
        app.saver.save("update", "customer", {"city": "Lisbon"}, record_id=cid)
        await settle(pilot)
        assert app.replica.outbox.counts()["pending"] == 1

    code, asked, work = _demo_in_a_headless_terminal(monkeypatch, tmp_path, save_a_change)
    assert code == 0
    assert work.exists(), "the demo deleted the change it had promised to keep"
    assert "1 saved change not yet on the server stays in the replica" in asked
    assert f"kept in {work}" in asked and f"crm-tui demo --dir {work}" in asked
    assert f"the demo's files are kept in {work}" in capfd.readouterr().err
    # The change is there, found from any shell by the data dir alone (its own config dir).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_TUI_")}
    done = subprocess.run([sys.executable, "-m", "crm_tui.cli", "--data-dir", str(work / "replica"), "status", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["pending_ops"] == 1 and info["server"].startswith("http://127.0.0.1:")


@pytest.mark.slow  # make test-slow: the demo end to end (seed, server, login, the app)
def test_quitting_a_demo_that_saved_nothing_removes_it_as_the_question_says(monkeypatch, tmp_path):
    async def look_around(pilot) -> None:
        await pilot.press("escape", "2")  # the ticket queue
        await settle(pilot)

    code, asked, work = _demo_in_a_headless_terminal(monkeypatch, tmp_path, look_around)
    assert code == 0
    assert not work.exists()
    assert "Nothing was saved" in asked and "removed" in asked


def test_a_demo_dir_opened_again_signs_in_as_its_replicas_owner(monkeypatch, tmp_path, capfd):
    """`crm-tui demo --dir D` a second time, after the server gained a newer agent: the app is the
    same user's, whose replica it opens (a new user found someone else's name in the status bar)."""
    from screens.app import CrmApp

    monkeypatch.setenv("CRM_TUI_CONFIG_DIR", str(tmp_path / "not-the-demos"))  # put back after the test
    work = tmp_path / "demo"
    signed_in: list[str] = []

    async def quit_at_once(pilot) -> None:
        await pilot.pause()
        signed_in.append(pilot.app.replica.reads.me()["id"])
        pilot.app.exit()

    real_run = CrmApp.run
    monkeypatch.setattr(CrmApp, "run", lambda app: real_run(app, headless=True, size=(120, 36),
                                                            auto_pilot=quit_at_once))
    assert demo.run_demo(customers=10, work_dir=work) == 0
    [owner] = signed_in
    # Newer agents, first by id and by age: a pick from the user list would now find one of them.
    for name in ("Aaron Newcomer", "Zoe Newcomer"):
        subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "add", name, "--role", "agent",
                        "--team", "support", "--db", str(work / "crm-server.db")],
                       check=True, capture_output=True, timeout=60)
    capfd.readouterr()
    assert demo.run_demo(customers=10, work_dir=work) == 0
    assert signed_in == [owner, owner]
    said = capfd.readouterr().err
    assert f"signed in as {owner}" in said
    # The replica it reuses is caught up, not bootstrapped again (as the first run said).
    assert "catching up the replica" in said and "bootstrapping" not in said
