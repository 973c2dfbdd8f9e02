"""Issue 4: the OpenAPI document at /api/schema/ — valid OpenAPI 3, derived from the catalog, and
true to the running server (its required fields and response shapes are checked against real calls).

Expectations are derived from the catalog wherever possible, so a new resource or field is covered
without touching this file. One server serves the whole module: the tests only read, and the one
that writes uses names no other test uses.
"""

from __future__ import annotations

import copy
import re
import uuid

import pytest
import requests

from swf_lite import __version__, counters, service
from swf_lite.api import schema as schema_mod
from swf_lite.catalog import AGENT_TYPE, LOG_LEVELS, RESOURCES, Resource
from swf_lite.server import SwfLiteServer

from conftest import make_settings

GENERIC = [r for r in RESOURCES if r.generic]
WRITABLE = [r for r in GENERIC if r.writable]
REQUIRED_MSG = "This field is required."
WRITE_METHODS = ("post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module (overrides conftest's per-test one; its api/anon clients use it)."""
    s = SwfLiteServer(make_settings(tmp_path_factory.mktemp("schema") / "data")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def doc(server):
    r = requests.get(server.http_url + "/api/schema/", timeout=10, allow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def deref(doc: dict, node):
    """``node`` with every local ``$ref`` replaced by its target (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return deref(doc, target)
        return {k: deref(doc, v) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(doc, v) for v in node]
    return node


def component(doc: dict, name: str) -> dict:
    return deref(doc, doc["components"]["schemas"][name])


def body_schema(doc: dict, path: str, method: str) -> dict:
    return deref(doc, doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])


def response_schema(doc: dict, path: str, method: str, status: int, media: str = "application/json") -> dict:
    response = deref(doc, doc["paths"][path][method]["responses"][str(status)])
    return response["content"][media]["schema"]


def assert_conforms(doc: dict, response: requests.Response, path: str, method: str) -> None:
    """The response's status is documented for the operation and its body matches the schema."""
    validators = pytest.importorskip("openapi_schema_validator")
    responses = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code, response.text)
    schema = response_schema(doc, path, method, response.status_code)
    validator = validators.OAS30ReadValidator(schema, format_checker=validators.oas30_format_checker)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())]
    assert not errors, (path, method, errors[:5])


# -- a valid document, served without a token, cached ---------------------------------------------


def test_document_is_valid_openapi_3(doc, server):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    assert doc["openapi"].startswith("3.0")
    assert doc["info"]["title"] == "swf-lite"
    assert doc["info"]["version"] == __version__
    assert doc["servers"] == [{"url": server.http_url}]
    scheme = doc["components"]["securitySchemes"]["TokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Token <40" in scheme["description"]


def test_servers_follow_the_request_and_the_rest_is_cached(doc, server, api):
    over_tls = api.get("/api/schema")  # no slash, with a token: the same document
    assert over_tls.status_code == 200
    other = over_tls.json()
    assert other["servers"] == [{"url": server.https_url}]
    assert {k: v for k, v in other.items() if k != "servers"} == {k: v for k, v in doc.items() if k != "servers"}
    assert schema_mod.build_document() is schema_mod.build_document()
    assert schema_mod.document("http://x")["servers"] == [{"url": "http://x"}]
    assert "servers" not in schema_mod.build_document()  # document() did not mutate the cache


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", GENERIC, ids=lambda r: r.name)
def test_every_generic_resource_has_its_paths(doc, r: Resource):
    collection, detail = doc["paths"][f"/api/{r.name}/"], doc["paths"][f"/api/{r.name}/{{pk}}/"]
    assert "get" in collection and "get" in detail
    assert {m for m in WRITE_METHODS if m in collection or m in detail} == (set(WRITE_METHODS) if r.writable else set())
    for op in (collection["get"], detail["get"]):
        assert not op.get("security")  # reads need no token
    list_200 = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"type": "array", "items": {"$ref": f"#/components/schemas/{r.model}"}} in list_200["oneOf"]
    params = {p["name"] for p in collection["get"]["parameters"]}
    own_search = any(f.op == "search" for f in r.filters)  # else swf-lite's generic ?search= is offered
    assert params == {f.param for f in r.filters} | {"ordering", "limit", "offset"} | (
        set() if own_search else {"search"}
    )
    if not r.writable:
        return
    create = collection["post"]
    if r.anonymous_write:  # anyone may create; changing or deleting still needs a token
        assert not create.get("security") and "401" not in create["responses"]
    else:
        assert create["security"] == [{"TokenAuth": []}] and "401" in create["responses"]
    for op in (detail["put"], detail["patch"], detail["delete"]):
        assert op["security"] == [{"TokenAuth": []}] and "401" in op["responses"]
    assert set(collection["post"]["responses"]) >= {"201", "400"}
    assert "204" in detail["delete"]["responses"]
    assert body_schema(doc, f"/api/{r.name}/{{pk}}/", "patch").get("required") is None


