"""The reference CRM server: HTTP API, auth, scopes, change feed and batch writes.

Module map (docs/sync-protocol.md is the contract):

* ``app`` — ``create_app(store, rate_limit=...)``: the FastAPI app and its routes.
* ``feed`` — ``GET /v1/changes``: snapshot, backfill and feed pages; ``cursor`` signs the cursor.
* ``batch`` — ``POST /v1/batch``: ops applied in order, one savepoint each, idempotent by op id.
* ``records_api`` — ``GET /v1/{table}`` and ``/v1/{table}/{id}``.
* ``auth`` (tokens, rate limit), ``scope`` (who sees what), ``errors`` and ``http_errors`` (the
  one error shape), ``limits`` (input limits), ``openapi_docs``.
* ``serving`` (``crm-server serve``: uvicorn, TLS, one-line start-up errors), ``connections``
  (header and body deadlines, connection caps), ``memory`` (freed memory back to the OS).
* ``store`` — ALL SQL: the ``Store`` interface and its SQLite backend.
* ``accounts`` (users, grants, tokens), ``seed`` and ``seed_data`` (demo data), ``cli`` (``crm-server``).
"""
