"""Remote wipe: an admin revokes a lost device; at its next contact with the server the client
deletes its replica, hot cache, save journal, exports in progress, replica key and stored
credentials, says so in one line and exits 6 -- from `sync --once`, the daemon and the app. The
user's other devices keep working. The real CLI, the real server, the real keyring."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_tui import credentials, keyring_store
from crm_tui.device import device_id
from crm_tui.replica_key import read_key_info
from support.app import open_app
from support.client import ROOT, ClientReplica, assert_replica_matches_server
from sync.lock import holder_pid

WIPED = "crm-tui: an admin revoked this device: deleted the replica, hot cache, save journal, exports in progress, " \
        "replica key and stored credentials of "


def admin(server, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "crm_server.cli", *args, "--db", server.db_url], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def device_of(server, user: str, tmp_path: Path, name: str) -> ClientReplica:
    """A device of ``user`` with a token of its own, synced once through the real CLI."""
    token = admin(server, "user", "token", user).stdout.strip()
    server.tokens[f"{user}@{name}"] = token
    client = ClientReplica(tmp_path / name, server, f"{user}@{name}")
    client.user = user
    done = client.cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    return client


def with_local_work(client: ClientReplica) -> None:
    """A pending edit, a hot-cache entry, a queued save and an export cut short: every kind of
    local file that holds customer data."""
    with client.replica() as r:
        (customer_id,) = r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()
        r.writes.update("customer", customer_id, {"city": "Lost Laptop City"})
        r.saves.submit("update", "customer", customer_id, {"city": "Queued"})
        r.hot.get_or_build("probe", ("t",), lambda: {"held": "customer data"})
    spool = client.data_dir / "exports-in-progress"
    spool.mkdir(exist_ok=True)
    (spool / "export-cut-short").write_bytes(b"sealed chunks")


def local_files(client: ClientReplica) -> list[str]:
    return sorted(str(p.relative_to(client.data_dir)) for p in client.data_dir.rglob("*") if p.is_file())


def assert_wiped(client: ClientReplica, key_info: dict) -> None:
    left = local_files(client)
    assert not [f for f in left if f.startswith(("replica.db", "replica-saves.db", "replica-key.json", "hot/",
                                                  "exports-in-progress/", "log/device-id"))], left
    assert not client.paths.cache_dir.exists()
    assert keyring_store.get_secret(f"replica-key:{key_info['key_id']}") is None, "the replica key left the keyring"
    assert keyring_store.get_secret(f"api-token:{client.data_dir}") is None, "the token left the keyring"
    assert credentials.load(client.paths) is None


def test_a_revoked_device_deletes_its_data_and_the_users_other_devices_keep_working(server, tmp_path):
    laptop = device_of(server, "sam", tmp_path, "laptop")
    desktop = device_of(server, "sam", tmp_path, "desktop")
    with_local_work(laptop)
    key_info = read_key_info(laptop.paths)
    assert key_info and keyring_store.get_secret(f"replica-key:{key_info['key_id']}")
    before = local_files(laptop)
    assert {"replica.db", "replica-saves.db", "replica-key.json", "log/device-id",
            "exports-in-progress/export-cut-short"} <= set(before), before
    assert any(f.startswith("hot/") for f in before)

    lost = device_id(laptop.paths, create=False)
    listed = admin(server, "user", "devices", "sam").stdout
    assert lost in listed and device_id(desktop.paths, create=False) in listed
    admin(server, "user", "revoke-device", "sam", lost)

    wiped = laptop.cli("sync", "--once")
    assert wiped.returncode == 6, wiped.stderr
    assert wiped.stderr.startswith(WIPED + str(laptop.data_dir)) and wiped.stderr.count("\n") == 1
    assert_wiped(laptop, key_info)
    again = laptop.cli("sync", "--once")
    assert again.returncode == 6 and "was deleted at" in again.stderr and again.stderr.count("\n") == 1
    status = laptop.cli("status")
    assert status.returncode == 0 and "wiped         an admin revoked this device; its local data was deleted at " \
        in status.stdout
    app = laptop.cli()
    assert app.returncode == 6 and "was deleted at" in app.stderr, "the app does not open a wiped device"

    # The same user's other device is untouched and keeps syncing.
    kept = desktop.cli("sync", "--once")
    assert kept.returncode == 0, kept.stderr
    assert_replica_matches_server(desktop, server, "sam")

    # Logging in again on the recovered laptop starts afresh, as a new device.
    fresh = admin(server, "user", "token", "sam").stdout.strip()
    login = laptop.cli("login", "--server", server.url, "--token-stdin", input=fresh + "\n")
    assert login.returncode == 0, login.stderr
    assert device_id(laptop.paths, create=False) not in (None, lost)
    assert laptop.cli("sync", "--once").returncode == 0


def test_the_daemon_of_a_revoked_device_wipes_and_exits_6(server, tmp_path):
    tablet = device_of(server, "rita", tmp_path, "tablet")
    key_info = read_key_info(tablet.paths)
    daemon = tablet.popen("sync", "--daemon", "--interval", "3600")
    try:
        deadline = time.monotonic() + 60
        while holder_pid(tablet.paths.daemon_lock) != daemon.pid:
            assert daemon.poll() is None and time.monotonic() < deadline, "the daemon never started"
            time.sleep(0.05)
        admin(server, "user", "revoke-device", "rita", device_id(tablet.paths, create=False))
        daemon.send_signal(signal.SIGUSR1)  # "sync now"
        _, stderr = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 6
    assert stderr.splitlines()[-1].startswith(WIPED + str(tablet.data_dir))
    assert "Traceback" not in stderr
    assert_wiped(tablet, key_info)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_app_of_a_revoked_device_closes_and_says_why(server, tmp_path):
    phone = device_of(server, "alex", tmp_path, "phone")
    admin(server, "user", "revoke-device", "alex", device_id(phone.paths, create=False))
    app = open_app(phone)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(600):
            if app.return_code is not None:
                break
            await pilot.pause(0.05)
    assert app.return_code == 6
    assert app.revoked_message.startswith(WIPED.removeprefix("crm-tui: ") + str(phone.data_dir))
    assert not phone.paths.replica.exists()
