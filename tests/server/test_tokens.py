"""Tokens expire and are renewed; devices are recorded and can be revoked (remote wipe), on
both stores, through the real server and the real `crm-server` command line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import httpx

from crm_server.auth import new_token, token_hash
from crm_server.store import open_store
from support.client import ROOT

DEVICE_A = "device-aaaaaaaaaaaaaaaa"
DEVICE_B = "device-bbbbbbbbbbbbbbbb"


def admin(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crm_server.cli", *args, "--db", server.db_url], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def call(server, token: str, path: str = "/v1/me", method: str = "GET", device: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if device:
        headers["X-CRM-Device"] = device
        headers["X-CRM-Device-Name"] = f"laptop {device[-4:]}"
    return httpx.request(method, server.url + path, headers=headers, timeout=30)


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def days_from_now(text: str) -> float:
    return (when(text) - dt.datetime.now(dt.UTC)).total_seconds() / 86400


def expired_token(server, user: str) -> str:
    """A day-long token of ``user`` that expired a minute ago (issued through the store)."""
    token = new_token()
    store = open_store(server.db_url)
    try:
        with store.write() as tx:
            tx.add_token(server.user_ids[user], token_hash(token), expires_at=int(time.time()) - 60, lifetime=86400)
    finally:
        store.close()
    return token


def test_tokens_expire_after_the_days_they_were_issued_for(server):
    made = admin(server, "user", "token", "sam", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    assert made.stderr.startswith("this token expires ")
    token = made.stdout.strip()
    times = call(server, token).json()["token"]
    assert 29.9 < days_from_now(times["expires_at"]) <= 30
    assert 19.9 < days_from_now(times["renew_after"]) <= 20, "renewal is due after two thirds of the lifetime"
    default = call(server, server.tokens["sam"]).json()["token"]
    assert 89.9 < days_from_now(default["expires_at"]) <= 90, "the default lifetime is 90 days"
    never = admin(server, "user", "token", "sam", "--expires-days", "0")
    assert never.stderr == "this token never expires\n"
    assert call(server, never.stdout.strip()).json()["token"] == {"expires_at": None, "renew_after": None}

    expired = expired_token(server, "sam")
    answer = call(server, expired)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "token_expired"
    assert error["message"].startswith("this API token expired on ") and "crm-tui login" in error["message"]
    refused = call(server, expired, "/v1/token/renew", "POST")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_expired"


def test_a_renewed_token_works_and_the_old_one_stops_an_hour_later(server):
    old = admin(server, "user", "token", "sam", "--expires-days", "10").stdout.strip()
    answer = call(server, old, "/v1/token/renew", "POST", device=DEVICE_A)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    new = body["token"]
    assert new != old and new.startswith("crm_")
    assert 9.9 < days_from_now(body["expires_at"]) <= 10, "the new token gets the old one's lifetime"
    assert call(server, new).json()["id"] == "sam"
    old_times = call(server, old).json()["token"]
    assert days_from_now(old_times["expires_at"]) * 24 <= 1.0, "the old token keeps working for an hour at most"
    store = open_store(server.db_url)
    try:
        with store.read() as tx:
            assert tx.token_used_on(token_hash(new), DEVICE_A), "a renewed token belongs to the device that asked"
    finally:
        store.close()


def test_devices_are_recorded_listed_and_revoked(server):
    first = admin(server, "user", "token", "sam").stdout.strip()
    second = admin(server, "user", "token", "sam").stdout.strip()
    assert call(server, first, device=DEVICE_A).status_code == 200
    assert call(server, second, device=DEVICE_B).status_code == 200
    listed = admin(server, "user", "devices", "sam")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [DEVICE_A, DEVICE_B]
    assert lines[0].split("\t")[1] == "laptop aaaa" and lines[0].endswith("\tactive")

    revoked = admin(server, "user", "revoke-device", "sam", DEVICE_A[:10])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"revoked device {DEVICE_A} (laptop aaaa) of sam: ")
    assert "1 token(s)" in revoked.stdout
    assert admin(server, "user", "devices", "sam").stdout.splitlines()[0].split("\t")[-1].startswith("revoked ")

    # The lost device is told, with its own token, a new one, or none known at all.
    for token in (first, second, "crm_not-a-token"):
        answer = call(server, token, device=DEVICE_A)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "device_revoked", token
    # Its token is dead everywhere: without a device id (curl from a copy of the disk) it is
    # the lost device; from another device it is just revoked.
    assert call(server, first).json()["error"]["code"] == "device_revoked"
    elsewhere = call(server, first, device=DEVICE_B)
    assert elsewhere.status_code == 401 and "revoked with a lost device" in elsewhere.json()["error"]["message"]
    # The user's other device keeps working.
    assert call(server, second, device=DEVICE_B).status_code == 200
    assert call(server, second, "/v1/changes?limit=10", device=DEVICE_B).status_code == 200

    again = admin(server, "user", "revoke-device", "sam", DEVICE_A)
    assert again.returncode == 1 and again.stderr == f"Error: device {DEVICE_A} of sam was revoked already\n"
    unknown = admin(server, "user", "revoke-device", "sam", "nosuchdevice")
    assert unknown.returncode == 1 and "sam has no device 'nosuchdevice'" in unknown.stderr


def test_a_malformed_device_id_is_a_clear_400(server):
    answer = call(server, server.tokens["sam"], device="bad id!")
    assert answer.status_code == 400
    assert "X-CRM-Device must be 16-64 letters" in answer.json()["error"]["message"]


def test_housekeeping_forgets_tokens_long_expired(store_target):
    from crm_server.accounts import add_user, purge_expired_tokens

    store = open_store(store_target)
    try:
        add_user(store, "Old Timer", role="agent")
        now = int(time.time())
        with store.write() as tx:
            for name, expires in (("long", now - 31 * 86400), ("recent", now - 86400), ("live", now + 86400)):
                tx.add_token("old-timer", token_hash(name), expires_at=expires, lifetime=90 * 86400)
                tx.note_device("old-timer", DEVICE_A, token_hash(name), None, now)
        assert purge_expired_tokens(store) == 1
        with store.read() as tx:
            assert tx.token_info(token_hash("long")) is None and not tx.token_used_on(token_hash("long"), DEVICE_A)
            assert tx.token_info(token_hash("recent")) is not None, "still answered 'expired on ...' for 30 days"
            assert tx.token_info(token_hash("live")) is not None
    finally:
        store.close()
