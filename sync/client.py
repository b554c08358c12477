"""The HTTP client for the crm_server protocol (docs/sync-protocol.md), over httpx.

Explicit timeouts on every request, TLS verification on, and retries for what a retry can fix
(connection failures, timeouts, dropped or truncated responses, 429, 5xx): exponential backoff
with full jitter, ``Retry-After`` honoured, and a cap on consecutive retries. Writes are safe
to retry because every op carries its idempotency key. Everything the server sends is decoded
and shape-checked here before anyone else sees it.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson

from crm_tui import __version__
from crm_tui.config import SyncSettings
from crm_tui.protocol import API_PREFIX, MAX_LIST
from sync import tls
from sync.errors import (
    AuthError,
    CertificateRefused,
    ProtocolError,
    RequestRejected,
    ResyncRequired,
    ServerUnavailable,
)

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 120.0


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        err = body.get("error", {}) if isinstance(body, dict) else {}
        msg = err.get("message") if isinstance(err, dict) else None
        fields = err.get("fields") if isinstance(err, dict) else None
        if msg:
            if fields:
                msg += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
            return str(msg)
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"HTTP {response.status_code}"


class CrmClient:
    """A session with one server for one token. Not thread-safe: one per sync worker."""

    def __init__(
        self,
        base_url: str,
        token: str,
        settings: SyncSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings or SyncSettings()
        self.base_url = base_url.rstrip("/")
        self._sleep = sleep
        self.requests_made = 0
        s = self.settings
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"crm-tui/{__version__}",
                     "Accept": "application/json"},
            timeout=httpx.Timeout(connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=s.connect_timeout),
            verify=tls.verify_for(s),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ protocol calls

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def me(self) -> dict[str, Any]:
        """Who the token belongs to. Raises AuthError for a bad token."""
        body = self._json("GET", f"{API_PREFIX}/me")
        if not isinstance(body.get("id"), str) or not isinstance(body.get("territories"), list):
            raise ProtocolError("the server's /v1/me answer lacks the user id or territories")
        return body

    def changes(self, cursor: str | None, limit: int) -> dict[str, Any]:
        """One change-feed page (shape-checked by cache.pull.check_page before it is applied).

        Raises ResyncRequired on 410."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", f"{API_PREFIX}/changes", params=params)

    def batch(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ops; returns one result per op. Safe to retry: op ids make it idempotent."""
        body = self._json("POST", f"{API_PREFIX}/batch", content=orjson.dumps({"ops": ops}),
                          headers={"Content-Type": "application/json"})
        results = body.get("results")
        if not isinstance(results, list) or len(results) != len(ops):
            raise ProtocolError("the server's batch answer does not have one result per op")
        return results

    def get(self, table: str, record_id: str) -> dict[str, Any] | None:
        """One record, or None if it does not exist (or is outside our scope)."""
        try:
            return self._json("GET", f"{API_PREFIX}/{table}/{record_id}")
        except RequestRejected as exc:
            if exc.status == 404:
                return None
            raise

    def list_all(self, table: str, **filters: str) -> Iterator[dict[str, Any]]:
        """Every record of ``table`` matching equality ``filters`` that we may see, page by page."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": MAX_LIST, **filters}
            if after:
                params["after"] = after
            body = self._json("GET", f"{API_PREFIX}/{table}", params=params)
            items, after = body.get("items"), body.get("next")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ProtocolError(f"the server's list of {table} is not a list of records")
            yield from items
            if not after:
                return
            if not isinstance(after, str):
                raise ProtocolError(f"the server's list of {table} has a bad next key")

    # ------------------------------------------------------------------ transport

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = self._request(method, path, **kw)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("content-type", "unknown content")
            raise ProtocolError(f"the server sent {kind} that is not JSON for {path}") from None
        if not isinstance(body, dict):
            raise ProtocolError(f"the server's answer for {path} is not a JSON object")
        return body

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        s = self.settings
        attempt = 0
        while True:
            delay: float | None = None
            try:
                self.requests_made += 1
                response = self._http.request(method, path, **kw)
                response.read()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                refused = tls.refusal(exc, self.base_url)
                if refused is not None:
                    raise CertificateRefused(refused) from None
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401:
                    raise AuthError("the server refused the token (401); run `crm-tui login` again")
                if status == 410:
                    raise ResyncRequired(_error_message(response))
                if status not in RETRY_STATUSES:
                    raise RequestRejected(status, f"the server refused {method} {path}: {_error_message(response)}")
                reason = f"HTTP {status}: {_error_message(response)}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if retry_after is not None:
                    delay = min(retry_after, MAX_RETRY_AFTER)
            if attempt >= s.max_retries:
                raise ServerUnavailable(f"{self.base_url} failed {attempt + 1} times; last: {reason}")
            if delay is None:
                delay = random.uniform(0, min(s.backoff_max, s.backoff_base * (2**attempt)))
            attempt += 1
            self._sleep(delay)
