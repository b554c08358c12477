"""Every row of the README's exit-code table, as a user meets it: the real CLI, the real server.
Each failure is one line on stderr, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from support.client import ClientReplica
from support.faultproxy import FaultProxy, Match, transform_json
from support.readme import readme_exit_codes
from sync.lock import holder_pid

pytestmark = pytest.mark.slow  # make test-slow: the real CLI in a subprocess, once per row


def nowhere() -> SimpleNamespace:
    """For scenarios that never reach a server: an address nothing listens on, a token never sent."""
    return SimpleNamespace(url=closed_port_url(), tokens={"alex": "crm_never_sent"})


def offline(scenario: Callable) -> Callable:
    """Marks a scenario that never reaches a server: it gets ``nowhere()``, and no server starts."""
    scenario.offline = True  # type: ignore[attr-defined]
    return scenario


def logged_out(tmp_path, server, user="alex") -> ClientReplica:
    client = ClientReplica(tmp_path / "c", server, user)
    client.paths.credentials.unlink()
    return client


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def sync_ok(server, tmp_path):
    return ClientReplica(tmp_path / "c", server, "alex").cli("sync", "--once")


def sync_of_bad_data(server, tmp_path):
    proxy = FaultProxy(server.url).start()
    try:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        proxy.add_rule(transform_json(lambda page: {**page, "has_more": "yes"}), match=Match(path="/v1/changes"))
        return client.cli("sync", "--once")
    finally:
        proxy.stop()


@offline
def once_and_daemon_together(server, tmp_path):
    return ClientReplica(tmp_path / "c", server, "alex").cli("sync", "--once", "--daemon")


@offline
def neither_once_nor_daemon(server, tmp_path):
    return ClientReplica(tmp_path / "c", server, "alex").cli("sync")


@offline
def a_missing_config_file(server, tmp_path):
    return ClientReplica(tmp_path / "c", server, "alex").cli("--config", str(tmp_path / "nope.toml"), "status")


@offline
def a_broken_config_file(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    client.config_file.write_text("[sync]\ninterval = 'soon'\n")
    return client.cli("status")


@offline
def sync_without_login(server, tmp_path):
    return logged_out(tmp_path, server).cli("sync", "--once")


def login_with_a_bad_token(server, tmp_path):
    return logged_out(tmp_path, server).cli("login", "--server", server.url, input="crm_not_a_token\n")


def sync_with_a_revoked_token(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.cli("sync", "--once").returncode == 0
    revoke = subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "token", "alex", "--revoke-others",
                             "--db", str(server.db_path)], capture_output=True, text=True, timeout=60)
    assert revoke.returncode == 0, revoke.stderr
    return client.cli("sync", "--once")


def login_to_an_unreachable_server(server, tmp_path):
    client = logged_out(tmp_path, server)
    return client.cli("login", "--server", closed_port_url(), input=server.tokens["alex"] + "\n")


@offline
def sync_with_the_server_down(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    return client.cli("sync", "--once")


def a_second_daemon(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    first = client.popen("sync", "--daemon", "--interval", "3600")
    try:
        deadline = time.monotonic() + 60
        while holder_pid(client.paths.daemon_lock) != first.pid:
            assert first.poll() is None and time.monotonic() < deadline, "the first daemon never started"
            time.sleep(0.05)
        return client.cli("sync", "--daemon")
    finally:
        first.terminate()
        first.communicate(timeout=30)


def sync_of_a_revoked_device(server, tmp_path):
    from crm_tui.device import device_id

    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.cli("sync", "--once").returncode == 0
    revoke = subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "revoke-device", "alex",
                             device_id(client.paths, create=False) or "", "--db", str(server.db_path)],
                            capture_output=True, text=True, timeout=60)
    assert revoke.returncode == 0, revoke.stderr
    return client.cli("sync", "--once")


# (exit code, scenario, what the one line must say)
SCENARIOS: list[tuple[int, Callable, str]] = [
    (0, sync_ok, "synced: "),
    (1, sync_of_bad_data, "has_more"),
    (2, once_and_daemon_together, "either --once or --daemon"),
    (2, neither_once_nor_daemon, "either --once or --daemon"),
    (2, a_missing_config_file, "nope.toml does not exist"),
    (2, a_broken_config_file, "sync.interval"),
    (3, sync_without_login, "crm-tui login"),
    (3, login_with_a_bad_token, "401"),
    (3, sync_with_a_revoked_token, "crm-tui login"),
    (4, login_to_an_unreachable_server, "cannot be reached"),
    (4, sync_with_the_server_down, "failed 3 times"),
    (5, a_second_daemon, "already serves this replica"),
    (6, sync_of_a_revoked_device, "an admin revoked this device: deleted the replica"),
]


def test_every_row_of_the_readme_table_has_a_scenario():
    assert {code for code, _, _ in SCENARIOS} == set(readme_exit_codes())


@pytest.mark.parametrize("code, scenario, says",
                         [pytest.param(c, s, m, id=f"{c}-{s.__name__}") for c, s, m in SCENARIOS])
def test_exit_code(request, tmp_path, code, scenario, says):
    server = nowhere() if getattr(scenario, "offline", False) else request.getfixturevalue("server")
    done = scenario(server, tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    if code:
        assert done.stderr.startswith("crm-tui: ") and done.stderr.count("\n") == 1, done.stderr
        assert says in done.stderr
    else:
        assert done.stdout.startswith(says)
