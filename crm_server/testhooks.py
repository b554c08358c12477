"""Fault injection for sync tests; only with ``create_app(..., test_hooks=True)`` (``--test-hooks``).

``POST /_test/fault`` with a JSON body arms a fault for the next ``count`` requests whose path
starts with ``path`` (and, if given, whose method is ``method``)::

    {"path": "/v1/batch", "count": 1,
     "status": 503,          # answer this status with an error body instead of the real answer
     "after": false,         # true: run the real handler first (its effect is committed), then fail
     "delay": 0.0,           # seconds to wait before handling
     "truncate": false,      # send the real response's headers and only half its body, then drop
     "retry_after": null}    # a Retry-After header for the status

``DELETE /_test/fault`` disarms everything; ``GET /_test/fault`` lists what is armed. These routes
need no token and are not in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_server.http_errors import json_error

CONTROL_PATH = "/_test/fault"


@dataclass
class Fault:
    path: str
    count: int = 1
    method: str | None = None
    status: int | None = None
    after: bool = False
    delay: float = 0.0
    truncate: bool = False
    retry_after: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """A fault from the control request's JSON; ValueError names what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ValueError("send a JSON object with at least a path")
        fault = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        if fault.status is not None and not 100 <= int(fault.status) <= 599:
            raise ValueError("status must be an HTTP status")
        if not 0 <= float(fault.delay) <= 120 or int(fault.count) < 1:
            raise ValueError("delay must be 0-120 s and count at least 1")
        return fault


class FaultInjector:
    """ASGI middleware: serves the control routes and applies armed faults."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def _take(self, path: str, method: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.method in (None, method):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == CONTROL_PATH:
            await self._control(scope, receive, send)
            return
        fault = self._take(scope["path"], scope["method"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay:
            await asyncio.sleep(float(fault.delay))
        if fault.status is not None and not fault.after:
            await self._fail(fault, scope, receive, send)
            return
        if fault.status is None and not fault.truncate:
            await self.app(scope, receive, send)
            return
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if fault.status is not None:
            await self._fail(fault, scope, receive, send)
            return
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        # Returning here, short of Content-Length, makes uvicorn close the connection: the client
        # sees a truncated body, as when a proxy or the network gives up mid-response.

    async def _fail(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        response = json_error(int(fault.status or 500), "injected_fault", "a fault injected by a test", headers=headers)
        await response(scope, receive, send)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "DELETE":
            with self._lock:
                self.faults.clear()
        elif method == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                fault = Fault.from_json(orjson.loads(body or b"null"))
            except (ValueError, TypeError) as exc:
                await json_error(400, "bad_request", f"bad fault: {exc}")(scope, receive, send)
                return
            with self._lock:
                self.faults.append(fault)
        elif method != "GET":
            await json_error(405, "method_not_allowed", "use GET, POST or DELETE")(scope, receive, send)
            return
        with self._lock:
            armed = [asdict(f) for f in self.faults]
        await Response(orjson.dumps({"faults": armed}), media_type="application/json")(scope, receive, send)
