"""The MCP endpoint's wire shape, pinned with plain ``requests`` (no SDK): one test per method and per
refusal the spec prescribes — status, headers and the exact JSON-RPC body."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from api_helpers import running, shared_server

module_server, server = shared_server()

VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")


def post(srv, body: Any, *, token: str | None = "", headers: dict[str, str] | None = None, path: str = "/mcp/",
         https: bool = False, raw: bytes | None = None) -> requests.Response:  # fmt: skip
    """POST one message (``raw``: these bytes instead of ``body`` as JSON) with the server's token."""
    hdrs = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {srv.token if token == '' else token}"
    hdrs.update(headers or {})
    data = raw if raw is not None else json.dumps(body).encode()
    base = srv.https_url if https else srv.http_url
    return requests.post(base + path, data=data, headers=hdrs, timeout=10, allow_redirects=False,
                         verify=str(srv.ca_bundle) if https else True)  # fmt: skip


def rpc(srv, method: str, params: Any = None, id_: Any = 1, **kw: Any) -> requests.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = params
    return post(srv, body, **kw)


def answer(resp: requests.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert "Mcp-Session-Id" not in resp.headers  # stateless: no session is ever issued
    return resp.json()


def result(resp: requests.Response, id_: Any = 1) -> Any:
    body = answer(resp)
    assert set(body) == {"jsonrpc", "id", "result"} and body["jsonrpc"] == "2.0" and body["id"] == id_, body
    return body["result"]


def error(resp: requests.Response, status: int, code: int, id_: Any = None) -> str:
    body = answer(resp, status)
    assert set(body) == {"jsonrpc", "id", "error"} and body["id"] == id_, body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


# -- methods -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_initialize_echoes_a_supported_version(server, version):
    got = result(rpc(server, "initialize", {"protocolVersion": version, "capabilities": {},
                                            "clientInfo": {"name": "t", "version": "1"}}))  # fmt: skip
    assert got["protocolVersion"] == version
    assert got["capabilities"] == {"tools": {"listChanged": False}}
    assert got["serverInfo"]["name"] == "swf-testbed" and got["serverInfo"]["title"] == "swf-lite"
    assert got["serverInfo"]["version"] and "swf_get_system_state" in got["instructions"]


@pytest.mark.parametrize("version", ["2024-11-05", "2026-07-28", "draft"])
def test_initialize_answers_its_own_version_to_any_other(server, version):
    assert result(rpc(server, "initialize", {"protocolVersion": version}))["protocolVersion"] == "2025-11-25"


def test_initialize_ignores_the_version_header(server):
    got = rpc(server, "initialize", {"protocolVersion": "2025-06-18"}, headers={"MCP-Protocol-Version": "2026-07-28"})
    assert result(got)["protocolVersion"] == "2025-06-18"


@pytest.mark.parametrize("params", [None, {}, {"protocolVersion": 20250618}])
def test_initialize_without_a_version_is_invalid_params(server, params):
    assert "protocolVersion" in error(rpc(server, "initialize", params, id_="a"), 200, -32602, "a")


@pytest.mark.parametrize("method", ["notifications/initialized", "notifications/cancelled", "notifications/other"])
def test_notifications_get_202_and_no_body(server, method):
    resp = post(server, {"jsonrpc": "2.0", "method": method})
    assert resp.status_code == 202 and resp.content == b""


def test_a_clients_response_gets_202(server):
    resp = post(server, {"jsonrpc": "2.0", "id": 7, "result": {}})
    assert resp.status_code == 202 and resp.content == b""


def test_ping_without_initialize(server):
    assert result(rpc(server, "ping", id_="p-1"), "p-1") == {}


def test_tools_list(server):
    tools = result(rpc(server, "tools/list", {"cursor": "ignored"}))
    assert set(tools) == {"tools"}  # all at once: no nextCursor
    by_name = {t["name"]: t for t in tools["tools"]}
    assert len(by_name) == 32
    for tool in tools["tools"]:
        assert {"name", "title", "description", "inputSchema", "annotations"} <= set(tool), tool["name"]
        schema = tool["inputSchema"]
        assert schema["type"] == "object" and isinstance(schema["properties"], dict)
        for name, prop in schema["properties"].items():
            assert prop["type"] in ("string", "integer", "number", "boolean", "object"), (tool["name"], name)
            assert prop["description"], (tool["name"], name)
        assert set(schema.get("required", [])) <= set(schema["properties"])
    hints = {n: (t["annotations"]["readOnlyHint"], t["annotations"]["destructiveHint"]) for n, t in by_name.items()}
    assert {n for n, (_, destructive) in hints.items() if destructive} == {"swf_end_execution", "swf_kill_agent"}
    assert hints["swf_list_runs"] == (True, False) and hints["swf_send_message"] == (False, False)
    logs = by_name["swf_list_logs"]["inputSchema"]["properties"]
    assert logs["start_time"] == {
        "type": "string",
        "format": "date-time",
        "description": logs["start_time"]["description"],
    }
    assert logs["app_name"]["maxLength"] == 100  # typed from the catalog
    assert by_name["swf_get_ai_memory"]["inputSchema"]["properties"]["turns"]["default"] == 20


def test_tools_call_result(server, api):
    assert api.post("/api/runs/", json={"run_number": 100010, "start_time": "2026-03-31T12:00:00Z"}).status_code == 201
    got = result(rpc(server, "tools/call", {"name": "swf_get_run", "arguments": {"run_number": 100010}}))
    assert set(got) == {"content", "structuredContent", "isError"} and got["isError"] is False
    assert got["content"][0]["type"] == "text" and json.loads(got["content"][0]["text"]) == got["structuredContent"]
    assert got["structuredContent"]["run_number"] == 100010
    assert got["structuredContent"]["monitor_urls"] == [
        {"title": "Run", "url": f"{server.http_url}/runs/100010/"},
        {"title": "STF files of this run", "url": f"{server.http_url}/stf-files/?run_number=100010"},
    ]


def test_tools_call_without_arguments_and_a_json_array_value(server):
    got = result(rpc(server, "tools/call", {"name": "swf_list_available_tools"}))
    assert "structuredContent" not in got and isinstance(json.loads(got["content"][0]["text"]), list)


def test_a_tool_error_is_a_result(server):
    got = result(rpc(server, "tools/call", {"name": "swf_get_run", "arguments": {"run_number": "x"}}))
    assert got["isError"] is True and set(got) == {"content", "isError"}
    assert got["content"][0]["text"].startswith("Invalid arguments for swf_get_run: run_number: expected an integer")


def test_links_follow_the_scheme_and_host_the_client_used(server):
    got = result(rpc(server, "tools/call", {"name": "swf_list_runs"}, https=True))
    assert got["structuredContent"]["monitor_urls"] == [{"title": "Runs", "url": f"{server.https_url}/runs/"}]


def test_unknown_tool_is_invalid_params(server):
    resp = rpc(server, "tools/call", {"name": "panda_list_tasks", "arguments": {}}, id_=3)
    assert error(resp, 200, -32602, 3) == "Unknown tool: panda_list_tasks"


@pytest.mark.parametrize("params", [{}, {"name": 5}, {"name": "swf_list_runs", "arguments": [1]}])
def test_bad_tools_call_params(server, params):
    assert error(rpc(server, "tools/call", params), 200, -32602, 1).startswith("Invalid params")


@pytest.mark.parametrize("method", ["resources/list", "prompts/list", "server/discover", "logging/setLevel"])
def test_other_methods_are_not_found(server, method):
    assert error(rpc(server, method, {}), 200, -32601, 1) == f"Method not found: {method}"


def test_params_must_be_an_object(server):
    error(rpc(server, "ping", [1, 2]), 200, -32602, 1)


# -- protocol faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff\xfe", b'{"jsonrpc": "2.0", "id": 1, "method": "ping"'])
def test_bad_json_is_a_parse_error(server, raw):
    assert error(post(server, None, raw=raw), 400, -32700).startswith("Parse error")


@pytest.mark.parametrize("body", [
    [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],  # a batch (removed in 2025-06-18)
    "ping", 42, None,
    {"id": 1, "method": "ping"},  # no jsonrpc
    {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    {"jsonrpc": "2.0", "id": None, "method": "ping"},
    {"jsonrpc": "2.0", "id": True, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
    {"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1},
])  # fmt: skip
def test_invalid_requests(server, body):
    error(post(server, body), 400, -32600)


def test_an_id_that_can_be_read_is_echoed(server):
    error(post(server, {"jsonrpc": "2.0", "id": "r-1", "method": 5}), 400, -32600, "r-1")


@pytest.mark.parametrize("version", ["2026-07-28", "2024-11-05", "garbage"])
def test_an_unsupported_version_header_is_a_400_the_fallback_understands(server, version):
    message = error(rpc(server, "server/discover", {}, headers={"MCP-Protocol-Version": version}), 400, -32600)
    assert message == f"Unsupported protocol version: {version} (supported: 2025-11-25, 2025-06-18, 2025-03-26)"
    assert error(rpc(server, "tools/list", headers={"MCP-Protocol-Version": version}), 400, -32600) == message


@pytest.mark.parametrize("version", VERSIONS)
def test_a_supported_version_header_passes(server, version):
    assert "tools" in result(rpc(server, "tools/list", headers={"MCP-Protocol-Version": version}))


def test_a_session_id_is_ignored(server):
    assert result(rpc(server, "ping", headers={"Mcp-Session-Id": "whatever"})) == {}


# -- HTTP: method, origin, authentication, media type, path, limits ------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH", "OPTIONS"])
def test_other_http_methods_get_405_before_authentication(server, method):
    resp = requests.request(method, server.http_url + "/mcp/", timeout=10, headers={"Accept": "text/event-stream"})
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    assert resp.json()["error"]["message"].startswith(f"Method Not Allowed: {method}")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz", "Token"])
def test_no_usable_credentials_get_401(server, header):
    headers = {"Authorization": header} if header else {}
    resp = post(server, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=None, headers=headers)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.json() == {"error": "Authorization required"}


def test_an_unknown_token_gets_401(server):
    resp = post(server, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token="f" * 40)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.json() == {"error": "Invalid token"}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Token", "TOKEN"])
def test_both_schemes_in_any_case(server, scheme):
    resp = post(server, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=None,
                headers={"Authorization": f"{scheme} {server.token}"})  # fmt: skip
    assert result(resp) == {}


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null", "file://",
                                    "ftp://localhost", "http://127.0.0.1:notaport"])  # fmt: skip
def test_a_foreign_origin_gets_403(server, origin):
    resp = rpc(server, "ping", headers={"Origin": origin})
    assert resp.status_code == 403 and "Origin not allowed" in resp.json()["error"]


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://127.0.0.1", "http://[::1]:8080"])
def test_a_loopback_origin_passes(server, origin):
    assert result(rpc(server, "ping", headers={"Origin": origin})) == {}


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_other_media_types_get_415(server, ctype):
    headers = {"Content-Type": ctype} if ctype else {"Content-Type": ""}
    resp = rpc(server, "ping", headers=headers)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == -32600


def test_a_charset_parameter_is_fine(server):
    assert result(rpc(server, "ping", headers={"Content-Type": "application/json; charset=utf-8"})) == {}


def test_the_path_without_a_slash_is_served_not_redirected(server):
    assert result(rpc(server, "ping", path="/mcp")) == {}
    assert requests.get(server.http_url + "/mcp", timeout=10, allow_redirects=False).status_code == 405


def test_the_host_check_applies(server):
    resp = rpc(server, "ping", headers={"Host": "evil.example"})
    assert resp.status_code == 400 and "Unknown host" in resp.json()["detail"]


def test_the_body_limit_applies(tmp_path):
    with running(tmp_path, max_body=1024) as small:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "swf_send_message", "arguments": {"message": "x" * 2000}}}  # fmt: skip
        resp = post(small, body)
        assert resp.status_code == 413 and "limit" in resp.json()["detail"]


def test_an_internal_failure_is_a_tool_error_not_a_crash(server, monkeypatch):
    from swf_lite.mcp import queries

    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(queries, "listing", broken)
    got = result(rpc(server, "tools/call", {"name": "swf_list_runs"}))
    assert got["isError"] is True and "RuntimeError: boom" in got["content"][0]["text"]
