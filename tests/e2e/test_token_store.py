"""Where the API token lives: the OS keyring (a real, private Secret Service here), a 0600 file
only on request, never silently in plaintext; an old file-stored token moves into the keyring on
first use; a renewed token replaces the stored one."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from crm_tui import credentials, keyring_store
from support.client import ROOT, ClientReplica


def logged_out(tmp_path, server) -> ClientReplica:
    client = ClientReplica(tmp_path / "c", server, "alex", token_store="file")
    credentials.forget(client.paths)
    return client


def test_a_token_left_in_the_file_by_an_older_version_moves_into_the_keyring(server, tmp_path):
    client = logged_out(tmp_path, server)
    token = server.tokens["alex"]
    client.paths.credentials.write_text(json.dumps({str(client.data_dir): {"server": server.url, "token": token}}))
    first = client.cli("sync", "--once")
    assert first.returncode == 0, first.stderr
    assert (f"crm-tui: moved the API token for {client.data_dir} from {client.paths.credentials} into the OS "
            "keyring (SecretService Keyring)") in first.stderr
    assert token not in client.paths.credentials.read_text()
    assert keyring_store.get_secret(f"api-token:{client.data_dir}") == token
    again = client.cli("sync", "--once")
    assert again.returncode == 0 and "moved" not in again.stderr


def test_without_a_keyring_the_token_is_never_silently_in_plaintext(server, tmp_path, no_keyring):
    client = logged_out(tmp_path, server)
    token = server.tokens["alex"]
    refused = client.cli("login", "--server", server.url, "--token-stdin", input=token + "\n")
    assert refused.returncode == 3 and refused.stderr.count("\n") == 1
    assert "cannot store the token: no secure OS keyring" in refused.stderr
    assert 'security.token_store = "file"' in refused.stderr
    assert not client.paths.credentials.exists() or token not in client.paths.credentials.read_text()

    # A token an older version wrote to the file still works, with a warning every time.
    client.paths.credentials.write_text(json.dumps({str(client.data_dir): {"server": server.url, "token": token}}))
    warned = client.cli("sync", "--once", CRM_TUI_PASSPHRASE="correct horse battery")
    assert warned.returncode == 0, warned.stderr
    assert "WARNING: the API token for" in warned.stderr and "stored in plaintext" in warned.stderr


def test_the_file_store_is_an_explicit_opt_in(server, tmp_path, no_keyring):
    client = logged_out(tmp_path, server)
    token = server.tokens["alex"]
    done = client.cli("login", "--server", server.url, "--token-stdin", input=token + "\n",
                      CRM_TUI_SECURITY__TOKEN_STORE="file")
    assert done.returncode == 0, done.stderr
    assert 'security.token_store = "file"' in done.stdout
    assert stat.S_IMODE(os.stat(client.paths.credentials).st_mode) == 0o600
    entry = json.loads(client.paths.credentials.read_text())[str(client.data_dir)]
    assert entry == {"server": server.url, "token": token, "token_store": "file"}
    synced = client.cli("sync", "--once", CRM_TUI_PASSPHRASE="correct horse battery")
    assert synced.returncode == 0 and "WARNING" not in synced.stderr
    status = client.cli("status", CRM_TUI_PASSPHRASE="correct horse battery").stdout
    assert 'token         in a 0600 file (security.token_store = "file")' in status


def test_a_renewed_token_replaces_the_stored_one_and_logout_forgets_it(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.cli("sync", "--once").returncode == 0
    renewed = subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "token", "alex", "--revoke-others",
                              "--db", str(server.db_path)], capture_output=True, text=True, cwd=ROOT, timeout=60,
                             check=True).stdout.strip()
    refused = client.cli("sync", "--once")
    assert refused.returncode != 0 and "refused the token (401)" in refused.stderr
    where = credentials.save(client.paths, credentials.Credentials(server.url, renewed))  # what a renewal calls
    assert where.startswith("the OS keyring")
    assert credentials.load(client.paths) == credentials.Credentials(server.url, renewed, store="keyring")
    assert client.cli("sync", "--once").returncode == 0
    assert client.cli("logout").stdout == "logged out\n"
    assert keyring_store.get_secret(f"api-token:{client.data_dir}") is None
