"""Shared by the API test modules: one server per module, catalog-derived sample records, and the
generic checks every resource group runs (CRUD round trip, DRF validation wording, filters).

A test module takes the shared server with ``module_server, server = shared_server()``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import sqlite3
import uuid
from typing import Any

import pytest
import requests

from swf_lite.catalog import BY_NAME, REQUIRED, RESOURCES, F, Resource
from swf_lite.server import SwfLiteServer

from conftest import make_settings

NOW = "2026-03-31T12:00:00Z"
DATETIME_ERROR = (
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
GENERIC = [r for r in RESOURCES if r.generic]
WRITABLE = [r for r in GENERIC if r.writable]
_numbers = itertools.count(1)


# -- servers ---------------------------------------------------------------------------------------


def shared_server():
    """Fixtures that replace conftest's per-test ``server`` with one server per module, emptied
    before each test (stopping a server takes ~0.5 s; hundreds of tests would spend minutes on it).
    conftest's ``api`` and ``anon`` clients then talk to it."""

    @pytest.fixture(scope="module")
    def module_server(tmp_path_factory, engine):
        with engine.serve(tmp_path_factory.mktemp("data")) as srv:
            yield srv

    @pytest.fixture
    def server(module_server):
        module_server.ctx.reset()
        return module_server

    return module_server, server


@contextlib.contextmanager
def running(tmp_path, engine=None, **settings):
    """A server with special settings (time zone, body limit, stale-agent age) for one test; on
    ``engine`` (conftest's fixture) if given, else SQLite."""
    if engine:
        with engine.serve(tmp_path / "data", **settings) as srv:
            yield srv
        return
    srv = SwfLiteServer(make_settings(tmp_path / "data", **settings)).start()
    try:
        yield srv
    finally:
        srv.stop()


def raw_connection(srv):
    """(a DB-API connection of its own to the server's database, its placeholder): what another
    client of the database sees, committed data only."""
    url = srv.settings.db_url
    if url.startswith("sqlite"):
        return sqlite3.connect(url.split("sqlite:///", 1)[1], timeout=5), "?"
    import psycopg

    return psycopg.connect(url, autocommit=True), "%s"


# -- responses -------------------------------------------------------------------------------------


def ok(resp: requests.Response, status: int = 200) -> Any:
    """Assert the status (showing the body when it differs) and return the JSON body."""
    assert resp.status_code == status, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def error(resp: requests.Response, status: int = 400) -> Any:
    return ok(resp, status)


def same(got: Any, expected: Any, note: Any = "") -> None:
    """``got == expected``, failing with both values shown (pytest rewrites only test modules' asserts)."""
    assert got == expected, f"{note}\n     got: {got!r}\nexpected: {expected!r}"


def not_found_detail(r: Resource) -> dict[str, str]:
    return {"detail": f"No {r.model} matches the given query."}


# -- sample records --------------------------------------------------------------------------------


def sample_value(f: F, n: int) -> Any:
    """A valid input value for one field (unique per ``n`` where the kind allows it)."""
    if f.choices:
        return f.choices[n % len(f.choices)]
    kind = f.kind
    if kind in ("int", "int64"):
        return n
    if kind == "float":
        return n + 0.5
    if kind == "bool":
        return n % 2 == 0
    if kind == "datetime":
        return (dt.datetime(2026, 3, 31, 12, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)).isoformat()
    if kind == "json":
        return {"n": n, "nested": {"list": [1, "two", None]}}
    if kind == "uuid":
        return str(uuid.uuid4())
    if kind == "ip":
        return f"10.0.0.{n % 250}"
    if kind == "url":
        return f"http://localhost:{n}/"
    text = f"{f.name}-{n}"
    return text[-f.max_length :] if f.max_length else text


def fk_value(api, f: F) -> Any:
    """Create a parent row for a foreign key and return the key the child sends."""
    parent = create(api, f.to)
    return parent[f.to_field or BY_NAME[f.to].pk.name]


def payload(api, name: str, **overrides: Any) -> dict[str, Any]:
    """A valid create body: every required field (parents created as needed), then overrides."""
    r = BY_NAME[name]
    n = next(_numbers)
    body = {}
    for f in r.all_fields:
        if f.name in overrides or not f.required:
            continue
        body[f.name] = fk_value(api, f) if f.kind == "fk" else sample_value(f, n)
    body.update(overrides)
    return body


def create(api, name: str, **overrides: Any) -> dict[str, Any]:
    return ok(api.post(f"/api/{name}/", json=payload(api, name, **overrides)), 201)


def two_values(f: F) -> tuple[Any, Any]:
    """Two different valid inputs for a field."""
    if f.choices:
        return f.choices[0], f.choices[1]
    if f.kind == "bool":
        return True, False
    n = next(_numbers)
    return sample_value(f, n), sample_value(f, n + 1)


