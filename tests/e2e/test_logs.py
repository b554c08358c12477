"""Users get one line, logs get the details (issue 9 item 12): no traceback on a terminal; a
rotated log file under the state dir; no token and no cursor in any log, at any level; the
daemon quiet by default."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

from support.client import ROOT, ClientReplica
from support.faultproxy import FaultProxy, status


def cursors_on_the_wire(proxy: FaultProxy, client: ClientReplica) -> set[str]:
    sent = {c for s in proxy.seen for c in parse_qs(urlsplit(s.target).query).get("cursor", [])}
    with client.replica() as r:
        return sent | {r.cursor}


def log_text(client: ClientReplica) -> str:
    return "".join(p.read_text() for p in sorted((client.data_dir / "log").glob("crm-tui.log*")))


def test_a_debug_sync_logs_details_but_never_the_token_or_a_cursor(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        done = client.cli("sync", "--once", CRM_TUI_LOG_LEVEL="DEBUG", CRM_TUI_SYNC__PAGE_SIZE="7")
        assert done.returncode == 0, done.stderr
        logged = log_text(client)
        assert "GET /v1/changes -> 200" in logged  # the details are there, at DEBUG
        cursors = cursors_on_the_wire(proxy, client)
        assert len(cursors) > 3  # several pages went by, each with its cursor
        token = server.tokens["alex"]
        for text in (logged, done.stdout, done.stderr):
            assert token not in text
            assert not [c for c in cursors if c in text]


def test_the_daemon_is_quiet_by_default_and_keeps_secrets_at_debug(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    token = server.tokens["alex"]
    outputs = {}
    for level in ("INFO", "DEBUG"):
        runs = len(client.replica_runs()) if client.paths.replica.exists() else 0
        daemon = client.popen("sync", "--daemon", "--interval", "3600", CRM_TUI_LOG_LEVEL=level)
        deadline = time.monotonic() + 60
        while not client.paths.replica.exists() or len(client.replica_runs()) <= runs \
                or client.replica_runs()[0]["finished_at"] is None:
            assert daemon.poll() is None and time.monotonic() < deadline, "the daemon never finished a run"
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        _out, outputs[level] = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
    with client.replica() as r:
        cursor = r.cursor
    info, debug = outputs["INFO"], outputs["DEBUG"]
    assert "daemon started" in info and "synced: pushed 0, pulled" in info
    assert "/v1/" not in info and "HTTP Request" not in info  # no line per request by default
    assert "GET /v1/me -> 200" in debug
    for text in (info, debug, log_text(client)):
        assert token not in text and cursor not in text


def test_a_bad_gzip_body_is_one_line_not_a_traceback(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        proxy.add_rule(status(200, b"this is not gzip", headers={"Content-Encoding": "gzip",
                                                                 "Content-Type": "application/json"}), path="/v1/me")
        done = client.cli("sync", "--once")
        assert done.returncode == 4
        assert done.stderr.count("\n") == 1 and "DecodingError" in done.stderr and "Traceback" not in done.stderr


def test_an_unforeseen_error_is_one_line_and_its_traceback_goes_to_the_log(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    # The real CLI, with a fault planted in one command: the edge must still hold.
    program = ("import sys, crm_tui.status as s\n"
               "def boom(*a, **k): raise RuntimeError('the disk said no')\n"
               "s.collect_status = boom\n"
               "from crm_tui.cli import main\n"
               f"sys.argv = ['crm-tui', '--data-dir', {str(client.data_dir)!r}, 'status']\n"
               "main()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                          env=client.env(), cwd=ROOT)
    assert done.returncode == 1
    log_file = client.data_dir / "log" / "crm-tui.log"
    assert done.stderr == (f"crm-tui: unexpected error: RuntimeError: the disk said no (details in {log_file})\n")
    logged = log_file.read_text()
    assert "Traceback" in logged and "the disk said no" in logged


def test_a_failure_s_one_line_is_also_in_the_log_file_private_to_the_user(tmp_path):
    """README: every failure is one line on stderr and the details go to the log file. A login to
    a server that is not there left no log at all, and a log file was made 0644."""
    data = tmp_path / "d"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_TUI_")}
    env.update(CRM_TUI_TOKEN="not-a-real-token", CRM_TUI_CONFIG_DIR=str(tmp_path / "cfg"))
    done = subprocess.run([sys.executable, "-m", "crm_tui", "--data-dir", str(data), "login", "--server",
                           "http://127.0.0.1:9"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 4, done.stderr
    log_file = data / "log" / "crm-tui.log"
    text = log_file.read_text()
    assert "the server cannot be reached" in text and "(exit 4)" in text
    assert "not-a-real-token" not in text
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
