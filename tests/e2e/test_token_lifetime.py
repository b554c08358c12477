"""Tokens expire and are renewed without the user typing anything: the real `crm-tui` against
the real server, the token in the real (private) keyring."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import httpx
import pytest

from crm_server.auth import new_token, token_hash
from crm_server.store import open_store
from crm_tui import credentials, keyring_store
from crm_tui.device import device_id
from support.client import ROOT, ClientReplica

pytestmark = pytest.mark.slow  # make test-slow: the real CLI in a subprocess, many times


def token_for(server, user: str, *, days_left: float, lifetime_days: float) -> str:
    """A token of ``user`` issued ``lifetime_days - days_left`` days ago (through the store)."""
    token = new_token()
    store = open_store(server.db_url)
    try:
        with store.write() as tx:
            tx.add_token(server.user_ids[user], token_hash(token), expires_at=int(time.time() + days_left * 86400),
                         lifetime=int(lifetime_days * 86400))
    finally:
        store.close()
    return token


def me(server, token: str) -> httpx.Response:
    return httpx.get(server.url + "/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def days_left(text: str) -> float:
    return (dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)).total_seconds() / 86400


def stored_token(client: ClientReplica) -> str:
    creds = credentials.load(client.paths)
    assert creds is not None and creds.store == "keyring"
    return creds.token


def test_sync_renews_a_token_due_for_renewal_and_keeps_the_new_one_in_the_keyring(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    due = token_for(server, "alex", days_left=5, lifetime_days=30)
    credentials.save(client.paths, credentials.Credentials(server.url, due))

    synced = client.cli("sync", "--once")
    assert synced.returncode == 0, synced.stderr
    renewed = stored_token(client)
    assert renewed != due and keyring_store.get_secret(f"api-token:{client.data_dir}") == renewed
    line = next(x for x in synced.stderr.splitlines() if x.startswith("renewed the API token"))
    assert 29.9 < days_left(line.rsplit(" ", 1)[1]) <= 30, "the new token gets the old one's lifetime"
    assert renewed not in synced.stderr + synced.stdout, "a token is never printed"
    body = me(server, renewed).json()
    assert body["id"] == "alex" and 29.9 < days_left(body["token"]["expires_at"]) <= 30
    old = me(server, due)
    assert old.status_code == 200 and days_left(old.json()["token"]["expires_at"]) * 24 <= 1, \
        "the old token works for an hour more, no longer"

    status = json.loads(client.cli("status", "--json").stdout)
    assert 29.9 < days_left(status["token_expires_at"]) <= 30, "status shows the renewed token's expiry"
    assert status["device_id"] == device_id(client.paths, create=False)
    assert f"; expires {status['token_expires_at']}, renewed before then" in client.cli("status").stdout
    again = client.cli("sync", "--once")
    assert again.returncode == 0 and "renewed" not in again.stderr, "a fresh token is not renewed again"
    assert stored_token(client) == renewed
    # The renewing device is the one the server knows the new token from.
    devices = subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "devices", "alex", "--db", server.db_url],
                             capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert devices.startswith(device_id(client.paths, create=False) + "\t")


def test_login_renew_renews_the_stored_token_on_request(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    first = stored_token(client)
    done = client.cli("login", "--renew")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("renewed the API token; the new one expires ")
    assert "stored in the OS keyring" in done.stdout
    assert stored_token(client) != first
    assert client.cli("sync", "--once").returncode == 0

    with_env = client.cli("login", "--renew", CRM_TUI_TOKEN=first, CRM_TUI_SERVER=server.url)
    assert with_env.returncode == 2 and "CRM_TUI_TOKEN" in with_env.stderr
    both = client.cli("login", "--renew", "--server", server.url)
    assert both.returncode == 2 and both.stderr == "crm-tui: --renew renews the stored token: give it alone\n"


def test_an_expired_token_gets_a_clear_refusal_and_exit_3(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    expired = token_for(server, "alex", days_left=-1, lifetime_days=30)
    credentials.save(client.paths, credentials.Credentials(server.url, expired))
    refused = client.cli("sync", "--once")
    assert refused.returncode == 3
    assert refused.stderr.count("\n") == 1
    assert "this API token expired on " in refused.stderr and "crm-tui login" in refused.stderr
    renew = client.cli("login", "--renew")
    assert renew.returncode == 3 and "expired on" in renew.stderr, "an expired token cannot be renewed"
    login = client.cli("login", "--server", server.url, "--token-stdin", input=expired + "\n")
    assert login.returncode == 3 and "expired on" in login.stderr
