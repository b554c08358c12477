"""Bearer tokens, their expiry, the caller's device, and the per-token rate limit.

Tokens are random strings shown once when issued; only their SHA-256 is stored, so a copy of
the database does not hand out working credentials. Each token expires (``expires_at``) and can
be renewed before it does (``POST /v1/token/renew``, crm_server/accounts.py).

A client names its installation in ``X-CRM-Device`` (a random id it made at login). The server
records each user's devices; an admin can revoke one (a lost laptop), and from then on that
device, and any token ever used on it, is answered 403 ``device_revoked``, which tells the client
to delete its local data (docs/security.md, "Remote wipe").
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_server.errors import DeviceRevoked, InvalidQuery, RateLimited, TokenExpired, Unauthorized
from crm_server.scope import load_caller
from crm_server.store import Store
from crm_server.store.tokens import TokenInfo

TOKEN_PREFIX = "crm_"
DEVICE_HEADER = "X-CRM-Device"
DEVICE_NAME_HEADER = "X-CRM-Device-Name"
DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SEEN_EVERY = 300  # a device's "last seen" is written at most this often (seconds)

bearer = HTTPBearer(auto_error=False, description="an API token from `crm-server user add` or `user token`")


def new_token() -> str:
    """A fresh API token (about 256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def utc_text(seconds: int | float) -> str:
    """Unix seconds as the wire's date-time form (2026-11-25T09:00:00Z)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def renew_after(info: TokenInfo) -> int | None:
    """When a client should renew the token: once two thirds of its lifetime have passed."""
    if info.expires_at is None:
        return None
    lifetime = info.lifetime or 0
    return info.expires_at - lifetime // 3


@dataclass(frozen=True, slots=True)
class Session:
    """Who is calling, with which token, from which device (None: the client named none)."""

    user_id: str
    token_hash: str
    token: TokenInfo
    device_id: str | None


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second on average, bursts up to ``burst``.

    The buckets live in the database (:meth:`Store.take_rate_token`), so every server process
    serving the same database counts against the same limit.
    """

    def __init__(self, store: Store, rate: float, burst: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.store = store
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, 2 * rate))

    def wait_time(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0.0 if allowed, else seconds until it would be."""
        return self.store.take_rate_token(key, self.rate, self.burst)


def _device_of(request: Request) -> tuple[str | None, str | None]:
    device = request.headers.get(DEVICE_HEADER)
    if device is None:
        return None, None
    if not DEVICE_RE.match(device):
        raise InvalidQuery(f"{DEVICE_HEADER} must be 16-64 letters, digits, '-' or '_'",
                           fields={DEVICE_HEADER: "is not a device id"})
    name = request.headers.get(DEVICE_NAME_HEADER)
    if name is not None:
        name = "".join(ch for ch in name if ch.isprintable())[:64] or None
    return device, name


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The id of the user the bearer token belongs to; the whole :class:`Session` goes to
    ``request.state.session``. Raises Unauthorized (401: no, unknown, or revoked token),
    TokenExpired (401), DeviceRevoked (403), InvalidQuery (400: a malformed device id),
    RateLimited (429)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    device, device_name = _device_of(request)
    digest = token_hash(credentials.credentials)
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is not None:
        wait = limiter.wait_time(digest)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many requests with this token; retry in {seconds} s", headers={"Retry-After": str(seconds)}
            )
    now = int(time.time())
    store: Store = request.app.state.store
    with store.read() as tx:
        # A revoked device is told so whatever token it sends (even one since deleted or
        # expired): that answer is what makes it wipe its local data.
        if device is not None and tx.device_revoked(device):
            raise DeviceRevoked("an admin revoked this device; its local data is to be deleted")
        info = tx.token_info(digest)
        if info is None:
            raise Unauthorized("this API token is not known; ask an admin for a new one")
        if info.revoked_device is not None:
            if device is None or device == info.revoked_device:
                raise DeviceRevoked("this token was used on a device an admin revoked")
            raise Unauthorized("this API token was revoked with a lost device; ask an admin for a new one")
        if info.expires_at is not None and now >= info.expires_at:
            raise TokenExpired(f"this API token expired on {utc_text(info.expires_at)}; ask an admin for a new one "
                               "(`crm-server user token NAME`) and run `crm-tui login` again")
        user_id = info.user_id
        if load_caller(tx, user_id) is None:
            raise Unauthorized("this token's user no longer exists or is inactive")
        stale = False
        if device is not None:
            known = tx.device(user_id, device)
            stale = (known is None or now - known.last_seen >= SEEN_EVERY
                     or (device_name is not None and known.name != device_name)
                     or not tx.token_used_on(digest, device))
    if stale and device is not None:  # stale is only ever set for a device
        with store.write() as wtx:
            wtx.note_device(user_id, device, digest, device_name, now)
    request.state.session = Session(user_id, digest, info, device)
    return user_id
