"""`crm-tui status`: what the replica holds and how its sync stands, for people and scripts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cache.errors import ReplicaError
from cache.sqlite import has_plaintext_header
from crm_tui import credentials, replica_key
from crm_tui.config import Settings
from crm_tui.domain import ENTITIES, parse_datetime, utcnow
from crm_tui.paths import Paths
from crm_tui.replicas import UnlockError, open_replica
from sync.lock import holder_pid


def _age(ts: str | None, now: dt.datetime) -> float | None:
    if not ts:
        return None
    try:
        return (now - parse_datetime(ts)).total_seconds()
    except ValueError:
        return None


def encryption_status(paths: Paths) -> dict[str, Any]:
    """Whether the replica is encrypted and where its key lives (nothing here is secret)."""
    plaintext = has_plaintext_header(str(paths.replica))
    try:
        info = replica_key.read_key_info(paths)
    except UnlockError:
        info = None
    return {"encrypted": plaintext is False, "key_store": info["store"] if info and plaintext is not True else None,
            "keyring": info.get("keyring") if info else None}


def _describe_encryption(enc: dict[str, Any]) -> str:
    if not enc["encrypted"]:
        return "OFF: the replica is plaintext (`crm-tui encrypt` encrypts it)"
    where = {"keyring": f"the OS keyring ({enc['keyring'] or 'keyring'})", "passphrase": "a passphrase"}
    return f"on (SQLCipher, AES-256); key in {where.get(enc['key_store'], 'an unknown place')}"


def collect_status(paths: Paths, settings: Settings) -> dict[str, Any]:
    try:
        creds = credentials.load(paths)
        token_error = None
    except credentials.TokenUnavailable as exc:
        creds, token_error = None, str(exc)
    now = utcnow()
    info: dict[str, Any] = {
        "server": creds.server if creds else None,
        "logged_in": creds is not None,
        "token_store": creds.store if creds else None,
        "token_error": token_error,
        "replica": str(paths.replica),
        "replica_exists": paths.replica.exists(),
        "sync_lock_pid": holder_pid(paths.lock),
    }
    if not paths.replica.exists():
        return info
    info["encryption"] = encryption_status(paths)
    try:
        replica = open_replica(paths, settings)
    except (ReplicaError, UnlockError) as exc:
        info["replica_error"] = str(exc)
        return info
    with replica:
        me = replica.get_meta("me")
        last_sync = replica.get_meta("last_sync_at")
        counts = replica.outbox.counts()
        info.update(
            {
                "user": me,
                "records": replica.counts(),
                "replica_bytes": paths.replica.stat().st_size,
                "phase": replica.get_meta("phase"),
                "bootstrapped": bool(replica.get_meta("bootstrapped")),
                "has_cursor": replica.cursor is not None,
                "last_sync_at": last_sync,
                "cursor_age_seconds": _age(last_sync, now),
                "last_failed_at": replica.get_meta("last_failed_at"),
                "last_error": replica.get_meta("last_error"),
                "pending_ops": counts["pending"],
                "conflicts": counts["conflicts"],
                "rejected_ops": counts["rejected"],
                "quarantined": replica.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0],
                "conflict_details": [
                    {"id": c.id, "entity": c.entity, "record_id": c.record_id, "kind": c.kind,
                     "fields": c.fields} for c in replica.outbox.conflicts(limit=20)
                ],
                "recent_syncs": replica.reads.sync_runs(limit=5),
                "rejected_details": [
                    {"seq": o.seq, "summary": o.summary, "reason": (o.error or {}).get("message")}
                    for o in replica.outbox.rejected(limit=20)
                ],
            }
        )
    return info


TOKEN_STORES = {"keyring": "the OS keyring", "file": "a 0600 file (security.token_store = \"file\")",
                "env": "CRM_TUI_TOKEN"}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def format_status(info: dict[str, Any]) -> str:
    lines = []
    me = info.get("user") or {}
    who = f" as {me.get('name')} ({me.get('role')})" if me else ""
    lines.append(f"server        {info['server'] or 'not configured (crm-tui login --server URL)'}{who}")
    if info.get("token_error"):
        lines.append(f"token         {info['token_error']}")
    elif info.get("token_store"):
        lines.append(f"token         in {TOKEN_STORES.get(info['token_store'], info['token_store'])}")
    lines.append(f"replica       {info['replica']}" + ("" if info["replica_exists"] else " (not created yet)"))
    if info.get("encryption"):
        lines.append(f"encryption    {_describe_encryption(info['encryption'])}")
    if info.get("replica_error"):
        lines.append(f"cannot open   {info['replica_error']}")
    elif info["replica_exists"]:
        size = info["replica_bytes"] / 1e6
        lines.append(f"size          {size:,.1f} MB")
        recs = info["records"]
        lines.append("records       " + ", ".join(f"{ENTITIES[k].table} {v:,}" for k, v in recs.items()))
        state = "bootstrapped" if info["bootstrapped"] else ("bootstrapping" if info["has_cursor"] else "empty")
        lines.append(f"sync          {state}; last sync {_ago(info['cursor_age_seconds'])}")
        lines.append(f"pending ops   {info['pending_ops']:,}")
        lines.append(f"conflicts     {info['conflicts']:,}")
        for c in info["conflict_details"]:
            fields = ", ".join(f"{k}: mine {v.get('mine')!r} / theirs {v.get('theirs')!r}" for k, v in c["fields"].items())
            what = "deleted here, changed on the server" if c["kind"] == "delete" else fields
            lines.append(f"  - {c['entity']} {c['record_id']}: {what}")
        lines.append(f"rejected ops  {info['rejected_ops']:,}")
        for r in info["rejected_details"]:
            lines.append(f"  - {r['summary']}: {r['reason']}")
        if info["quarantined"]:
            lines.append(f"quarantined   {info['quarantined']:,} invalid records from the server were set aside")
        lines.append(f"last error    {info['last_error'] or '-'}")
        if info["recent_syncs"]:
            lines.append("recent syncs")
            for run in info["recent_syncs"]:
                outcome = ("ok" if run["ok"] else "failed") if run["finished_at"] else "interrupted"
                what = f"pushed {run['pushed']}, pulled {run['pulled']}"
                extra = f" — {run['error']}" if run["error"] else ""
                lines.append(f"  {run['started_at']}  {outcome:<11} {what}{extra}")
    pid = info["sync_lock_pid"]
    lines.append(f"sync lock     {'held by pid ' + str(pid) if pid else 'free'}")
    return "\n".join(lines)
