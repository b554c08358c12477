"""Error responses as the OpenAPI schema documents them (every error has the same body)."""

from __future__ import annotations

from typing import Any

from crm_tui.core.protocol import ErrorResponse


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


# Declaring 422 ourselves also stops FastAPI from documenting its own (different) 422 body.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _err("malformed query parameters or a query string over the limits (`invalid_query`), or cursor (`invalid_cursor`)"),
    401: _err("missing or unknown token"),
    404: _err("no such record in your scope, or no such route"),
    413: _err("request body over 8 MiB"),
    422: _err("the body is not JSON of the right shape, or is over an input limit; `fields` says what is wrong where"),
    429: _err("rate limit; the Retry-After header says when to retry"),
    503: _err("the database is busy; retry after Retry-After seconds"),
}

FEED_ERRORS = {**ERRORS, 410: _err("`resync_required`: start a new snapshot without a cursor")}
