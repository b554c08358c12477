"""The HTTP client for the crm_server protocol (docs/sync-protocol.md), over httpx.

The network lies, so nothing it says is trusted until checked:

* every request has a deadline for the whole exchange (``request_timeout``, and never past the
  sync run's own deadline), besides httpx's per-read timeouts (sync/transport.py);
* every answer is streamed and read at most ``max_response_mb`` far;
* only a 2xx answer with ``Content-Type: application/json`` and the expected shape is data; a
  redirect is an error naming where it pointed (captive portals answer 302 or 200 with HTML);
* retries are for what a retry can fix (connection failures, timeouts, dropped or truncated
  answers, 429, 5xx): exponential backoff with full jitter and ``Retry-After`` honoured up to
  ``max_retry_after``; a server that asks for longer ends the run ("retry after ...") at once.

Writes are safe to retry because every op carries its idempotency key. Everything the server
sends is decoded and shape-checked here before anyone else sees it.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson

from crm_tui import __version__, logs
from crm_tui.config import SyncSettings
from crm_tui.core.protocol import API_PREFIX, MAX_LIST
from crm_tui.core.text import plural, span
from sync import tls
from sync.errors import (
    AuthError,
    CertificateRefused,
    DeadlineExceeded,
    DeviceRevoked,
    ProtocolError,
    Redirected,
    RequestRejected,
    ResponseTooLarge,
    ResyncRequired,
    ServerUnavailable,
    Stopped,
    TokenExpired,
)
from sync.transport import build_http_client, request_deadline

log = logging.getLogger("crm_tui.sync.client")

RETRY_STATUSES = {429, 500, 502, 503, 504}
ERROR_BODY_BYTES = 64 * 1024  # what is read of an error answer: enough for its message


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


def _error_body(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


def _error_message(status: int, body: bytes) -> str:
    err = _error_body(body)
    msg, fields = err.get("message"), err.get("fields")
    if isinstance(msg, str) and msg:
        if isinstance(fields, dict) and fields:
            msg += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        return msg
    return f"HTTP {status}"


class _Answer:
    """A whole answer, read within the caps."""

    def __init__(self, status: int, headers: httpx.Headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body


class CrmClient:
    """A session with one server for one token. Not thread-safe: one request at a time.

    ``stop`` (an Event) cuts retry waits short: a stopped client raises Stopped instead of
    waiting. ``verify`` overrides what the settings trust (sync/tls.py: the public CAs, or the
    ``ca_bundle`` of the config)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        settings: SyncSettings | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        verify: Any = None,
        device: tuple[str, str] | None = None,
    ):
        self.settings = settings or SyncSettings()
        self.base_url = base_url.rstrip("/")
        self._stop = stop
        self._sleep = sleep
        self.requests_made = 0
        # Told of each failed attempt that will be retried: ``on_retry(reason, unreachable, attempt)``,
        # ``unreachable`` when no answer came at all (refused, unroutable, timed out), so a caller can
        # say "offline" at once while the retries go on (attempt: the one that failed, from 1).
        self.on_retry: Callable[[str, bool, int], None] | None = None
        self.on_answer: Callable[[], None] | None = None  # told of each 2xx answer
        self.run_deadline: float | None = None  # time.monotonic() by which the whole sync run ends
        logs.add_secret(token)
        s = self.settings
        headers = {"Authorization": f"Bearer {token}", "User-Agent": f"crm-tui/{__version__}",
                   "Accept": "application/json"}
        if device is not None:  # (id, name): whom an admin can revoke (docs/security.md)
            headers["X-CRM-Device"], headers["X-CRM-Device-Name"] = device
        self._http = build_http_client(
            self.base_url,
            headers=headers,
            connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
            verify=tls.verify_for(s) if verify is None else verify,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def max_response_bytes(self) -> int:
        return int(self.settings.max_response_mb * 1024 * 1024)

    # ------------------------------------------------------------------ protocol calls

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def me(self) -> dict[str, Any]:
        """Who the token belongs to. Raises AuthError for a bad token."""
        body = self._json("GET", f"{API_PREFIX}/me")
        if not isinstance(body.get("id"), str) or not isinstance(body.get("territories"), list):
            raise ProtocolError("the server's /v1/me answer lacks the user id or territories")
        return body

    def renew_token(self) -> dict[str, Any]:
        """A new token for ours (``{"token", "expires_at", "renew_after"}``); this client uses it
        from now on. The old one keeps working for a grace period (an hour) on the server.
        Raises TokenExpired (too late: a new token is needed), AuthError, DeviceRevoked."""
        body = self._json("POST", f"{API_PREFIX}/token/renew")
        token = body.get("token")
        if not isinstance(token, str) or not token or not token.isprintable():
            raise ProtocolError("the server's token renewal answer has no token")
        logs.add_secret(token)
        self._http.headers["Authorization"] = f"Bearer {token}"
        return body

    def changes(self, cursor: str | None, limit: int) -> dict[str, Any]:
        """One change-feed page (shape-checked by cache.pull.check_page before it is applied).

        Raises ResyncRequired on 410, and on 400 ``invalid_cursor`` (a cursor the server cannot
        read: only a new snapshot gets the replica going again); ResponseTooLarge for a page
        over the size cap (ask again for fewer records)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
            logs.add_cursor(cursor)
        try:
            page = self._json("GET", f"{API_PREFIX}/changes", params=params)
        except RequestRejected as exc:
            if exc.status == 400 and exc.code == "invalid_cursor":
                raise ResyncRequired(f"the server cannot read this replica's cursor ({exc})") from None
            raise
        if isinstance(page.get("cursor"), str):
            logs.add_cursor(page["cursor"])
        return page

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
        seen: set[str] = set()
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
            if after in seen:  # a list that goes round in circles would never end
                raise ProtocolError(f"the server's list of {table} repeats itself")
            seen.add(after)

    # ------------------------------------------------------------------ transport

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        answer = self._request(method, path, **kw)
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"the server's answer for {path} is not valid JSON") from None
        if not isinstance(body, dict):
            raise ProtocolError(f"the server's answer for {path} is not a JSON object")
        return body

    def _exchange(self, method: str, path: str, deadline: float, **kw: Any) -> _Answer:
        """One attempt: send the request and read the whole answer within the deadline and
        the size cap (an error answer is read only as far as its message)."""
        with request_deadline(deadline), self._http.stream(method, path, **kw) as response:
            ok = 200 <= response.status_code < 300
            limit = self.max_response_bytes if ok else ERROR_BODY_BYTES
            length = response.headers.get("content-length", "")
            if ok and length.isdigit() and int(length) > limit:
                raise self._too_large(path)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    if ok:
                        raise self._too_large(path)
                    del body[limit:]
                    break
            return _Answer(response.status_code, response.headers, bytes(body))

    def _too_large(self, path: str) -> ResponseTooLarge:
        return ResponseTooLarge(f"the server's answer for {path} is larger than "
                                f"{self.settings.max_response_mb:g} MB (sync.max_response_mb); not read further")

    def _request(self, method: str, path: str, **kw: Any) -> _Answer:
        s = self.settings
        attempt = 0
        while True:
            now = time.monotonic()
            if self.run_deadline is not None and now >= self.run_deadline:
                raise self._run_over()
            deadline = now + s.request_timeout
            if self.run_deadline is not None:
                deadline = min(deadline, self.run_deadline)
            delay: float | None = None
            unreachable = False
            try:
                self.requests_made += 1
                answer = self._exchange(method, path, deadline, **kw)
            except httpx.TimeoutException as exc:
                if self.run_deadline is not None and time.monotonic() >= self.run_deadline:
                    raise self._run_over() from None
                if time.monotonic() >= deadline:
                    reason = f"no complete answer within {s.request_timeout:g} s (sync.request_timeout)"
                else:
                    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                unreachable = True
            except httpx.RequestError as exc:  # refused, reset, truncated, undecodable ...
                refused = tls.refusal(exc, self.base_url)
                if refused is not None:  # a certificate we must not trust: no retry can change that
                    raise CertificateRefused(refused) from None
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                unreachable = isinstance(exc, httpx.ConnectError)  # refused, no route, no such host
            else:
                status = answer.status
                log.debug("%s %s -> %d, %d bytes, %.2f s", method, path, status, len(answer.body),
                          time.monotonic() - now)
                if 200 <= status < 300:
                    checked = self._checked(path, answer)
                    if self.on_answer is not None:
                        self.on_answer()
                    return checked
                if 300 <= status < 400:
                    where = answer.headers.get("location") or "no address"
                    raise Redirected(
                        f"{self.base_url} answered {path} with a redirect (HTTP {status}) to {where}: a network "
                        "sign-in page (captive portal) or a moved server; sign in to the network, or log in "
                        "again with the server's new address")
                if status == 401:
                    if _error_body(answer.body).get("code") == "token_expired":
                        raise TokenExpired(f"the server refused the token: {_error_message(status, answer.body)}")
                    raise AuthError("the server refused the token (401); run `crm-tui login` again")
                if status == 403 and _error_body(answer.body).get("code") == "device_revoked":
                    raise DeviceRevoked("an admin revoked this device (lost or retired); its local data is deleted")
                if status == 410:
                    raise ResyncRequired(_error_message(status, answer.body))
                if status not in RETRY_STATUSES:
                    code = _error_body(answer.body).get("code")
                    raise RequestRejected(status, f"the server refused {method} {path}: "
                                                  f"{_error_message(status, answer.body)}",
                                          code if isinstance(code, str) else None)
                reason = f"HTTP {status}: {_error_message(status, answer.body)}"
                retry_after = _retry_after(answer.headers.get("Retry-After"))
                if retry_after is not None:
                    if retry_after > s.max_retry_after or self._past_run_deadline(retry_after):
                        raise ServerUnavailable(
                            f"server unavailable ({reason}); it asks to retry after {span(retry_after)}",
                            retry_after=retry_after, reason=f"{reason}; it asks to retry after {span(retry_after)}")
                    delay = retry_after
            log.debug("%s %s failed (attempt %d): %s", method, path, attempt + 1, reason)
            if attempt >= s.max_retries:
                # "in this run": the status counts the failed attempts in a row across runs.
                tries = plural(attempt + 1, "time")
                raise ServerUnavailable(f"{self.base_url} failed {tries} in this run; last: {reason}",
                                        reason=None if unreachable else reason)
            if delay is None:
                delay = random.uniform(0, min(s.backoff_max, s.backoff_base * (2**attempt)))
            if self._past_run_deadline(delay):
                raise self._run_over(f"; last: {reason}")
            attempt += 1
            if self.on_retry is not None:
                self.on_retry(reason, unreachable, attempt)
            self._wait(delay)

    def _checked(self, path: str, answer: _Answer) -> _Answer:
        kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ProtocolError(
                f"the server answered {path} with {kind or 'no content type'} instead of JSON "
                "(a network sign-in page or a proxy may be in the way)")
        return answer

    def _past_run_deadline(self, delay: float) -> bool:
        return self.run_deadline is not None and time.monotonic() + delay >= self.run_deadline

    def _run_over(self, detail: str = "") -> DeadlineExceeded:
        return DeadlineExceeded.after(self.settings.run_timeout, detail)

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)
        if self._stop is not None and self._stop.is_set():
            raise Stopped("stopped before the sync finished; it resumes where it left off")
