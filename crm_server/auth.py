"""Bearer tokens and the per-token rate limit.

Tokens are random strings shown once when issued; only their SHA-256 is stored, so a copy of
the database does not hand out working credentials.
"""

from __future__ import annotations

import hashlib
import math
import secrets

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_server.errors import RateLimited, Unauthorized
from crm_server.scope import load_caller
from crm_server.store import Store

TOKEN_PREFIX = "crm_"

bearer = HTTPBearer(auto_error=False, description="an API token from `crm-server user add` or `user token`")


def new_token() -> str:
    """A fresh API token (about 256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


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


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The id of the user the bearer token belongs to. Raises Unauthorized (401), RateLimited (429)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    digest = token_hash(credentials.credentials)
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is not None:
        wait = limiter.wait_time(digest)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many requests with this token; retry in {seconds} s", headers={"Retry-After": str(seconds)}
            )
    with request.app.state.store.read() as tx:
        user_id = tx.user_id_for_token(digest)
        if user_id is None:
            raise Unauthorized("this API token is not known; ask an admin for a new one")
        if load_caller(tx, user_id) is None:
            raise Unauthorized("this token's user no longer exists or is inactive")
    return user_id
