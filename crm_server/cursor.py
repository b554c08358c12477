"""The change-feed cursor: an opaque, signed token that carries the whole position of a client.

Format: ``base64url(compact JSON) "." base64url(HMAC-SHA256(JSON, database secret))``. The server
keeps no per-client state; everything needed to continue is in the cursor, and the signature
makes sure the client did not edit it. The epoch is checked before the signature, because a
replaced database has a new secret too and its cursors must get 410 (resync), not 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson

from crm_server.errors import InvalidCursor

MAX_CURSOR_CHARS = 8192
PHASES = ("snapshot", "backfill", "feed")
_INT_MAX = 2**62


@dataclass(slots=True)
class FeedCursor:
    """Where a client is in the feed. Mutable: a page advances it, then it is encoded again."""

    user: str
    epoch: str
    phase: str  # snapshot | backfill | feed
    seq: int  # feed: last sequence delivered; snapshot: high-water mark; backfill: where the feed resumes
    territories: list[str] | None  # the territories the client's replica reflects; None = all
    backfill: list[str] = field(default_factory=list)  # territories being backfilled
    entity: int = 0  # snapshot/backfill: index into the phase's entity order
    territory: str | None = None  # snapshot/backfill of a scoped entity: the territory being streamed
    after: str = ""  # snapshot/backfill: last id delivered in the current entity (and territory)
    done: int = 0
    total: int = 0
    commit: str | None = None  # fingerprint of the write transaction that took ``seq``

    def to_payload(self) -> dict[str, Any]:
        """The compact JSON object that is signed (short keys: it travels with every request)."""
        return {
            "v": 1,
            "u": self.user,
            "e": self.epoch,
            "p": self.phase,
            "s": self.seq,
            "t": "*" if self.territories is None else self.territories,
            "b": self.backfill,
            "x": self.entity,
            "r": self.territory,
            "k": self.after,
            "d": self.done,
            "n": self.total,
            "c": self.commit,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(cursor: FeedCursor, secret: bytes) -> str:
    """The opaque token for ``cursor``, signed with the database secret."""
    payload = orjson.dumps(cursor.to_payload())
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return _b64(payload) + "." + _b64(signature)


def _bad(reason: str) -> InvalidCursor:
    return InvalidCursor(f"this cursor cannot be read ({reason}); start again without a cursor")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT_MAX


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def decode_cursor(text: str) -> tuple[FeedCursor, bytes, bytes]:
    """Parse a token without checking its signature: (cursor, signed bytes, signature).

    Raises InvalidCursor for anything that is not a well-formed cursor.
    """
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CURSOR_CHARS or text.count(".") != 1:
        raise _bad("not a cursor")
    head, _, tail = text.partition(".")
    try:
        payload = _unb64(head)
        signature = _unb64(tail)
        data = orjson.loads(payload)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _bad("not a cursor") from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise _bad("unknown format")
    t = data.get("t")
    checks = (
        isinstance(data.get("u"), str),
        isinstance(data.get("e"), str),
        data.get("p") in PHASES,
        _is_int(data.get("s")),
        t == "*" or _is_str_list(t),
        _is_str_list(data.get("b")),
        _is_int(data.get("x")),
        data.get("r") is None or isinstance(data.get("r"), str),
        isinstance(data.get("k"), str),
        _is_int(data.get("d")),
        _is_int(data.get("n")),
        data.get("c") is None or isinstance(data.get("c"), str),
    )
    if not all(checks):
        raise _bad("damaged")
    cursor = FeedCursor(
        user=data["u"],
        epoch=data["e"],
        phase=data["p"],
        seq=data["s"],
        territories=None if t == "*" else list(t),
        backfill=list(data["b"]),
        entity=data["x"],
        territory=data["r"],
        after=data["k"],
        done=data["d"],
        total=data["n"],
        commit=data.get("c"),
    )
    return cursor, payload, signature


def verify_signature(payload: bytes, signature: bytes, secret: bytes) -> None:
    """Raise InvalidCursor unless ``signature`` is this database's signature of ``payload``."""
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise _bad("signature does not match")