def as_query(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def value_at(api, r: Resource, obj: dict[str, Any], path: str) -> Any:
    """The value a filter ``path`` (``field`` or ``fk.field...``) has for ``obj``, read over the API."""
    head, _, rest = path.partition(".")
    if not rest:
        return obj[head]
    f = r.field(head)
    parent = BY_NAME[f.to]
    if f.to_field:
        found = ok(api.get(f"/api/{parent.name}/", params={f.to_field: obj[head]}))
        assert len(found) == 1
        parent_obj = found[0]
    else:
        parent_obj = ok(api.get(f"/api/{parent.name}/{obj[head]}/"))
    return value_at(api, parent, parent_obj, rest)


def field_for_path(r: Resource, path: str) -> F | None:
    """The field a simple (one-step) filter path names; None for paths through foreign keys."""
    return None if "." in path else r.field(path)


# -- generic checks (each group module runs them over its resources) -------------------------------


def editable_field(r: Resource) -> F:
    """A plain field a PATCH can change freely (not a key, not unique, not a foreign key)."""
    for f in r.fields:
        if not (f.read_only or f.unique or f.kind in ("fk", "bool", "datetime")) and not any(
            f.name in cols for cols in r.unique_together
        ):
            return f
    raise AssertionError(f"{r.name} has no editable field")


def crud_round_trip(api, anon, name: str) -> None:
    """Create (token), read (anonymous), PATCH, PUT, list, DELETE, then 404."""
    r = BY_NAME[name]
    base = f"/api/{name}/"
    body = payload(api, name)
    created = ok(api.post(base, json=body), 201)
    same(list(created), [f.name for f in r.all_fields], "pk first, then fields as declared")
    key = created[r.pk.name]
    assert key is not None
    detail = f"{base}{key}/"
    same(ok(anon.get(detail)), created)
    assert created in ok(anon.get(base)), name

    f = editable_field(r)
    new = sample_value(f, 999) if f.choices is None else f.choices[-1]
    patched = ok(api.patch(detail, json={f.name: new}))
    same(patched[f.name], new, f.name)
    same(ok(anon.get(detail))[f.name], new, f.name)
    unchanged = {k: v for k, v in created.items() if k not in (f.name, "updated_at")}
    same({k: v for k, v in patched.items() if k in unchanged}, unchanged, "PATCH changes only the fields sent")
    if "updated_at" in created:
        assert patched["updated_at"] >= created["updated_at"] and patched["updated_at"] != created["updated_at"]

    full = dict(body, **{f.name: sample_value(f, 1000) if f.choices is None else f.choices[0]})
    put = ok(api.put(detail, json=full))
    same((put[f.name], put[r.pk.name]), (full[f.name], key), "PUT")

    resp = api.delete(detail)
    same((resp.status_code, resp.content), (204, b""), "DELETE")
    same(error(anon.get(detail), 404), not_found_detail(r), "GET after DELETE")
    same(error(api.patch(detail, json={}), 404), not_found_detail(r), "PATCH after DELETE")
    same(error(api.put(detail, json=full), 404), not_found_detail(r), "PUT never creates")
    same(error(api.delete(detail), 404), not_found_detail(r), "DELETE after DELETE")


def assert_nothing_stored(anon, name: str) -> None:
    same(ok(anon.get(f"/api/{name}/")), [], f"nothing stored in {name}")


def required_errors(api, anon, name: str) -> None:
    """An empty body names every required field with DRF's wording; nothing is stored."""
    r = BY_NAME[name]
    expected = {f.name: ["This field is required."] for f in r.all_fields if f.required}
    assert expected, f"{name} has required fields"
    same(error(api.post(f"/api/{name}/", json={})), expected)
    assert_nothing_stored(anon, name)


def wrong_values(api, anon, name: str) -> None:
    """One body with every field wrong in its kind's way: every message is DRF's, nothing stored."""
    r = BY_NAME[name]
    body: dict[str, Any] = {}
    expected: dict[str, list[str]] = {}
    for f in r.all_fields:
        if f.read_only or f.kind in ("fk", "json", "text"):
            continue
        if f.choices:
            body[f.name], message = "bogus", '"bogus" is not a valid choice.'
        elif f.kind in ("int", "int64"):
            body[f.name], message = "twelve", "A valid integer is required."
        elif f.kind == "float":
            body[f.name], message = "1.5x", "A valid number is required."
        elif f.kind == "bool":
            body[f.name], message = "perhaps", "Must be a valid boolean."
        elif f.kind == "datetime":
            body[f.name], message = "31/03/2026 12:00", DATETIME_ERROR
        elif f.kind == "uuid":
            body[f.name], message = "not-a-uuid", "Must be a valid UUID."
        elif f.kind == "ip":
            body[f.name], message = "300.1.1.1", "Enter a valid IPv4 or IPv6 address."
        elif f.kind == "url":
            body[f.name], message = "localhost without scheme", "Enter a valid URL."
        elif f.max_length:
            body[f.name] = "x" * (f.max_length + 1)
            message = f"Ensure this field has no more than {f.max_length} characters."
        else:
            continue
        expected[f.name] = [message]
    assert expected, f"{name} has fields to get wrong"
    got = error(api.post(f"/api/{name}/", json=body))
    same({k: v for k, v in got.items() if k in expected}, expected)
    assert set(got) - set(expected) <= {f.name for f in r.all_fields if f.required}, got
    assert_nothing_stored(anon, name)


def null_errors(api, anon, name: str) -> None:
    """null for each non-nullable writable field: ``This field may not be null.``"""
    r = BY_NAME[name]
    body = payload(api, name)
    not_null = [f.name for f in r.all_fields if not (f.null or f.read_only)]
    got = error(api.post(f"/api/{name}/", json=dict(body, **dict.fromkeys(not_null))))
    same(got, {n: ["This field may not be null."] for n in not_null})
    assert_nothing_stored(anon, name)
    nullable = [f.name for f in r.all_fields if f.null and not f.read_only]
    if nullable:  # and null is stored as null where allowed
        stored = ok(api.post(f"/api/{name}/", json=dict(body, **dict.fromkeys(nullable))), 201)
        same({n: stored[n] for n in nullable}, dict.fromkeys(nullable))


def defaults_applied(api, name: str) -> None:
    """Optional fields left out take their declared defaults."""
    r = BY_NAME[name]
    obj = create(api, name)
    for f in r.fields:
        if not (f.required or f.read_only):
            same(obj[f.name], None if f.default is REQUIRED else f.default, f.name)


def eq_filters_work(api, name: str, params: list[str]) -> None:
    """Each exact filter selects exactly the matching rows; comma lists mean any of; no match → []."""
    r = BY_NAME[name]
    by_param = {flt.param: flt for flt in r.filters}
    missing = [p for p in params if p not in by_param]
    assert not missing, f"{name} lacks filters {missing}"
    for param in params:
        flt = by_param[param]
        f = field_for_path(r, flt.path)
        if f is not None and f.kind != "fk":
            v1, v2 = two_values(f)
            a, b = create(api, name, **{f.name: v1}), create(api, name, **{f.name: v2})
        else:  # fresh parents per row make the related values differ
            a, b = create(api, name), create(api, name)
        va, vb = value_at(api, r, a, flt.path), value_at(api, r, b, flt.path)
        assert va != vb, (name, param)
        base = f"/api/{name}/"
        same(ok(api.get(base, params={param: as_query(va)})), [a], param)
        both = ok(api.get(base, params={param: f"{as_query(va)},{as_query(vb)}"}))
        same(sorted(str(x[r.pk.name]) for x in both), sorted(str(x[r.pk.name]) for x in (a, b)), f"{param}: any of")
        assert len(ok(api.get(base))) >= 2
        for x in (a, b):
            assert api.delete(f"{base}{x[r.pk.name]}/").status_code == 204
        same(ok(api.get(base, params={param: as_query(va)})), [], f"{param}: no match")


def writes_need_token(api, anon, name: str) -> None:
    """POST, PUT, PATCH and DELETE without a token: 401 with DRF's wording; nothing changes.
    Reads without a token work."""
    r = BY_NAME[name]
    base = f"/api/{name}/"
    body = payload(api, name)
    denied = {"detail": "Authentication credentials were not provided."}
    resp = anon.post(base, json=body)
    same((error(resp, 401), resp.headers["WWW-Authenticate"]), (denied, "Token"), "POST")
    same(ok(anon.get(base)), [])
    obj = ok(api.post(base, json=body), 201)
    detail = f"{base}{obj[r.pk.name]}/"
    for method in ("PUT", "PATCH", "DELETE"):
        resp = anon.request(method, detail, json=body)
        same((error(resp, 401), resp.headers["WWW-Authenticate"]), (denied, "Token"), method)
    same(ok(anon.get(detail)), obj)
    same(ok(anon.get(base)), [obj])


class ResourceGroupContract:
    """The checks every resource group runs. A test module subclasses it (``class TestGroup``) with
    ``GROUP = {resource: (pk clients use, [filters clients use])}``; ``name`` is parametrized over it."""

    GROUP: dict[str, tuple[str, list[str]]] = {}

    def pytest_generate_tests(self, metafunc):
        if "name" in metafunc.fixturenames:
            names = list(self.GROUP)
            if metafunc.function.__name__ == "test_every_filter":
                names = [n for n in names if self.GROUP[n][1]]
            metafunc.parametrize("name", names)

    def test_primary_key_is_the_one_clients_use(self, name):
        assert BY_NAME[name].pk.name == self.GROUP[name][0]

    def test_create_read_update_delete(self, api, anon, name):
        crud_round_trip(api, anon, name)

    def test_missing_required_fields(self, api, anon, name):
        required_errors(api, anon, name)

    def test_wrong_values_get_drf_messages(self, api, anon, name):
        wrong_values(api, anon, name)

    def test_null_where_not_allowed(self, api, anon, name):
        null_errors(api, anon, name)

    def test_defaults(self, api, name):
        defaults_applied(api, name)

    def test_every_filter(self, api, name):
        eq_filters_work(api, name, self.GROUP[name][1])

    def test_writes_need_token_reads_do_not(self, api, anon, name):
        writes_need_token(api, anon, name)