def test_special_endpoints_are_documented(doc):
    paths = doc["paths"]
    for c in counters.COUNTERS:
        op = paths[f"/api/state/{c.endpoint}/"]["post"]
        assert op["security"] == [{"TokenAuth": []}]
        assert response_schema(doc, f"/api/state/{c.endpoint}/", "post", 200)["required"] == [c.response_key, "status"]
    assert body_schema(doc, "/api/systemagents/heartbeat/", "post")["required"] == ["instance_name"]
    assert set(paths["/api/systemagents/heartbeat/"]["post"]["responses"]) >= {"200", "201", "400", "401"}
    assert body_schema(doc, "/api/namespaces/ensure/", "post")["required"] == ["name", "owner"]
    assert "additionalProperties" in response_schema(doc, "/api/logs/summary/", "get", 200)
    assert not paths["/api/ai-memory/record/"]["post"].get("security")
    assert "items" in response_schema(doc, "/api/ai-memory/", "get", 200)["properties"]
    stream = paths["/api/messages/stream/"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert stream["security"] == [{"TokenAuth": []}]
    assert {p["name"] for p in stream["parameters"]} >= {"msg_types", "agents", "run_ids", "namespace"}
    assert paths["/api/messages/stream/status/"]["get"]["security"] == [{"TokenAuth": []}]
    assert "connected_clients" in response_schema(doc, "/api/messages/stream/status/", "get", 200)["properties"]
    for path in ("/health/", "/api/", "/api/schema/"):
        assert not paths[path]["get"].get("security")


def test_documented_operations_are_exactly_the_served_api(doc, server):
    """Every API route of the running app is documented and every documented operation is routed
    (routes that only answer 405 are left out)."""
    served = {
        (route.rule.replace("<pk>", "{pk}"), route.method.lower())
        for route in server.app.app.routes
        if route.rule.startswith(("/api/", "/health")) and not route.callback.__name__.startswith("not_allowed")
    }
    documented = {(path, method) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert documented == served


def _absent_key(r: Resource) -> str:
    """A key of the right type that names no row."""
    return {"uuid": str(uuid.uuid4()), "int": "2000000000", "int64": "2000000000"}.get(r.pk.kind, "no-such-key")


@pytest.mark.parametrize("r", WRITABLE, ids=lambda r: r.name)
def test_documented_security_matches_the_server(doc, anon, r: Resource):
    """A write without a token is refused (401) exactly where the document asks for TokenAuth."""
    for path, method in (
        (f"/api/{r.name}/", "post"),
        *((f"/api/{r.name}/{{pk}}/", m) for m in ("put", "patch", "delete")),
    ):
        op = doc["paths"][path][method]
        response = anon.request(method.upper(), path.replace("{pk}", _absent_key(r)), json={})
        assert (response.status_code == 401) == bool(op.get("security")), (method, path, response.status_code)
        assert str(response.status_code) in op["responses"], (method, path, response.status_code)


# -- derived field schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("r", RESOURCES, ids=lambda r: r.name)
def test_object_and_request_schemas_follow_the_catalog(doc, r: Resource):
    obj = component(doc, r.model)
    assert list(obj["properties"]) == [f.name for f in r.all_fields]  # pk first, catalog order
    assert obj["required"] == list(obj["properties"])  # every key is always present
    assert {n for n, s in obj["properties"].items() if s.get("readOnly")} == {
        f.name for f in r.all_fields if f.read_only
    }
    assert {n for n, s in obj["properties"].items() if s.get("nullable")} == {
        f.name for f in r.all_fields if f.null and f.kind != "json"
    }
    req = component(doc, f"{r.model}Request")
    assert list(req["properties"]) == [f.name for f in r.all_fields if not f.read_only]
    assert req.get("required", []) == [f.name for f in r.all_fields if f.required]


def test_spot_checks(doc):
    agent, agent_req = component(doc, "SystemAgent"), component(doc, "SystemAgentRequest")
    assert agent_req["properties"]["agent_type"]["enum"] == list(AGENT_TYPE)
    assert agent_req["properties"]["agent_type"]["maxLength"] == 20
    assert "enum" not in agent["properties"]["agent_type"]  # heartbeats store other values (TEST, ...)
    assert agent_req["properties"]["status"]["default"] == "UNKNOWN"
    assert agent_req["properties"]["instance_name"]["minLength"] == 1
    url = agent_req["properties"]["agent_url"]
    assert (url["type"], url["format"], url["maxLength"], url["nullable"]) == ("string", "uri", 200, True)
    assert "format" not in agent["properties"]["agent_url"]  # stored URLs may be IRIs
    assert agent["properties"]["metadata"] == {}
    assert agent["properties"]["workflow_enabled"] == {"type": "boolean"}

    run = component(doc, "Run")
    assert list(run["properties"])[0] == "run_id"
    assert run["properties"]["run_id"]["readOnly"] and run["properties"]["run_id"]["format"] == "int32"
    assert run["properties"]["start_time"] == {"type": "string", "format": "date-time"}
    assert component(doc, "RunRequest")["required"] == ["run_number", "start_time"]
    assert "required" not in component(doc, "PatchedRunRequest")

    log = component(doc, "AppLogRequest")["properties"]
    assert log["thread"]["format"] == "int64" and log["lineno"]["format"] == "int32"
    assert log["level"]["enum"] == list(LOG_LEVELS) and log["level"]["default"] == 0

    stf = component(doc, "StfFile")["properties"]
    assert stf["file_id"]["format"] == "uuid" and stf["file_id"]["readOnly"]
    assert stf["run"]["type"] == "integer"  # the Run's run_id
    assert stf["status"]["enum"][0] == "registered"
    fastmon = component(doc, "FastMonFile")["properties"]
    assert (fastmon["stf_file"]["type"], fastmon["stf_file"]["maxLength"]) == ("string", 255)  # the STF filename
    message = component(doc, "WorkflowMessage")["properties"]
    assert (message["workflow"]["format"], message["workflow"]["nullable"]) == ("uuid", True)
    assert message["sent_at"]["readOnly"]
    assert component(doc, "Subscriber")["properties"]["delivery_type"]["enum"] == ["activemq", "sse"]
    execution = component(doc, "WorkflowExecutionRequest")
    assert "execution_id" in execution["required"] and "parameter_values" in execution["required"]
    assert "anyOf" in execution["properties"]["parameter_values"]  # any JSON value but null
    assert "execution_id" not in component(doc, "WorkflowExecutionUpdateRequest")["properties"]
    assert "worker_id" in component(doc, "WorkerRequest")["required"]

    def param(path, name, method="get"):
        op = doc["paths"][path]
        return next(p for p in op.get("parameters", []) + op[method].get("parameters", []) if p["name"] == name)

    assert param("/api/stf-files/{pk}/", "pk")["schema"]["format"] == "uuid"
    assert param("/api/runs/{pk}/", "pk")["schema"]["type"] == "integer"
    assert param("/api/workers/{pk}/", "pk")["schema"]["type"] == "string"
    assert param("/api/logs/", "min_level")["schema"]["type"] == "integer"
    assert param("/api/logs/", "start_time")["schema"]["format"] == "date-time"
    assert param("/api/logs/", "search")["schema"] == {"type": "string"}
    assert param("/api/stf-files/", "run_number")["schema"]["items"]["type"] == "integer"
    assert param("/api/subscribers/", "is_active")["schema"]["items"]["type"] == "boolean"
    assert "-timestamp" in param("/api/logs/", "ordering")["schema"]["items"]["enum"]


def test_not_blank_pattern_is_the_servers_blank_rule(doc, anon):
    """Required text must hold a character ``str.strip()`` keeps; the pattern says the same."""
    pattern = component(doc, "AppLogRequest")["properties"]["message"]["pattern"]
    log = {"app_name": "a", "instance_name": "i", "timestamp": "2026-03-31T10:00:00Z", "levelname": "INFO",
           "module": "m", "funcname": "f", "lineno": 1, "process": 1, "thread": 1}  # fmt: skip
    for text in (" ", "\x85", "\x1c\t\u3000", "x", " \ufeff "):
        response = anon.post("/api/logs/", json={**log, "message": text})
        blank = response.json().get("message") == ["This field may not be blank."]
        assert blank == (re.search(pattern, text) is None), (repr(text), response.text)
        assert blank == (not text.strip())


# -- round trips against the server --------------------------------------------------------------


@pytest.mark.parametrize("r", WRITABLE, ids=lambda r: r.name)
def test_required_fields_match_the_server(doc, api, r: Resource):
    """The fields the schema requires are exactly those a real empty POST reports as required."""
    path = f"/api/{r.name}/"
    required = set(body_schema(doc, path, "post").get("required", []))
    response = api.post(path, json={})
    assert response.status_code == 400, response.text
    missing = {k for k, v in response.json().items() if v == [REQUIRED_MSG]}
    assert missing == required
    assert_conforms(doc, response, path, "post")


def test_required_fields_of_special_writes_match_the_server(doc, api, anon):
    for path, client in (("/api/systemagents/heartbeat/", api), ("/api/ai-memory/record/", anon)):
        required = set(body_schema(doc, path, "post")["required"])
        response = client.post(path, json={})
        assert response.status_code == 400, (path, response.text)
        assert {k for k, v in response.json().items() if v == [REQUIRED_MSG]} == required
    required = body_schema(doc, "/api/namespaces/ensure/", "post")["required"]
    for key in required:
        body = {k: "schema-test" for k in required if k != key}
        response = api.post("/api/namespaces/ensure/", json=body)
        assert response.json() == {"error": f"{key} is required", "status": "error"}
        assert_conforms(doc, response, "/api/namespaces/ensure/", "post")


def test_real_responses_match_the_documented_schemas(doc, server, api, anon):
    tag = uuid.uuid4().hex[:8]
    checks: list[tuple[requests.Response, str, str]] = []

    def call(client, method, path, doc_path=None, **kw):
        response = client.request(method.upper(), path, **kw)
        checks.append((response, doc_path or path, method))
        return response

    run = call(api, "post", "/api/runs/", json={"run_number": 7340001, "start_time": "2026-03-31 10:00"})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]
    stf = call(api, "post", "/api/stf-files/", json={"stf_filename": f"{tag}.stf", "run": run_id})
    assert stf.status_code == 201, stf.text
    call(api, "patch", f"/api/stf-files/{stf.json()['file_id']}/", "/api/stf-files/{pk}/",
         json={"status": "done", "metadata": {"k": [1]}})  # fmt: skip
    call(anon, "get", "/api/stf-files/", params={"run_number": 7340001, "ordering": "-created_at"})
    call(anon, "get", "/api/stf-files/", params={"limit": 1})
    call(anon, "get", f"/api/runs/{run_id}/", "/api/runs/{pk}/")
    call(anon, "get", "/api/runs/999999/", "/api/runs/{pk}/")  # 404
    call(anon, "post", "/api/runs/", json={"run_number": 1, "start_time": "2026-03-31T10:00:00Z"})  # 401
    call(anon, "get", "/api/logs/", params={"min_level": "x"})  # 400 on a bad filter value
    log = {"app_name": "schema", "instance_name": tag, "timestamp": "2026-03-31T10:00:00", "level": 40,
           "levelname": "ERROR", "message": "boom", "module": "m", "funcname": "f", "lineno": 1, "process": 2,
           "thread": 2**40}  # fmt: skip
    assert call(anon, "post", "/api/logs/", json=log).status_code == 201
    call(anon, "get", "/api/logs/summary/")
    hb = call(api, "post", "/api/systemagents/heartbeat/",
              json={"instance_name": f"agent-{tag}", "agent_type": "TEST", "mq_connected": True})  # fmt: skip
    assert hb.status_code in (200, 201), hb.text
    call(anon, "get", "/api/systemagents/")
    for c in counters.COUNTERS:
        call(api, "post", f"/api/state/{c.endpoint}/", json={"workflow_name": "w"})
    call(api, "post", "/api/namespaces/ensure/", json={"name": f"ns-{tag}", "owner": "me"})
    call(anon, "get", f"/api/namespaces/ns-{tag}/", "/api/namespaces/{pk}/")
    call(anon, "post", "/api/ai-memory/record/", json={"username": tag, "content": "hello"})
    call(anon, "get", "/api/ai-memory/", params={"username": tag})
    call(anon, "get", "/health/")
    call(anon, "get", "/api/")
    call(api, "delete", f"/api/stf-files/{stf.json()['file_id']}/", "/api/stf-files/{pk}/")

    for response, path, method in checks:
        if response.status_code == 204:
            assert "204" in doc["paths"][path][method]["responses"]
            continue
        assert_conforms(doc, response, path, method)


def test_heartbeat_schema_reuses_the_catalog_without_choice_checks(doc):
    hb = component(doc, "HeartbeatRequest")["properties"]
    assert set(hb) == {"instance_name", *service.HEARTBEAT_DEFAULTS, *service.HEARTBEAT_OPTIONAL}
    assert "enum" not in hb["agent_type"] and hb["agent_type"]["maxLength"] == 20
    assert all(hb[k]["nullable"] for k in service.HEARTBEAT_DEFAULTS)  # null means "use the default"


def test_document_is_not_shared_mutable_state():
    first = schema_mod.document("http://a")
    first["paths"].clear()
    assert schema_mod.document("http://b")["paths"]
    assert copy.deepcopy(schema_mod.build_document())["paths"]
