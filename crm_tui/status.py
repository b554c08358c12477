"""`crm-tui status`: what the replica holds and how its sync stands, for people and scripts.

It only reads: it works while a sync runs, and in a data dir that cannot be written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cache.sqlite import has_plaintext_header
from crm_tui import credentials, replica_key
from crm_tui.config import Settings
from crm_tui.core.domain import ENTITIES, parse_datetime, utcnow
from crm_tui.core.syncstate import failed_attempts_text
from crm_tui.core.text import span
from crm_tui.device import device_id
from crm_tui.paths import Paths
from crm_tui.replicas import open_replica
from crm_tui.wipe import was_wiped
from sync.lock import holder_pid

TOKEN_STORES = {"keyring": "the OS keyring", "file": "a 0600 file (security.token_store = \"file\")",
                "env": "CRM_TUI_TOKEN"}
SHOWN = 20  # conflicts and rejected writes listed without --all


def _age(ts: str | None, now: dt.datetime) -> float | None:
    if not ts:
        return None
    try:
        return (now - parse_datetime(ts)).total_seconds()
    except ValueError:
        return None


def _run_outcome(run: dict[str, Any], running: bool) -> str:
    if run["finished_at"]:
        return "ok" if run["ok"] else "failed"
    return "running" if running else "interrupted"


def encryption_status(paths: Paths) -> dict[str, Any]:
    """Whether the replica is encrypted and where its key lives (nothing here is secret)."""
    plaintext = has_plaintext_header(str(paths.replica))
    try:
        info = replica_key.read_key_info(paths)
    except replica_key.UnlockError:
        info = None
    return {"encrypted": plaintext is False, "key_store": info["store"] if info and plaintext is not True else None,
            "keyring": info.get("keyring") if info else None}


def _describe_encryption(enc: dict[str, Any]) -> str:
    if not enc["encrypted"]:
        return "OFF: the replica is plaintext (`crm-tui encrypt` encrypts it)"
    where = {"keyring": f"the OS keyring ({enc['keyring'] or 'keyring'})", "passphrase": "a passphrase"}
    return f"on (SQLCipher, AES-256); key in {where.get(enc['key_store'], 'an unknown place')}"


def collect_status(paths: Paths, settings: Settings, limit: int | None = SHOWN) -> dict[str, Any]:
    """Everything `status` shows, as plain data. ``limit``: how many conflicts and rejected
    writes to list (None: all); the totals are always there. Raises ReplicaError for a replica
    that cannot be read, UnlockError for one whose key cannot be had."""
    try:
        creds = credentials.load(paths)
        token_error = None
    except credentials.TokenUnavailable as exc:
        creds, token_error = None, str(exc)
    now = utcnow()
    running_pid = holder_pid(paths.lock)
    info: dict[str, Any] = {
        "server": creds.server if creds else None,
        "logged_in": creds is not None,
        "token_store": creds.store if creds else None,
        "token_error": token_error,
        "replica": str(paths.replica),
        "replica_exists": paths.replica.exists(),
        "sync_lock_pid": running_pid,
        "daemon_pid": holder_pid(paths.daemon_lock),
        "log_file": str(paths.log_file),
        "device_id": device_id(paths, create=False),
        "wiped_at": was_wiped(paths),
    }
    if not paths.replica.exists():
        return info
    info["encryption"] = encryption_status(paths)
    shown = limit if limit is not None else -1  # SQLite: LIMIT -1 is no limit
    with open_replica(paths, settings, read_only=True) as replica:
        me = replica.reads.me()
        last_sync = replica.get_meta("last_sync_at")
        counts = replica.outbox.counts()
        runs = replica.reads.sync_runs(limit=5)
        # Only the newest run can be the one in progress: runs take the run lock one at a time.
        for i, run in enumerate(runs):
            run["outcome"] = _run_outcome(run, running_pid is not None and i == 0)
        conflicts = replica.conflicts.unresolved(limit=shown)
        rejected = replica.outbox.rejected(limit=shown)
        info.update(
            {
                "user": me,
                "token_expires_at": replica.get_meta("token_expires_at"),
                "records": replica.counts(),
                "replica_bytes": paths.replica.stat().st_size,
                "phase": replica.get_meta("phase"),
                "bootstrapped": bool(replica.get_meta("bootstrapped")),
                "has_cursor": replica.cursor is not None,
                "last_sync_at": last_sync,
                "cursor_age_seconds": _age(last_sync, now),
                "last_failed_at": replica.get_meta("last_failed_at"),
                "last_error": replica.get_meta("last_error"),
                "failed_attempts": replica.history.failed_attempts(),
                "pending_ops": counts["pending"],
                "conflicts": counts["conflicts"],
                "rejected_ops": counts["rejected"],
                "quarantined": replica.reads.quarantined_count(),
                "conflict_details": [
                    {"id": c.id, "entity": c.entity, "record_id": c.record_id, "kind": c.kind,
                     "fields": c.fields} for c in conflicts
                ],
                "conflicts_not_shown": counts["conflicts"] - len(conflicts),
                "recent_syncs": runs,
                "rejected_details": [
                    {"seq": o.seq, "summary": o.summary, "reason": (o.error or {}).get("message")}
                    for o in rejected
                ],
                "rejected_not_shown": counts["rejected"] - len(rejected),
            }
        )
    return info


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{span(seconds)} ago"


def _who_syncs(info: dict[str, Any]) -> str:
    daemon, running = info.get("daemon_pid"), info.get("sync_lock_pid")
    parts = [f"a sync daemon (pid {daemon}) serves this replica" if daemon
             else "no sync daemon (the app syncs while it runs; `crm-tui sync --daemon` keeps syncing)"]
    if running:
        parts.append(f"a sync is running now (pid {running})")
    return "; ".join(parts)


def format_status(info: dict[str, Any]) -> str:
    lines = []
    me = info.get("user") or {}
    who = f" as {me.get('name')} ({me.get('role')})" if me else ""
    lines.append(f"server        {info['server'] or 'not configured (crm-tui login --server URL)'}{who}")
    if info.get("token_error"):
        lines.append(f"token         {info['token_error']}")
    elif info.get("token_store"):
        expires = info.get("token_expires_at")
        renewal = "" if info["token_store"] == "env" else ", renewed before then"
        lines.append(f"token         in {TOKEN_STORES.get(info['token_store'], info['token_store'])}"
                     + (f"; expires {expires}{renewal}" if expires else ""))
    if info.get("wiped_at"):
        lines.append(f"wiped         an admin revoked this device; its local data was deleted at {info['wiped_at']}"
                     " (`crm-tui login` starts afresh)")
    if info.get("device_id"):
        lines.append(f"device        {info['device_id']} (what `crm-server user devices` lists)")
    lines.append(f"replica       {info['replica']}" + ("" if info["replica_exists"] else " (not created yet)"))
    if info.get("encryption"):
        lines.append(f"encryption    {_describe_encryption(info['encryption'])}")
    if info["replica_exists"]:
        size = info["replica_bytes"] / 1e6
        lines.append(f"size          {size:,.1f} MB")
        recs = info["records"]
        lines.append("records       " + ", ".join(f"{ENTITIES[k].table} {v:,}" for k, v in recs.items()))
        state = "bootstrapped" if info["bootstrapped"] else ("bootstrapping" if info["has_cursor"] else "empty")
        lines.append(f"sync          {state}; last sync {_ago(info['cursor_age_seconds'])}")
        if failing := info.get("failed_attempts"):
            # The same words as the app's status line: the count across runs and processes.
            lines.append(f"offline       {failed_attempts_text(int(failing['count']), failing.get('reason'))}"
                         f" (since {failing['since']})")
        lines.append(f"pending ops   {info['pending_ops']:,}")
        lines.append(f"conflicts     {info['conflicts']:,}")
        for c in info["conflict_details"]:
            fields = ", ".join(f"{k}: mine {v.get('mine')!r} / theirs {v.get('theirs')!r}" for k, v in c["fields"].items())
            what = "deleted here, changed on the server" if c["kind"] == "delete" else fields
            lines.append(f"  - {c['entity']} {c['record_id']}: {what}")
        if info["conflicts_not_shown"]:
            lines.append(f"  … and {info['conflicts_not_shown']:,} more (the app's Conflicts screen, "
                         "or `crm-tui status --all`)")
        lines.append(f"rejected ops  {info['rejected_ops']:,}")
        for r in info["rejected_details"]:
            lines.append(f"  - {r['summary']}: {r['reason']}")
        if info["rejected_not_shown"]:
            lines.append(f"  … and {info['rejected_not_shown']:,} more (the app's Rejected screen, "
                         "or `crm-tui status --all`)")
        if info["quarantined"]:
            lines.append(f"quarantined   {info['quarantined']:,} invalid records from the server were set aside")
        lines.append(f"last error    {info['last_error'] or '-'}")
        if info["recent_syncs"]:
            lines.append("recent syncs")
            for run in info["recent_syncs"]:
                what = f"pushed {run['pushed']}, pulled {run['pulled']}"
                extra = f" — {run['error']}" if run["error"] else ""
                lines.append(f"  {run['started_at']}  {run['outcome']:<11} {what}{extra}")
    lines.append(f"who syncs     {_who_syncs(info)}")
    pid = info["sync_lock_pid"]
    lines.append(f"sync lock     {'held by pid ' + str(pid) if pid else 'free'}")
    return "\n".join(lines)
