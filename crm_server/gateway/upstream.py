"""The HTTP client for a BottleCRM (PyPI ``django-crm`` 1.35) REST API, over httpx.

What the upstream is really like (docs/gateway.md, "The upstream as observed") shapes this
module: list endpoints page by ``limit``/``offset`` in a fixed per-module order with an envelope
that differs per module (accounts come as an open and a closed half), details wrap the record
in a per-module key, creates answer 200 with only an id, validation errors are
``{"error": true, "errors": {field: [messages]}}`` and a missing record is a 404.

Every request has a deadline (connect and read timeouts) and every response a size cap; a
redirect is an error, never data. Reads (and PATCH/DELETE, which are idempotent) are retried on
connection failures, timeouts, 429 and 5xx with capped exponential backoff; a POST never is,
because BottleCRM has no idempotency key (the write-through's op ledger decides instead).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # an accounts page carries the whole contact catalogue
PAGE = 200  # rows per list request: BottleCRM has no maximum, the side payloads argue for few requests
AUDIT_LOG_SIZE = 50  # GET /api/activities/ never returns more


@dataclass(frozen=True, slots=True)
class Module:
    """One BottleCRM module: its URL, its audit-log entity type and where its rows sit."""

    path: str  # "accounts"
    entity_type: str  # "Account", as the audit log names it
    detail_key: str  # the key of the record in a detail response
    list_keys: tuple[tuple[str, ...], ...]  # where the rows sit in a list response (accounts: two halves)


MODULES: dict[str, Module] = {
    "accounts": Module("accounts", "Account", "account_obj",
                       (("active_accounts", "open_accounts"), ("closed_accounts", "close_accounts"))),
    "contacts": Module("contacts", "Contact", "contact_obj", (("results",),)),
    "cases": Module("cases", "Case", "cases_obj", (("cases",),)),
    "opportunities": Module("opportunities", "Opportunity", "opportunity_obj", (("opportunities",),)),
}


class UpstreamError(Exception):
    """BottleCRM did not do what was asked; the message says what happened (never a token)."""


class UpstreamUnavailable(UpstreamError):
    """BottleCRM could not be reached or kept failing; nothing is known to have been done.

    ``maybe_applied`` is True when a write request was sent and its answer never arrived, so
    the upstream may have applied it.
    """

    def __init__(self, message: str, *, maybe_applied: bool = False):
        super().__init__(message)
        self.maybe_applied = maybe_applied


class UpstreamRejected(UpstreamError):
    """BottleCRM refused a write (HTTP 400): ``fields`` maps its field names to its messages."""

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.fields = fields


class UpstreamNotFound(UpstreamError):
    """The record does not exist upstream (hard-deleted, or never existed)."""


class BadUpstreamData(UpstreamError):
    """BottleCRM answered with something that is not the JSON shape it documents."""


def _messages(errors: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(errors, dict):
        for name, value in errors.items():
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            out[str(name)[:100]] = str(value)[:500]
    elif errors:
        out["non_field_errors"] = str(errors)[:500]
    return out


class BottleCRM:
    """A session with one BottleCRM for one personal access token. Thread-safe (httpx.Client is)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BottleCRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def list_rows(self, module: str, **filters: str) -> Iterator[dict[str, Any]]:
        """Every row of a module, page by page (offset paging in the module's own order).

        A row can be missed or repeated when records are created or deleted during the scan
        (the order is not by creation for accounts and opportunities): callers de-duplicate by
        id and confirm an absence with :meth:`get` before believing it.
        """
        mod = MODULES[module]
        offset = 0
        while True:
            data = self._json("GET", f"/api/{mod.path}/", params={**filters, "limit": PAGE, "offset": offset})
            longest = 0
            for keys in mod.list_keys:
                rows = _dig(data, keys)
                if not isinstance(rows, list):
                    raise BadUpstreamData(f"GET /api/{mod.path}/ has no list at {'.'.join(keys)}")
                longest = max(longest, len(rows))
                for row in rows:
                    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                        raise BadUpstreamData(f"GET /api/{mod.path}/ sent a row without an id")
                    yield row
            if longest < PAGE:
                return
            offset += PAGE

    def get(self, module: str, upstream_id: str) -> dict[str, Any] | None:
        """One record by id, or None when it does not exist (404)."""
        mod = MODULES[module]
        try:
            data = self._json("GET", f"/api/{mod.path}/{upstream_id}/")
        except UpstreamNotFound:
            return None
        row = data.get(mod.detail_key)
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise BadUpstreamData(f"GET /api/{mod.path}/<id>/ has no {mod.detail_key}")
        return row

    def audit_log(self) -> list[dict[str, Any]]:
        """The newest audit-log entries (at most 50, newest first): action, entity_type, entity_id."""
        data = self._json("GET", "/api/activities/", params={"limit": AUDIT_LOG_SIZE})
        entries = data.get("activities")
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
            raise BadUpstreamData("GET /api/activities/ has no list of entries")
        return entries

    def default_pipeline(self) -> str:
        """The id of the default opportunity pipeline (a create needs one)."""
        data = self._json("GET", "/api/opportunities/pipelines/")
        pipelines = data.get("pipelines")
        if not isinstance(pipelines, list) or not pipelines:
            raise BadUpstreamData("BottleCRM has no opportunity pipeline")
        chosen = next((p for p in pipelines if isinstance(p, dict) and p.get("is_default")), pipelines[0])
        if not isinstance(chosen, dict) or not isinstance(chosen.get("id"), str):
            raise BadUpstreamData("an opportunity pipeline has no id")
        return chosen["id"]

    # ------------------------------------------------------------------ writes

    def create(self, module: str, body: dict[str, Any]) -> str:
        """POST a new record; returns its id. Never retried: a lost answer raises
        UpstreamUnavailable with ``maybe_applied`` (the caller must look before re-sending)."""
        data = self._json("POST", f"/api/{MODULES[module].path}/", json=body, retry=False)
        new_id = data.get("id")
        if not isinstance(new_id, str):
            raise BadUpstreamData(f"POST /api/{module}/ answered without an id")
        return new_id

    def update(self, module: str, upstream_id: str, body: dict[str, Any]) -> None:
        """PATCH some fields (idempotent, so retried like a read). UpstreamNotFound if it is gone."""
        self._json("PATCH", f"/api/{MODULES[module].path}/{upstream_id}/", json=body)

    def delete(self, module: str, upstream_id: str) -> None:
        """DELETE a record (deleting an account deletes its cases and opportunities upstream).

        A record already gone counts as deleted: a retried DELETE whose first answer was lost
        finds a 404.
        """
        try:
            self._json("DELETE", f"/api/{MODULES[module].path}/{upstream_id}/")
        except UpstreamNotFound:
            pass

    # ------------------------------------------------------------------ transport

    def _json(self, method: str, path: str, *, retry: bool = True, **kw: Any) -> dict[str, Any]:
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, path, **kw)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last:
                    raise UpstreamUnavailable(
                        f"BottleCRM did not answer {method} {path}: {type(exc).__name__}",
                        maybe_applied=sent and method != "GET",
                    ) from exc
                self._pause(attempt)
                continue
            status = response[0]
            if status in (429, 500, 502, 503, 504) and not last:
                self._pause(attempt)
                continue
            return self._decode(method, path, *response)
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, **kw: Any) -> tuple[int, httpx.Headers, bytes]:
        """Status, headers and body, the body read under the size cap."""
        with self._http.stream(method, path, **kw) as response:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise BadUpstreamData(f"{method} {path}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise BadUpstreamData(f"{method} {path}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
            return response.status_code, response.headers, bytes(body)

    def _decode(self, method: str, path: str, status: int, headers: httpx.Headers, content: bytes) -> dict[str, Any]:
        if 300 <= status < 400:
            raise UpstreamError(f"{method} {path}: BottleCRM redirected to {headers.get('location', '?')}")
        if status in (401, 403):
            raise UpstreamError(f"{method} {path}: BottleCRM refused the gateway's token (HTTP {status})")
        if status == 404:
            raise UpstreamNotFound(f"{method} {path}: not found")
        if status >= 500 or status == 429:
            raise UpstreamUnavailable(f"{method} {path}: BottleCRM answered HTTP {status}", maybe_applied=method != "GET")
        if "json" not in headers.get("content-type", ""):
            raise BadUpstreamData(f"{method} {path}: BottleCRM answered {headers.get('content-type')!r}, not JSON")
        try:
            data = orjson.loads(content) if content else {}
        except orjson.JSONDecodeError as exc:
            raise BadUpstreamData(f"{method} {path}: BottleCRM sent malformed JSON") from exc
        if not isinstance(data, dict):
            raise BadUpstreamData(f"{method} {path}: BottleCRM sent JSON that is not an object")
        if status == 400:
            fields = _messages(data.get("errors", data.get("detail", data)))
            summary = "; ".join(f"{k}: {v}" for k, v in fields.items()) or "the request was refused"
            raise UpstreamRejected(f"BottleCRM refused this: {summary}", fields)
        if status >= 400:
            raise UpstreamError(f"{method} {path}: BottleCRM answered HTTP {status}")
        return data

    def _pause(self, attempt: int) -> None:
        self._sleep(random.uniform(0, self.backoff * 2**attempt))


def _dig(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
