"""Encryption at rest as users meet it: `crm-tui` processes against the real server, keys in a
real (private) Secret Service or behind a passphrase, `crm-tui encrypt` on a replica with
pending edits, and the daemon and the app sharing an encrypted replica."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pexpect
import pytest

from crm_tui import keyring_store
from crm_tui.config import SecuritySettings, Settings
from crm_tui.replica_key import read_key_info
from crm_tui.replicas import open_replica
from support.client import ROOT, ClientReplica
from support.keys import raw_bytes_under
from support.records import first_customer

PASSPHRASE = "correct horse battery staple"


def on_disk(client: ClientReplica) -> bytes:
    """Everything a stranger could read: the replica, its WAL and SHM, the hot cache, exports."""
    return raw_bytes_under(client.data_dir)


def leaks(client: ClientReplica, *needles: str) -> list[str]:
    data = on_disk(client)
    return [n for n in needles if n.encode() in data]


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_new_replica_is_encrypted_with_its_key_in_the_keyring(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    customer = first_customer(server, user="alex")
    done = client.cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    with client.replica() as r:  # the app's view: fills the hot cache and leaves a WAL behind
        assert r.reads.customer_360(customer["id"]) is not None
        r.writes.update("customer", customer["id"], {"city": "Quixotetown"})
        assert (client.data_dir / "replica.db-wal").stat().st_size > 0
        assert leaks(client, customer["name"], customer["email"], "Quixotetown") == []
    info = read_key_info(client.paths)
    assert info["store"] == "keyring" and "wrapped_key" not in info
    assert len(bytes.fromhex(keyring_store.get_secret(f"replica-key:{info['key_id']}"))) == 32
    status = json.loads(client.cli("status", "--json").stdout)
    assert status["encryption"] == {"encrypted": True, "key_store": "keyring", "keyring": "SecretService Keyring"}
    assert "encryption    on (SQLCipher, AES-256); key in the OS keyring" in client.cli("status").stdout


def test_the_passphrase_from_the_environment_and_a_wrong_one(server, tmp_path, no_keyring):
    client = ClientReplica(tmp_path / "c", server, "alex", token_store="file")
    customer = first_customer(server, user="alex")
    short = client.cli("sync", "--once", CRM_TUI_PASSPHRASE="short")
    assert short.returncode == 3 and "shorter than 8 characters" in short.stderr
    done = client.cli("sync", "--once", CRM_TUI_PASSPHRASE=PASSPHRASE)
    assert done.returncode == 0, done.stderr
    assert read_key_info(client.paths)["store"] == "passphrase"
    assert leaks(client, customer["name"], customer["email"], PASSPHRASE) == []

    wrong = client.cli("sync", "--once", CRM_TUI_PASSPHRASE="not the passphrase")
    assert wrong.returncode == 3
    assert wrong.stderr == (f"crm-tui: CRM_TUI_PASSPHRASE is not the passphrase of the replica at "
                            f"{client.paths.replica}\n")
    none = client.cli("sync", "--once")  # no terminal, no variable: say how to give it
    assert none.returncode == 3 and none.stderr.count("\n") == 1
    assert "protected by a passphrase: set CRM_TUI_PASSPHRASE" in none.stderr
    status = json.loads(client.cli("status", "--json", CRM_TUI_PASSPHRASE=PASSPHRASE).stdout)
    assert status["encryption"]["key_store"] == "passphrase" and status["records"]["customer"] == 20


def spawn(client: ClientReplica, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "crm_tui.cli", "--data-dir", str(client.data_dir), *args],
                         env=client.env(), cwd=str(ROOT), timeout=60, encoding="utf-8")


def test_in_a_terminal_the_passphrase_is_chosen_then_asked_for(server, tmp_path, no_keyring):
    client = ClientReplica(tmp_path / "c", server, "alex", token_store="file")
    first = spawn(client, "sync", "--once")
    first.expect("no secure OS keyring here")
    first.expect("New passphrase: ")
    first.sendline(PASSPHRASE)
    first.expect("Same passphrase again: ")
    first.sendline(PASSPHRASE)
    first.expect("synced: pushed 0, pulled ")
    first.expect(pexpect.EOF)
    first.close()
    assert first.exitstatus == 0

    later = spawn(client, "status")
    later.expect("Passphrase for the replica at ")
    later.sendline("a wrong guess")
    later.expect("wrong passphrase")
    later.expect("Passphrase for the replica at ")
    later.sendline(PASSPHRASE)
    later.expect("encryption    on \\(SQLCipher, AES-256\\); key in a passphrase")
    later.expect("customers 20")
    later.expect(pexpect.EOF)
    later.close()
    assert later.exitstatus == 0 and PASSPHRASE not in (later.before or "")


EDITOR = """
import os, signal, sys
from pathlib import Path
from crm_tui.config import SecuritySettings, Settings
from crm_tui.paths import Paths
from crm_tui.replicas import open_replica
paths = Paths(data_dir=Path(sys.argv[1]), cache_dir=Path(sys.argv[2]), config_dir=Path(sys.argv[3]))
r = open_replica(paths, Settings(security=SecuritySettings(encrypt_replica=False)))
r.writes.update("customer", sys.argv[4], {"city": "Quixotetown"})
r.writes.create("activity", {"customer_id": sys.argv[4], "kind": "note", "body": "Zanzibar quarterly review",
                             "occurred_at": "2026-11-25T10:00:00Z"})
