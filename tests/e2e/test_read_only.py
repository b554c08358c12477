"""A data dir that cannot be written (issue 10 item 9): `status` still works; `sync`, the app and
a login that cannot store itself each say in one line what is wrong, never a traceback.

Permissions bind a user, not root: as root the CLI runs under ``setpriv`` without the
capabilities that override file permissions, so a read-only directory is read-only to it too."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.client import ROOT, ClientReplica

NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@contextmanager
def read_only(*dirs: Path) -> Iterator[None]:
    modes = {d: stat.S_IMODE(d.stat().st_mode) for d in dirs}
    for d in dirs:
        d.chmod(0o500)
    try:
        yield
    finally:
        for d, mode in modes.items():
            d.chmod(mode)


def cli(client: ClientReplica, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    prefix = NO_OVERRIDE if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *client.cli_cmd(*args)], input=input, capture_output=True, text=True,
                          timeout=60, env=client.env(), cwd=ROOT)


@pytest.fixture
def synced(server, tmp_path) -> ClientReplica:
    client = ClientReplica(tmp_path / "c", server, "alex")
    done = client.cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    return client


def test_the_control_a_writable_data_dir_syncs(synced):
    done = cli(synced, "sync", "--once")  # the same way of running, without the read-only dir
    assert done.returncode == 0, done.stderr


def test_status_works_on_a_read_only_data_dir(synced):
    with read_only(synced.data_dir, synced.paths.cache_dir):
        done = cli(synced, "status", "--json")
        text = cli(synced, "status")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["bootstrapped"] and info["records"]["customer"] == 20
    assert text.returncode == 0 and "customers 20" in text.stdout and text.stderr == ""


@pytest.mark.parametrize("args", [("sync", "--once"), ("app",), ()], ids=["sync", "app", "no-command"])
def test_sync_and_the_app_say_in_one_line_that_the_data_dir_is_read_only(synced, args):
    with read_only(synced.data_dir, synced.paths.cache_dir):
        done = cli(synced, *args)
    assert done.returncode == 2
    assert done.stderr == f"crm-tui: {synced.data_dir} is read-only: syncing and the app need to write there " \
                          "(`crm-tui status` still works)\n"


def test_login_works_with_a_read_only_data_dir_and_says_so_when_it_cannot_store_the_token(synced, server):
    token = server.tokens["alex"]
    with read_only(synced.data_dir, synced.paths.cache_dir):
        done = cli(synced, "login", "--server", server.url, input=token + "\n")
    assert done.returncode == 0, done.stderr  # the login lives in the config dir
    with read_only(synced.paths.config_dir):
        done = cli(synced, "login", "--server", server.url, input=token + "\n")
    assert done.returncode == 2
    assert done.stderr.startswith(f"crm-tui: cannot store the login in {synced.paths.config_dir}: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    # Not SQLite's -wal/-shm: any reader of a WAL database makes its shared-memory index where it
    # can (and reads without one where it cannot: the read-only test above).
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if not p.name.endswith(("-wal", "-shm"))}


READ_ONLY_COMMANDS = [("status",), ("status", "--json"), ("agenda",), ("--help",), ("--version",),
                      ("status", "--help"), ("agenda", "--help"), ("sync", "--help"), ("login", "--help")]


def test_read_only_commands_create_and_change_nothing_in_the_data_dir(synced):
    """`status`, `agenda` and any `--help` or `--version` only read: no log directory appears
    (found in tmux: `crm-tui status` made <data dir>/log)."""
    shutil.rmtree(synced.data_dir / "log")
    before = _tree(synced.data_dir)
    for args in READ_ONLY_COMMANDS:
        done = synced.cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert _tree(synced.data_dir) == before, args


def test_login_on_a_read_only_data_dir_that_was_wiped_says_so_in_one_line(synced, server):
    """A new login forgets an earlier wipe by removing the marker; where the data dir cannot be
    written, that is one line and exit 2, never a traceback (a read-only mount gave one)."""
    synced.paths.wiped_marker.write_text("2026-12-01T00:00:00Z\n")
    with read_only(synced.data_dir, synced.paths.cache_dir):
        done = cli(synced, "login", "--server", server.url, input=server.tokens["alex"] + "\n")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"crm-tui: cannot use {synced.data_dir}: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
