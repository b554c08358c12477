"""The change feed, ``GET /v1/changes``: snapshot, backfill and feed pages (docs/sync-protocol.md).

Every page is built inside one read snapshot, from the cursor alone (the server keeps no state
per client). Rows never pass through pydantic or dicts: the database renders each row as a JSON
array and the page is assembled by orjson around those fragments, which is what makes a
bootstrap of a million customers stream at a useful speed. The feed never reads past the
snapshot's head (see :mod:`crm_server.store.base`), and a sales rep's feed reads only their
territories' ranges of the change log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from crm_server.cursor import FeedCursor, decode_cursor, encode_cursor
from crm_server.errors import InvalidCursor, ResyncRequired, Unauthorized
from crm_server.reads import Freshness
from crm_server.scope import Caller, load_caller
from crm_server.store import ReadTx, Store, StoreInfo
from crm_tui.core.domain import ENTITIES, Entity

# Bootstrap order: what search needs first (customers, contacts), then the long history.
SNAPSHOT_ORDER: tuple[Entity, ...] = tuple(ENTITIES.values())
# A newly granted territory brings only customer-attached records; users and territories are
# already on every replica.
BACKFILL_ORDER: tuple[Entity, ...] = tuple(e for e in SNAPSHOT_ORDER if e.anchor is not None)


class _Page:
    """The segments of one page, built in order."""

    def __init__(self) -> None:
        self.segments: list[dict[str, Any]] = []
        self._upserts: list[tuple[dict[str, Any], Entity, list[str]]] = []

    def _tail(self, op: str, entity: str) -> dict[str, Any] | None:
        if self.segments and self.segments[-1]["op"] == op and self.segments[-1].get("entity") == entity:
            return self.segments[-1]
        return None

    def exit_territory(self, territory: str) -> None:
        self.segments.append({"op": "exit_territory", "territory": territory})

    def rows_text(self, ent: Entity, text: str | None) -> None:
        """Add rows already rendered as JSON (comma-joined arrays) to an upsert segment."""
        if not text:
            return
        seg = self._tail("upsert", ent.name)
        if seg is None:
            seg = {"op": "upsert", "entity": ent.name, "columns": list(ent.columns), "_parts": []}
            self.segments.append(seg)
        seg["_parts"].append(text)

    def upsert_id(self, ent: Entity, record_id: str, part_date: Any = None) -> None:
        seg = self._tail("upsert", ent.name)
        if seg is None:
            seg = {"op": "upsert", "entity": ent.name, "columns": list(ent.columns), "_ids": [], "_dates": []}
            self.segments.append(seg)
        seg["_ids"].append(record_id)
        seg["_dates"].append(part_date)

    def ids(self, op: str, entity: str, record_id: str) -> None:
        seg = self._tail(op, entity)
        if seg is None:
            seg = {"op": op, "entity": entity, "ids": []}
            self.segments.append(seg)
        seg["ids"].append(record_id)

    def finish(self, tx: ReadTx) -> list[dict[str, Any]]:
        """Fetch the rows of feed upserts (one query per entity; orders from the partitions of
        their change rows' dates only) and render every segment."""
        wanted: dict[str, tuple[list[str], list[Any]]] = {}
        for seg in self.segments:
            if "_ids" in seg:
                ids, dates = wanted.setdefault(seg["entity"], ([], []))
                ids.extend(seg["_ids"])
                dates.extend(seg.pop("_dates"))
        fetched = {name: tx.rows_json(ENTITIES[name], ids, dates) for name, (ids, dates) in wanted.items()}
        out = []
        for seg in self.segments:
            if "_ids" in seg:
                rows = fetched[seg["entity"]]
                parts = [rows[i] for i in seg.pop("_ids") if i in rows]
                if not parts:
                    continue
                seg["_parts"] = parts
            if "_parts" in seg:
                seg["rows"] = orjson.Fragment("[" + ",".join(seg.pop("_parts")) + "]")
            out.append(seg)
        return out


def pull_changes(store: Store, user_id: str | None, cursor_text: str | None, limit: int,
                 *, fresh: Freshness | None = None, check: Callable[[ReadTx], Caller] | None = None) -> bytes:
    """One page of the change feed for ``user_id``, as the JSON body to send.

    On a read standby ``fresh`` is given: the page is built only when the standby's snapshot
    holds what ``fresh`` asks and everything the cursor has seen, else StandbyBehind is raised
    (before anything is judged: a cursor ahead of a lagging standby is not a restored database).

    Raises InvalidCursor (400) for an unreadable, forged or foreign cursor, ResyncRequired (410)
    when the cursor cannot be continued (other database, purged history, role changed between all
    and own territories), and Unauthorized when the user is gone. Never sends a record outside
    the user's scope as of this page's snapshot.

    ``check`` (instead of ``user_id``) checks the request's token in the page's own read
    transaction and gives the caller (crm_server.auth.TokenGate.check): one transaction for the
    token, the user and the page. Only on the primary: a standby may not have replayed a token
    issued or revoked a moment ago (those writes move no commit mark ``fresh`` could wait for).
    """
    if check is not None and fresh is not None:
        raise ValueError("the token is checked on the primary, not in a standby's snapshot")
    with store.read() as tx:
        caller: Caller | None
        if check is not None:
            caller = check(tx)
        info = tx.info()
        if fresh is not None:
            fresh.require(info)
        if check is None:
            assert user_id is not None, "pull_changes needs a user id or a token check"
            caller = load_caller(tx, user_id)
            if caller is None:
                raise Unauthorized("this token's user no longer exists or is inactive")
        assert caller is not None
        if cursor_text is None:
            cur = _start_snapshot(tx, caller, info)
        else:
            cur = _open(tx, cursor_text, caller, info, fresh)
        page = _Page()
        _follow_scope(tx, caller, cur, page)
        phase = cur.phase
        progress = None
        has_more = True
        if cur.phase in ("snapshot", "backfill"):
            order = SNAPSHOT_ORDER if cur.phase == "snapshot" else BACKFILL_ORDER
            _stream(tx, cur, order, limit, page)
            progress = {
                "entity": order[cur.entity].name if cur.entity < len(order) else None,
                "done": cur.done,
                "total": max(cur.total, cur.done),
                "complete": [e.name for e in order[: cur.entity]],
            }
            if cur.entity >= len(order):
                _finish_stream(cur)
        else:
            full = _feed(tx, cur, info, limit, page)
            gained = cur.territories is not None and bool(set(caller.territories) - set(cur.territories))
            has_more = full or gained
        cur.history = info.history
        body = {
            "cursor": encode_cursor(cur, info.cursor_key),
            "has_more": has_more,
            "phase": phase,
            "progress": progress,
            "segments": page.finish(tx),
        }
    return orjson.dumps(body)


def _start_snapshot(tx: ReadTx, caller: Caller, info: StoreInfo) -> FeedCursor:
    scope = caller.scope()
    # Counted once, here, and carried in the cursor: progress needs a stable denominator.
    total = tx.count_all(SNAPSHOT_ORDER, scope)
    return FeedCursor(
        user=caller.id, epoch=info.epoch, phase="snapshot", pos=info.head, territories=scope, total=total
    )


def _open(tx: ReadTx, text: str, caller: Caller, info: StoreInfo, fresh: Freshness | None) -> FeedCursor:
    cur = decode_cursor(text, info.epoch, info.cursor_key)
    if fresh is not None:
        fresh.require_cursor(info, cur.pos, cur.history)
    if cur.user != caller.id:
        raise InvalidCursor("this cursor belongs to another user; start again without a cursor")
    if (cur.territories is None) != caller.all_territories:
        raise ResyncRequired("your role changed; start a new snapshot without a cursor")
    if cur.pos < info.horizon:
        raise ResyncRequired("this cursor predates a compaction of old changes; start a new snapshot without a cursor")
    # A cursor from a history this database does not have: it was restored from an older copy.
    if cur.pos > info.head or not tx.knows_history(cur.history):
        raise ResyncRequired(
            "the server's database was restored from an older copy; start a new snapshot without a cursor")
    return cur


def _follow_scope(tx: ReadTx, caller: Caller, cur: FeedCursor, page: _Page) -> None:
    """Apply territory revokes (exit_territory first) and grants (start a backfill) to the cursor."""
    if cur.territories is None:
        return
    now = set(caller.territories)
    # A territory half backfilled is on the replica too: losing it needs an exit as well.
    for lost in sorted((set(cur.territories) | set(cur.backfill)) - now):
        page.exit_territory(lost)
    cur.territories = [t for t in cur.territories if t in now]
    # A lost territory still being streamed is skipped by _stream (it is no longer in the list).
    cur.backfill = [t for t in cur.backfill if t in now]
    if cur.phase == "feed":
        gained = sorted(now - set(cur.territories))
        if gained:
            cur.phase = "backfill"
            cur.backfill = gained
            cur.entity, cur.territory, cur.after, cur.done = 0, None, "", 0
            cur.total = tx.count_all(BACKFILL_ORDER, gained)


def _stream(tx: ReadTx, cur: FeedCursor, order: tuple[Entity, ...], limit: int, page: _Page) -> None:
    """Fill ``page`` with up to ``limit`` records, keyset by (entity, territory, id)."""
    scope = cur.territories if cur.phase == "snapshot" else cur.backfill
    remaining = limit
    while remaining > 0 and cur.entity < len(order):
        ent = order[cur.entity]
        if scope is None or ent.anchor is None:
            rows, n, last = tx.page_json(ent, territory=None, after=cur.after, limit=remaining)
            page.rows_text(ent, rows)
            cur.done += n
            if n < remaining:
                cur.entity, cur.territory, cur.after = cur.entity + 1, None, ""
            else:
                cur.after = last or cur.after
            remaining -= n
            continue
        full = False
        for territory in sorted(scope):
            if cur.territory is not None and territory < cur.territory:
                continue
            if territory != cur.territory:
                cur.territory, cur.after = territory, ""
            rows, n, last = tx.page_json(ent, territory=territory, after=cur.after, limit=remaining)
            page.rows_text(ent, rows)
            cur.done += n
            remaining -= n
            if remaining == 0:
                cur.after = last or cur.after
                full = True
                break
        if not full:
            cur.entity, cur.territory, cur.after = cur.entity + 1, None, ""


def _finish_stream(cur: FeedCursor) -> None:
    if cur.phase == "backfill" and cur.territories is not None:
        cur.territories = sorted(set(cur.territories) | set(cur.backfill))
    # A snapshot's feed starts at its high-water mark; a backfill's where the feed stood.
    cur.phase = "feed"
    cur.backfill, cur.entity, cur.territory, cur.after, cur.done, cur.total = [], 0, None, "", 0, 0


def _feed(tx: ReadTx, cur: FeedCursor, info: StoreInfo, limit: int, page: _Page) -> bool:
    """Changes after the cursor's position up to the head, in position order, in the reflected
    scope. Returns True when the page is full (there may be more)."""
    scope = None if cur.territories is None else set(cur.territories)
    rows = tx.changes_after(cur.pos, info.head, limit, cur.territories)
    for ch in rows:
        ent = ENTITIES.get(ch.entity)
        if ent is None:
            continue
        if ch.kind == "move":
            # Only users who had the old territory and lack the new one lose the customer; a
            # user who gains it receives the customer's (and its records') upserts instead.
            if scope is None or ch.old_territory not in scope or ch.territory in scope:
                continue
            page.ids("exit", "customer", ch.record_id)
        elif scope is not None and ch.territory is not None and ch.territory not in scope:
            continue
        elif ch.kind == "upsert":
            page.upsert_id(ent, ch.record_id, ch.part_date)
        else:
            page.ids("delete", ent.name, ch.record_id)
    if len(rows) >= limit:
        cur.pos = rows[-1].pos
        return True
    # Everything in scope up to the head was read: move on to it, past what others changed.
    cur.pos = max(cur.pos, info.head)
    return False
