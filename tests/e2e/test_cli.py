"""`crm-tui login`, `sync --once`, `status` as a user runs them: real processes, real server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crm_tui import keyring_store
from support.client import ROOT, ClientReplica
from support.server import make_op

pytestmark = pytest.mark.slow  # make test-slow: the real CLI in a subprocess, many times


def fresh_client(tmp_path, server, user="alex") -> ClientReplica:
    client = ClientReplica(tmp_path / "c", server, user)
    client.paths.credentials.unlink()  # start logged out, as a new user would
    return client


def test_login_stores_the_token_privately_and_sync_status_work(server, tmp_path):
    client = fresh_client(tmp_path, server)
    token = server.tokens["alex"]
    done = client.cli("login", "--server", server.url, "--token-stdin", input=token + "\n")
    assert done.returncode == 0, done.stderr
    assert "as " in done.stdout and token not in done.stdout + done.stderr
    creds = client.paths.credentials
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert token not in creds.read_text()  # the token went to the keyring, the file names the server
    assert "token stored in the OS keyring" in done.stdout
    assert keyring_store.get_secret(f"api-token:{client.data_dir}") == token

    done = client.cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("synced: pushed 0, pulled ")

    status = json.loads(client.cli("status", "--json").stdout)
    assert status["server"] == server.url and status["bootstrapped"]
    assert status["records"]["customer"] == 20
    assert status["pending_ops"] == status["conflicts"] == status["rejected_ops"] == 0
    assert status["cursor_age_seconds"] is not None and status["cursor_age_seconds"] < 600
    text = client.cli("status").stdout
    assert "customers 20" in text and "pending ops   0" in text and token not in text
    assert "recent syncs" in text and " ok " in text


def test_login_with_a_bad_token_fails_cleanly_and_stores_nothing(server, tmp_path):
    client = fresh_client(tmp_path, server)
    done = client.cli("login", "--server", server.url, input="crm_not_a_token\n")
    assert done.returncode == 3
    assert done.stderr.startswith("crm-tui: login failed") and "401" in done.stderr
    assert "Traceback" not in done.stderr
    assert not client.paths.credentials.exists()


def test_token_from_the_environment_never_reaches_argv(server, tmp_path):
    client = fresh_client(tmp_path, server)
    done = client.cli("login", "--server", server.url, CRM_TUI_TOKEN=server.tokens["alex"])
    assert done.returncode == 0, done.stderr
    proc = client.popen("sync", "--daemon", "--interval", "3600")
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert server.tokens["alex"] not in cmdline
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_version_and_help_list_every_command(tmp_path, server):
    client = fresh_client(tmp_path, server)
    helptext = client.cli("--help").stdout
    for command in ("login", "logout", "sync", "status", "demo", "app"):
        assert command in helptext
    assert client.cli("--version").stdout.startswith("crm-tui, version")
    assert sys.executable  # the CLI ran under this interpreter


def test_status_shows_twenty_conflicts_and_says_how_many_more(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    with client.replica() as r:
        records = [("customer", row[0]) for row in r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 15")]
        records += [("contact", row[0]) for row in r.conn.execute("SELECT id FROM contacts ORDER BY id LIMIT 10")]
        for ent, rid in records:
            r.writes.update(ent, rid, {"name": f"Mine {rid}"})
    theirs = []
    for ent, rid in records:
        rec = server.get_record(f"{ent}s", rid)
        theirs.append(make_op("update", ent, rid, {"name": f"Theirs {rid}"}, base_version=rec["version"]))
    assert {res["status"] for res in server.batch(theirs)} == {"applied"}
    assert client.sync().conflicts == 25

    info = json.loads(client.cli("status", "--json").stdout)
    assert info["conflicts"] == 25 and len(info["conflict_details"]) == 20 and info["conflicts_not_shown"] == 5
    text = client.cli("status").stdout
    assert text.count("mine 'Mine ") == 20
    assert "… and 5 more (the app's Conflicts screen, or `crm-tui status --all`)" in text
    every = json.loads(client.cli("status", "--json", "--all").stdout)
    assert len(every["conflict_details"]) == 25 and every["conflicts_not_shown"] == 0
    assert client.cli("status", "--all").stdout.count("mine 'Mine ") == 25


def test_a_data_dir_with_its_own_config_dir_is_found_without_crm_tui_config_dir(server, tmp_path):
    """`crm-tui --data-dir D status` in a new shell (no CRM_TUI_CONFIG_DIR) finds the login and
    config D carries in D/config (as `crm-tui demo` leaves them), not "server not configured"."""
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    (client.paths.config_dir / "config.toml").write_text('theme = "nord"\n')
    home = tmp_path / "home"  # a user config dir that knows nothing of D
    env = {k: v for k, v in client.env().items() if k != "CRM_TUI_CONFIG_DIR"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".state"))
    done = subprocess.run(client.cli_cmd("status", "--json"), capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["server"] == server.url and info["logged_in"]
    text = subprocess.run(client.cli_cmd("status"), capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert f"server        {server.url}" in text.stdout and "not configured" not in text.stdout
    assert not (home / ".config").exists()  # nothing went to, or was read from, the user's config dir
