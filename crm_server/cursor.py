"""The change-feed cursor: an opaque, sealed token that carries the whole position of a client.

Format: ``EPOCH "." base64url(nonce || AES-256-GCM(JSON))``. The JSON is encrypted and
authenticated with the database's cursor key (kept in the database, so every server process
shares it), with the epoch as associated data. A client can read nothing from it — not its
position, not how much the organisation writes: positions are written at a fixed width and the
plaintext is padded to a multiple of :data:`PAD`, so even the token's length says nothing — and
any change to it is detected. The nonce is derived from the plaintext (an SIV-style construction),
so one position always gives one token: equal tokens say "no progress" and nothing more. The server keeps no per-client state; everything needed to
continue is in the cursor.

The epoch stays readable because a replaced database has a new key too: its cursors must get
410 (resync), not 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_server.errors import InvalidCursor, ResyncRequired
from crm_server.store import Position
from crm_tui.core.protocol import MAX_CURSOR, PHASES

PAD = 64  # plaintext bytes are padded to a multiple of this
_INT_MAX = 2**62
_NONCE = 12
_EPOCH_RE = re.compile(r"^[0-9a-f]{16}\Z")
_NUM_RE = re.compile(r"^[0-9]{20}\Z")


@dataclass(slots=True)
class FeedCursor:
    """Where a client is in the feed. Mutable: a page advances it, then it is encoded again."""

    user: str
    epoch: str
    phase: str  # snapshot | backfill | feed
    pos: Position  # feed: last position delivered; snapshot: high-water mark; backfill: where the feed resumes
    territories: list[str] | None  # the territories the client's replica reflects; None = all
    backfill: list[str] = field(default_factory=list)  # territories being backfilled
    entity: int = 0  # snapshot/backfill: index into the phase's entity order
    territory: str | None = None  # snapshot/backfill of a scoped entity: the territory being streamed
    after: str = ""  # snapshot/backfill: last id delivered in the current entity (and territory)
    done: int = 0
    total: int = 0
    history: str = ""  # the database's history mark when this cursor was made (restores)

    def to_payload(self) -> dict[str, Any]:
        """The JSON object that is sealed (short keys; positions at a fixed width)."""
        return {
            "v": 2,
            "u": self.user,
            "p": self.phase,
            "x": f"{self.pos[0]:020d}",
            "s": f"{self.pos[1]:020d}",
            "t": "*" if self.territories is None else self.territories,
            "b": self.backfill,
            "i": self.entity,
            "r": self.territory,
            "k": self.after,
            "d": self.done,
            "n": self.total,
            "h": self.history,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(cursor: FeedCursor, key: bytes) -> str:
    """The opaque token for ``cursor``, sealed with the database's cursor key."""
    plain = orjson.dumps(cursor.to_payload())
    plain += b" " * (-len(plain) % PAD)
    # A synthetic nonce (a keyed hash of the plaintext) instead of a random one: the same position
    # always gives the same token, so a client can tell a feed that does not move (it checks
    # exactly that, docs/sync-protocol.md), and a nonce repeats only with its whole plaintext.
    nonce_key = hmac.new(key, b"crm-cursor-nonce", hashlib.sha256).digest()
    nonce = hmac.new(nonce_key, cursor.epoch.encode() + b"\0" + plain, hashlib.sha256).digest()[:_NONCE]
    sealed = AESGCM(key).encrypt(nonce, plain, cursor.epoch.encode())
    return cursor.epoch + "." + _b64(nonce + sealed)


def _bad(reason: str) -> InvalidCursor:
    return InvalidCursor(f"this cursor cannot be read ({reason}); start again without a cursor")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT_MAX


def _is_num(value: Any) -> bool:
    return isinstance(value, str) and bool(_NUM_RE.match(value)) and int(value) <= _INT_MAX


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def _is_first_release_cursor(head: str) -> bool:
    """A cursor of the first release (signed, readable JSON): this server cannot continue it."""
    try:
        data = orjson.loads(_unb64(head))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("v") == 1 and isinstance(data.get("e"), str)


def decode_cursor(text: str, epoch: str, key: bytes) -> FeedCursor:
    """Open a token made by :func:`encode_cursor` for the database ``epoch``.

    Raises ResyncRequired for a cursor of another database (or of this one before the server was
    upgraded), InvalidCursor for anything else that is not a cursor this database sealed.
    """
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CURSOR or text.count(".") != 1:
        raise _bad("not a cursor")
    head, _, body = text.partition(".")
    if head != epoch:
        if _EPOCH_RE.match(head):
            raise ResyncRequired("this cursor belongs to another database; start a new snapshot without a cursor")
        if _is_first_release_cursor(head):
            raise ResyncRequired("the server was upgraded and reads cursors differently; start a new snapshot")
        raise _bad("not a cursor")
    try:
        sealed = _unb64(body)
        plain = AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], epoch.encode())
        data = orjson.loads(plain)
    except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
        raise _bad("damaged or not made by this server") from None
    if not isinstance(data, dict) or data.get("v") != 2:
        raise _bad("unknown format")
    t = data.get("t")
    checks = (
        isinstance(data.get("u"), str),
        data.get("p") in PHASES,
        _is_num(data.get("x")),
        _is_num(data.get("s")),
        t == "*" or _is_str_list(t),
        _is_str_list(data.get("b")),
        _is_int(data.get("i")),
        data.get("r") is None or isinstance(data.get("r"), str),
        isinstance(data.get("k"), str),
        _is_int(data.get("d")),
        _is_int(data.get("n")),
        isinstance(data.get("h"), str),
    )
    if not all(checks):
        raise _bad("damaged")
    return FeedCursor(
        user=data["u"],
        epoch=epoch,
        phase=data["p"],
        pos=(int(data["x"]), int(data["s"])),
        territories=None if t == "*" else list(t or ()),
        backfill=list(data["b"]),
        entity=data["i"],
        territory=data["r"],
        after=data["k"],
        done=data["d"],
        total=data["n"],
        history=data["h"],
    )
