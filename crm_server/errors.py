"""The server's error hierarchy: each error knows its HTTP status and its wire code.

Raised anywhere below the HTTP layer and turned into ``{"error": {"code", "message", "fields"}}``
at the edge (see :mod:`crm_server.http_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A request the server refuses, with a message a person can act on."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return error_body(self.code, self.message, self.fields)


class InvalidQuery(ApiError):
    status, code = 400, "invalid_query"


class InvalidCursor(ApiError):
    status, code = 400, "invalid_cursor"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class TokenExpired(Unauthorized):
    code = "token_expired"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class DeviceRevoked(Forbidden):
    """An admin marked this device lost: the client deletes its local data (docs/security.md)."""

    code = "device_revoked"


class NotFound(ApiError):
    status, code = 404, "not_found"


class ResyncRequired(ApiError):
    status, code = 410, "resync_required"


class InvalidBody(ApiError):
    """The body is not JSON of the right shape, or is over one of the input limits."""

    status, code = 422, "invalid_body"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class ServiceBusy(ApiError):
    """The database stayed locked too long; nothing was done, retrying is safe."""

    status, code = 503, "busy"


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The one error shape every response uses."""
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}
