"""Every bad input gets a 4xx with a message in the one error shape, never a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest

from crm_server.limits import (
    MAX_ARRAY_ITEMS,
    MAX_KEY_CHARS,
    MAX_OBJECT_KEYS,
    MAX_QUERY_BYTES,
    MAX_QUERY_PARAMS,
    MAX_STRING_CHARS,
)
from support.server import ServerProcess, UserSpec, make_op


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    users = [UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",)), UserSpec("gone", "agent")]
    with ServerProcess(tmp_path_factory.mktemp("errors") / "crm.db", seed_customers=5, users=users) as s:
        yield s


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"], "every error says what went wrong"
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def test_health_needs_no_token(srv):
    assert httpx.get(srv.url + "/health").json() == {"status": "ok", "protocol": 1}


@pytest.mark.parametrize("path", ["/v1/me", "/v1/changes", "/v1/customers", "/v1/customers/cus-0000001"])
def test_missing_bad_or_malformed_tokens_get_401(srv, path):
    for headers in ({}, {"Authorization": "Bearer crm_not-a-real-token"}, {"Authorization": "Basic YWRhOmFkYQ=="},
                    {"Authorization": "Bearer"}):
        _error(httpx.get(srv.url + path, headers=headers), 401, "unauthorized")
    _error(httpx.post(srv.url + "/v1/batch", json={"ops": []}), 401, "unauthorized")


def test_a_deactivated_user_is_401(srv):
    with srv.client("ada") as admin:
        user = admin.get(f"/v1/users/{srv.user_ids['gone']}").json()
    srv.batch([make_op("update", "user", user["id"], {"active": False}, base_version=user["version"])])
    with srv.client("gone") as c:
        _error(c.get("/v1/me"), 401, "unauthorized")


def test_bodies_of_the_wrong_shape_get_422_with_field_messages(srv):
    with srv.client("ada") as c:
        err = _error(c.post("/v1/batch", content=b'{"ops": [', headers={"Content-Type": "application/json"}), 422, "invalid_body")
        assert "body" in err["fields"] and "JSON" in err["fields"]["body"]
        err = _error(c.post("/v1/batch", json={"ops": "all of them"}), 422, "invalid_body")
        assert "ops" in err["fields"]
        err = _error(c.post("/v1/batch", json={"ops": [1, 2]}), 422)
        assert any(k.startswith("ops.") for k in err["fields"])
        _error(c.post("/v1/batch", json={"ops": [], "extra": True}), 422)
        _error(c.post("/v1/batch", json=[]), 422)
        err = _error(c.post("/v1/batch", json={"ops": [make_op("create", "territory", f"t{i}") for i in range(1001)]}), 422)
        assert "ops" in err["fields"]


def test_text_that_is_not_unicode_rejects_the_op_not_the_server(srv):
    ops = [
        '{"op_id": "sur-1", "op": "create", "entity": "territory", "id": "sur-1", "fields": {"name": "\\ud800"}}',
        '{"op_id": "sur-2", "op": "create", "entity": "territory", "id": "sur-2", "fields": {"\\udfff": "x"}}',
        '{"op_id": "sur-3", "op": "create", "entity": "territory", "id": "sur-3", "fields": {"name": "ok"}}',
    ]
    body = ('{"ops": [' + ",".join(ops) + "]}").encode()
    with srv.client("ada") as c:
        response = c.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "rejected", "applied"]
    assert response.json()["results"][0]["error"]["code"] == "invalid_op"


def test_bodies_over_8_mib_get_413(srv):
    big = b'{"ops": [], "pad": "' + b"x" * (8 * 1024 * 1024 + 10) + b'"}'
    with srv.client("ada") as c:
        _error(c.post("/v1/batch", content=big, headers={"Content-Type": "application/json"}), 413, "payload_too_large")

        def chunks():  # no Content-Length: the server must count what arrives
            for start in range(0, len(big), 1 << 20):
                yield big[start : start + (1 << 20)]

        _error(c.post("/v1/batch", content=chunks(), headers={"Content-Type": "application/json"}), 413)
        assert c.get("/v1/me").status_code == 200, "the server is fine afterwards"


def test_numbers_and_filters_out_of_range_get_400(srv):
    with srv.client("ada") as c:
        for params in ({"limit": 0}, {"limit": 5001}, {"limit": "ten"}, {"limit": 10**30}):
            err = _error(c.get("/v1/changes", params=params), 400, "invalid_query")
            assert "limit" in err["fields"]
        _error(c.get("/v1/customers", params={"limit": 501}), 400, "invalid_query")
        _error(c.get("/v1/customers", params={"tier": "diamond"}), 400, "invalid_query")
        err = _error(c.get("/v1/customers", params={"colour": "red"}), 400, "invalid_query")
        assert "colour" in err["fields"]
        _error(c.get("/v1/customers", params=[("tier", "gold"), ("tier", "silver")]), 400, "invalid_query")
        _error(c.get("/v1/customers", params={"after": "x" * 65}), 400, "invalid_query")
        # Ops are judged one by one: an out-of-range number rejects the op, not the request.
        response = c.post("/v1/batch", json={"ops": [make_op("update", "customer", "cus-0000001", {"city": "X"},
                                                               base_version=2**60)]})
        (result,) = response.json()["results"]
        assert result["error"]["code"] == "invalid_op" and "base_version" in result["error"]["fields"]
        _error(c.get("/v1/changes", params={"cursor": "not a cursor"}), 400, "invalid_cursor")
        _error(c.get("/v1/changes", params={"cursor": "x" * 9000}), 400, "invalid_cursor")


def test_unknown_routes_records_and_methods(srv):
    with srv.client("ada") as c:
        _error(c.get("/v1/planets"), 404, "not_found")
        _error(c.get("/v1/planets/1"), 404, "not_found")
        _error(c.get("/nowhere"), 404, "not_found")
        _error(c.get("/v1/customers/no-such-id"), 404, "not_found")
        _error(c.get("/v1/customers/" + "x" * 100), 404, "not_found")
        _error(c.delete("/v1/customers/cus-0000001"), 405, "method_not_allowed")
        _error(c.put("/v1/batch", json={}), 405)


def test_out_of_scope_records_look_missing(srv):
    with srv.client("ada") as admin, srv.client("sam") as sam:
        outside = admin.get("/v1/customers", params={"limit": 500}).json()["items"]
        foreign = next(c for c in outside if c["territory"] != "dach")
        err = _error(sam.get(f"/v1/customers/{foreign['id']}"), 404, "not_found")
        missing = _error(sam.get("/v1/customers/surely-missing"), 404, "not_found")
        assert err == missing, "a record out of scope is indistinguishable from a missing one"


def test_the_rate_limit_answers_429_with_retry_after(server_factory):
    srv: ServerProcess = server_factory(seed_customers=0, rate_limit=2, users=[UserSpec("ada", "admin"), UserSpec("bo", "agent")])
    with srv.client("ada") as c, srv.client("bo") as other:
        statuses = [c.get("/v1/me") for _ in range(10)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert statuses[0].status_code == 200
        err = _error(limited[0], 429, "rate_limited")
        assert "retry" in err["message"]
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert other.get("/v1/me").status_code == 200, "the limit is per token"


def _create_territory(tid: str, **fields) -> dict:
    return make_op("create", "territory", tid, {"name": "Limits", **fields})


@pytest.mark.parametrize(
    ("name", "op_fields", "where"),
    [
        # 400 levels of lists once took a recursion overflow and a 500 down with the connection.
        ("deep-lists", {"name": json.loads("[" * 400 + "]" * 400)}, "ops.1.fields.name"),
        ("deep-objects", {"name": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "ops.1.fields.name"),
        ("many-fields", {f"f{i}": i for i in range(MAX_OBJECT_KEYS + 1)}, "ops.1.fields"),
        ("long-array", {"tags": ["x"] * (MAX_ARRAY_ITEMS + 1)}, "ops.1.fields.tags"),
        ("long-string", {"region": "x" * (MAX_STRING_CHARS + 1)}, "ops.1.fields.region"),
        ("long-key", {"k" * (MAX_KEY_CHARS + 1): 1}, "ops.1.fields"),
    ],
)
def test_a_batch_body_over_any_limit_gets_422_and_nothing_is_applied(srv, name, op_fields, where):
    first = _create_territory(f"limit-{name}")
    with srv.client("ada") as c:
        err = _error(c.post("/v1/batch", json={"ops": [first, _create_territory(f"limit-{name}-2", **op_fields)]}),
                     422, "invalid_body")
    (key,) = err["fields"]
    assert key.startswith(where), err
    assert srv.get_record("territories", first["id"]) is None, "the valid op before it was not applied either"


def test_a_batch_body_at_the_limits_is_judged_op_by_op(srv):
    at_limits = {"region": "x" * MAX_STRING_CHARS, **{f"f{i}": i for i in range(MAX_OBJECT_KEYS - 2)}}
    ok, long = _create_territory("limits-ok"), _create_territory("limits-long", **at_limits)
    with srv.client("ada") as c:
        response = c.post("/v1/batch", json={"ops": [ok, long]})
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["applied", "rejected"]


def test_a_body_that_is_not_json_gets_422(srv):
    with srv.client("ada") as c:
        err = _error(c.post("/v1/batch", content=b'{"ops": []}', headers={"Content-Type": "text/plain"}), 422,
                     "invalid_body")
        assert "Content-Type" in err["fields"]["body"]
        assert c.post("/v1/batch", content=b'{"ops": []}').status_code == 200, "no Content-Type at all is taken as JSON"


@pytest.mark.parametrize("path", ["/health", "/v1/me", "/v1/changes", "/v1/customers", "/v1/customers/cus-0000001"])
def test_query_strings_over_the_limits_get_400(srv, path):
    with srv.client("ada") as c:
        err = _error(c.get(path, params={"cursor": "x" * (MAX_QUERY_BYTES + 1)}), 400, "invalid_query")
        assert "longer than" in err["message"]
        err = _error(c.get(path, params=[(f"p{i}", "1") for i in range(MAX_QUERY_PARAMS + 1)]), 400, "invalid_query")
        assert "parameters" in err["message"]
