"""Record reads: ``GET /v1/{table}/{id}`` and ``GET /v1/{table}`` (keyset lists with filters).

One pair of routes per entity, built from the domain model, so the OpenAPI schema names each
entity's record shape and its filters exactly. Served by the read standby when it has caught up
(crm_server/reads.py).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, create_model

from crm_server.auth import TokenGate, read_as_caller, token_gate
from crm_server.errors import InvalidQuery, NotFound
from crm_server.openapi_docs import ERRORS
from crm_server.scope import Caller
from crm_server.store import ReadTx
from crm_server.store.schema import filter_fields
from crm_tui.core.domain import ENTITIES, ID_RE, Entity
from crm_tui.core.protocol import DEFAULT_LIST, MAX_LIST

_PY_TYPES: dict[str, Any] = {
    "str": str, "text": str, "enum": str, "ref": str, "date": str, "datetime": str,
    "int": int, "money": int, "bool": bool, "tags": list[str],
}


def record_model(ent: Entity) -> type[BaseModel]:
    """The wire shape of one record, for the schema (responses are not re-validated)."""
    fields: dict[str, Any] = {"id": (str, ...)}
    for f in ent.fields:
        py = _PY_TYPES[f.kind]
        if f.kind == "enum":
            py = Literal[f.choices]
        fields[f.name] = (py | None, None)
    fields["version"] = (int, ...)
    return create_model(ent.label.replace(" ", "") + "Record", **fields)


def add_record_routes(router: APIRouter) -> None:
    """Add the get and list routes of every entity to ``router``."""
    for ent in ENTITIES.values():
        model = record_model(ent)
        page = create_model(ent.label.replace(" ", "") + "Page", items=(list[model], ...), next=(str | None, None))  # type: ignore[valid-type, arg-type, unused-ignore]
        router.add_api_route(
            f"/v1/{ent.table}",
            _list_endpoint(ent),
            methods=["GET"],
            response_model=page,
            responses=ERRORS,
            summary=f"List {ent.table} in id order",
            name=f"list_{ent.table}",
            tags=["records"],
        )
        router.add_api_route(
            f"/v1/{ent.table}/{{id}}",
            _get_endpoint(ent),
            methods=["GET"],
            response_model=model,
            responses=ERRORS,
            summary=f"One {ent.name}",
            name=f"get_{ent.name}",
            tags=["records"],
        )


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _kw(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _get_endpoint(ent: Entity):
    def get_record(**kw: Any) -> Response:
        """One record by id; 404 when it does not exist or is outside the caller's scope."""
        request: Request = kw["request"]
        record_id = kw["id"]

        def read(tx: ReadTx, caller: Caller) -> Response:
            stored = tx.get(ent, record_id) if ID_RE.match(record_id) else None
            if stored is None or not caller.sees(stored.territory):
                raise NotFound(f"no such {ent.label.lower()}")
            return _json(stored.record)

        return read_as_caller(request, kw["gate"], read)

    get_record.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            _kw("request", inspect.Parameter.empty, Request),
            _kw("id", Path(description=f"the {ent.name}'s id"), str),
            _kw("gate", Depends(token_gate), TokenGate),
        ]
    )
    return get_record


def _list_endpoint(ent: Entity):
    filters = filter_fields(ent)
    allowed = {"after", "limit", *(f.name for f in filters)}

    def list_records(**kw: Any) -> Response:
        """Records in the caller's scope in id order after ``after``, with equality filters."""
        request: Request = kw["request"]
        values = {f.name: kw[f.name] for f in filters if kw[f.name] is not None}
        limit = kw["limit"]

        def read(tx: ReadTx, caller: Caller) -> list[dict[str, Any]]:
            # Checked after the token (inside the same transaction), as before the token check
            # joined it: a revoked device is told so whatever it asks.
            unknown = sorted(set(request.query_params) - allowed)
            if unknown:
                raise InvalidQuery(
                    f"unknown query parameter {unknown[0]!r}; {ent.table} can be filtered on "
                    + (", ".join(f.name for f in filters) or "nothing"),
                    fields={u[:64]: "is not a filter of " + ent.table for u in unknown[:20]},
                )
            repeated = [k for k in allowed if len(request.query_params.getlist(k)) > 1]
            if repeated:
                raise InvalidQuery(f"{repeated[0]} was given more than once", fields={repeated[0]: "give it once"})
            return tx.list_records(ent, after=kw["after"], limit=limit, filters=values, territories=caller.scope())

        items = read_as_caller(request, kw["gate"], read)
        return _json({"items": items, "next": items[-1]["id"] if len(items) == limit else None})

    params = [
        _kw("request", inspect.Parameter.empty, Request),
        _kw("gate", Depends(token_gate), TokenGate),
        _kw("after", Query(None, max_length=64, description="the last id of the previous page"), str | None),
        _kw("limit", Query(DEFAULT_LIST, ge=1, le=MAX_LIST, description=f"1-{MAX_LIST} records"), int),
    ]
    for f in filters:
        doc = f"only records whose {f.name} equals this"
        if f.kind == "enum":
            params.append(_kw(f.name, Query(None, description=doc), Literal[f.choices] | None))
        else:
            params.append(_kw(f.name, Query(None, max_length=254, description=doc), str | None))
    list_records.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return list_records