r.reads.customer_360(sys.argv[4])
print("saved", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean close: the edits stay in the WAL
"""


def test_encrypt_converts_a_plaintext_replica_in_place_keeping_pending_edits(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    customer = first_customer(server, user="alex")
    plain = client.cli("sync", "--once", CRM_TUI_SECURITY__ENCRYPT_REPLICA="false")
    assert plain.returncode == 0 and "WARNING: encryption is off" in plain.stderr
    editor = subprocess.run([sys.executable, "-c", EDITOR, str(client.data_dir), str(client.paths.cache_dir),
                             str(client.paths.config_dir), customer["id"]], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, env=client.env())
    assert editor.stdout == "saved\n", editor.stderr
    assert (client.data_dir / "replica.db-wal").stat().st_size > 0
    assert leaks(client, customer["name"], "Zanzibar quarterly review")  # the control: plaintext today

    refused = client.cli("sync", "--once")
    assert refused.returncode == 1
    assert "is not encrypted; run `crm-tui encrypt`" in refused.stderr and refused.stderr.count("\n") == 1

    plaintext_settings = Settings(security=SecuritySettings(encrypt_replica=False))
    with open_replica(client.paths, plaintext_settings):  # the app has it open: encrypt must wait
        busy = client.cli("encrypt")
    assert busy.returncode == 5 and "open in another crm-tui process" in busy.stderr

    done = client.cli("encrypt")
    assert done.returncode == 0, done.stderr
    assert "2 pending edits kept" in done.stdout
    assert not (client.data_dir / "replica.db.encrypting").exists()
    assert leaks(client, customer["name"], customer["email"], "Zanzibar quarterly review", "Quixotetown") == []
    assert "already encrypted" in client.cli("encrypt").stdout

    synced = client.cli("sync", "--once")
    assert synced.returncode == 0 and synced.stdout.startswith("synced: pushed 2,"), synced.stdout + synced.stderr
    assert server.get_record("customers", customer["id"])["city"] == "Quixotetown"
    with server.client("alex") as http:
        notes = http.get("/v1/activities", params={"customer_id": customer["id"], "limit": 200}).json()["items"]
    assert "Zanzibar quarterly review" in [n["body"] for n in notes]


def test_encrypt_refuses_while_the_daemon_runs(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.cli("sync", "--once", CRM_TUI_SECURITY__ENCRYPT_REPLICA="false").returncode == 0
    daemon = client.popen("sync", "--daemon", "--interval", "3600", CRM_TUI_SECURITY__ENCRYPT_REPLICA="false")
    try:
        wait_until(lambda: json.loads(client.cli("status", "--json", CRM_TUI_SECURITY__ENCRYPT_REPLICA="false")
                                      .stdout or "{}").get("daemon_pid"), "the daemon to start serving")
        busy = client.cli("encrypt")
        assert busy.returncode == 5 and "sync daemon" in busy.stderr and "crm-tui encrypt" in busy.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=20)
    assert client.cli("encrypt").returncode == 0
