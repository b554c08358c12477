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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_server.errors import DeviceRevoked, InvalidQuery, RateLimited, TokenExpired, Unauthorized
from crm_server.reads import Freshness, ReadRouter
from crm_server.scope import Caller, caller_of, load_caller
from crm_server.store import ReadTx, Store
from crm_server.store.tokens import TokenInfo

TOKEN_PREFIX = "crm_"
DEVICE_HEADER = "X-CRM-Device"
DEVICE_NAME_HEADER = "X-CRM-Device-Name"
DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SEEN_EVERY = 300  # a device's "last seen" is written at most this often (seconds)

T = TypeVar("T")

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


class TokenGate:
    """A request's bearer token, its device, checked against the database by :meth:`check`
    inside a read transaction the caller chooses: its own (:func:`authenticate`) or the one that
    serves the request (the change feed's page, so a page on PostgreSQL is one transaction)."""

    def __init__(self, digest: str, device: str | None, device_name: str | None, now: int):
        self.digest, self.device, self.device_name, self.now = digest, device, device_name, now
        self.info: TokenInfo | None = None
        self.caller: Caller | None = None
        self._stale = False

    def check(self, tx: ReadTx) -> Caller:
        """The caller the token belongs to, as of ``tx``. Raises Unauthorized (401: unknown or
        revoked token, user gone or inactive), TokenExpired (401), DeviceRevoked (403)."""
        device, digest, now = self.device, self.digest, self.now
        # A revoked device is told so whatever token it sends (even one since deleted or
        # expired): that answer is what makes it wipe its local data.
        check = tx.token_check(digest, device)  # one statement
        if device is not None and check.device_revoked:
            raise DeviceRevoked("an admin revoked this device; its local data is to be deleted")
        info = check.token
        if info is None:
            raise Unauthorized("this API token is not known; ask an admin for a new one")
        if info.revoked_device is not None:
            if device is None or device == info.revoked_device:
                raise DeviceRevoked("this token was used on a device an admin revoked")
            raise Unauthorized("this API token was revoked with a lost device; ask an admin for a new one")
        if info.expires_at is not None and now >= info.expires_at:
            raise TokenExpired(f"this API token expired on {utc_text(info.expires_at)}; ask an admin for a new one "
                               "(`crm-server user token NAME`) and run `crm-tui login` again")
        caller = caller_of(check.user) if check.user_read else load_caller(tx, info.user_id)
        if caller is None:
            raise Unauthorized("this token's user no longer exists or is inactive")
        if device is not None:
            known = check.device
            self._stale = (known is None or now - known.last_seen >= SEEN_EVERY
                           or (self.device_name is not None and known.name != self.device_name)
                           or not check.used_on)
        self.info, self.caller = info, caller
        return caller

    def check_on(self, store: Store) -> Caller:
        """:meth:`check` in a read transaction of its own on ``store``."""
        with store.read() as tx:
            return self.check(tx)

    def admit(self, request: Request) -> str:
        """After a passed :meth:`check`: note the device's use (a write to the primary, at most
        every few minutes per device) and put the :class:`Session` on ``request.state``."""
        assert self.info is not None and self.caller is not None, "check() first"
        user_id = self.info.user_id
        if self._stale and self.device is not None:  # stale is only ever set for a device
            with request.app.state.store.write() as wtx:
                wtx.note_device(user_id, self.device, self.digest, self.device_name, self.now)
            self._stale = False
        request.state.session = Session(user_id, self.digest, self.info, self.device)
        return user_id


def token_gate(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TokenGate:
    """The request's token and device, not yet checked against the database (see
    :class:`TokenGate`), after the rate limit. Raises Unauthorized (401: no token),
    InvalidQuery (400: a malformed device id), RateLimited (429)."""
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
    return TokenGate(digest, device, device_name, int(time.time()))


def authenticate(request: Request, gate: TokenGate = Depends(token_gate)) -> str:
    """The id of the user the bearer token belongs to, checked in a read transaction of its
    own; the whole :class:`Session` goes to ``request.state.session``. Raises Unauthorized
    (401: no, unknown, or revoked token), TokenExpired (401), DeviceRevoked (403), InvalidQuery
    (400: a malformed device id), RateLimited (429)."""
    gate.check_on(request.app.state.store)
    return gate.admit(request)


def read_as_caller(request: Request, gate: TokenGate, work: Callable[[ReadTx, Caller], T]) -> T:
    """``work(tx, caller)`` in a read transaction, for the caller of ``gate``'s token.

    Without a read standby the token is checked in that same transaction (one transaction for
    the device, token, user and the read). With one (``serve --read-db``) the token is checked on
    the primary first: a token issued or revoked a moment ago moves no commit the standby could be
    waited for; then the read goes where :class:`~crm_server.reads.ReadRouter` sends it."""
    reads: ReadRouter = request.app.state.reads
    try:
        if reads.standby is None:
            with reads.primary.read() as tx:
                return work(tx, gate.check(tx))
        user_id = gate.check_on(reads.primary).id

        def read(store: Store, fresh: Freshness | None) -> T:
            with store.read() as tx:
                if fresh is not None:
                    fresh.require(tx.info())
                caller = load_caller(tx, user_id)
                if caller is None:
                    raise Unauthorized("this token's user no longer exists or is inactive")
                return work(tx, caller)

        return reads.run(read)
    finally:
        if gate.caller is not None:
            gate.admit(request)
