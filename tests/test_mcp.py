"""The MCP endpoint driven by the official ``mcp`` Python SDK client over Streamable HTTP, against a
real server on port 0: initialize, list the tools, call every tool on data posted through the REST
API, and the errors the spec prescribes (bad arguments, unknown tool, wrong protocol version, no
token). The wire shapes themselves are pinned SDK-free in test_mcp_wire.py.

The SDK needs Python 3.10+; on 3.9 this module is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import requests

mcp = pytest.importorskip("mcp")

from api_helpers import running  # noqa: E402

NS = "alice-ns"
RUNNING = "stf_datataking-alice-0001"  # running, with messages and logs
ENDABLE = "stf_datataking-alice-0002"  # running; swf_end_execution ends it
DONE = "stf_datataking-alice-0000"  # completed two hours ago
RUN = 100010
STF = [f"swf.{RUN}.00000{i}.stf" for i in (1, 2, 3)]
TF = f"swf.{RUN}.000001.tf"
FLAT_SLICE = f"swf.{RUN}.000001_slice_002.tf"
TIMEOUT = 60  # seconds for one SDK conversation


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds") + "Z"


# -- the server and its data, posted through the REST API --------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory, engine):
    with engine.serve(tmp_path_factory.mktemp("data")) as server:
        yield server


@pytest.fixture(scope="module")
def testbed(srv) -> dict[str, Any]:
    """One testbed's worth of records, written through the REST API as agents write them."""
    api = requests.Session()
    api.headers["Authorization"] = f"Token {srv.token}"
    base = srv.http_url + "/api"
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def post(path: str, body: dict[str, Any], status: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        r = api.post(base + path, json=body, timeout=10)
        assert r.status_code in status, f"{path}: {r.status_code} {r.text}"
        return r.json()

    post("/namespaces/ensure/", {"name": NS, "owner": "alice", "description": "Alice's testbed"})
    agents = {
        "agent-manager-admin": {"agent_type": "agent_manager", "operational_state": "READY", "pid": 4242,
                                "hostname": "node1", "metadata": {"agents_running": True, "supervisord_healthy": True}},
        "daq-sim-1": {"agent_type": "DAQ_Simulator", "operational_state": "PROCESSING"},
        "data-agent-1": {"agent_type": "data", "operational_state": "READY", "total_stf_processed": 3},
        "doomed-agent": {"agent_type": "processing", "pid": 999, "hostname": "node2"},
        "silent-agent": {"agent_type": "fastmon"},
    }  # fmt: skip
    ids = {}
    for name, extra in agents.items():
        ids[name] = post("/systemagents/heartbeat/", {"instance_name": name, "namespace": NS, **extra})["id"]
    long_ago = {"last_heartbeat": iso(now - dt.timedelta(days=1))}
    stale = api.patch(f"{base}/systemagents/{ids['silent-agent']}/", json=long_ago, timeout=10)
    assert stale.status_code == 200, stale.text
    definition = post("/workflow-definitions/", {"workflow_name": "stf_datataking", "version": "1.0",
                                                 "workflow_type": "simulation", "definition": "daq -> data",
                                                 "created_by": "alice"})  # fmt: skip
    for execution_id, status, started, ended in (
        (DONE, "completed", now - dt.timedelta(hours=2), now - dt.timedelta(minutes=90)),
        (RUNNING, "running", now - dt.timedelta(minutes=30), None),
        (ENDABLE, "running", now - dt.timedelta(minutes=20), None),
    ):
        post("/workflow-executions/", {"execution_id": execution_id, "workflow_definition": definition["id"],
                                       "namespace": NS, "parameter_values": {"stf_count": 3}, "status": status,
                                       "start_time": iso(started), "end_time": iso(ended) if ended else None,
                                       "executed_by": "alice"})  # fmt: skip
    run = post("/runs/", {"run_number": RUN, "start_time": iso(now - dt.timedelta(hours=1)),
                          "end_time": iso(now - dt.timedelta(minutes=10)),
                          "run_conditions": {"beam": "on"}})  # fmt: skip
    files = [post("/stf-files/", {"stf_filename": name, "run": run["run_id"], "status": status,
                                  "file_size_bytes": 1000})
             for name, status in zip(STF, ("processed", "registered", "failed"))]  # fmt: skip
    post("/fastmon-files/", {"stf_file": STF[0], "tf_filename": TF, "tf_first": 1, "tf_last": 10, "tf_count": 10})
    post("/tf-slices/", {"fastmon_file": TF, "slice_id": 1, "tf_first": 1, "tf_last": 5, "tf_count": 5,
                         "run_number": RUN, "status": "queued"})  # fmt: skip
    post("/tf-slices/", {"tf_filename": FLAT_SLICE, "stf_filename": STF[0], "slice_id": 2, "tf_first": 6, "tf_last": 10,
                         "tf_count": 5, "run_number": RUN, "status": "completed", "assigned_worker": "w1"})  # fmt: skip
    for kind, content in (
        ("run_imminent", {"run_id": RUN}),
        ("start_run", {"run_id": RUN, "state": "run", "substate": "physics"}),
        ("stf_gen", {"run_id": RUN, "filename": STF[0], "padding": "x" * 300}),
        ("run_workflow_failed", {"error": "disk full on node2"}),
    ):
        post("/workflow-messages/", {"message_type": kind, "sender_agent": "daq-sim-1", "namespace": NS,
                                     "execution_id": RUNNING, "run_id": str(RUN),
                                     "message_content": {"msg_type": kind, "execution_id": RUNNING,
                                                         **content}})  # fmt: skip
    post("/system-state-events/", {"timestamp": iso(now), "run_number": RUN, "event_type": "state_change",
                                   "state": "run", "event_data": {}})  # fmt: skip
    log = {"app_name": "swf-daqsim", "instance_name": "daq-sim-1", "module": "daq", "funcname": "run", "lineno": 7,
           "process": 1, "thread": 2}  # fmt: skip
    error = post("/logs/", {**log, "timestamp": iso(now - dt.timedelta(minutes=5)), "level": 40, "levelname": "ERROR",
                            "message": "STF transfer failed",
                            "extra_data": {"execution_id": RUNNING, "namespace": NS}})  # fmt: skip
    post("/logs/", {**log, "timestamp": iso(now - dt.timedelta(minutes=4)), "level": 20, "levelname": "INFO",
                    "message": "heartbeat sent", "extra_data": {"execution_id": "someone-else"}})  # fmt: skip
    api.close()
    return {"agent_ids": ids, "definition": definition, "run": run, "files": files, "error_log": error["id"]}


# -- the SDK client ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def session(url: str, token: str | None, cafile: str | None = None) -> AsyncIterator[Any]:
    """An initialized ``mcp.ClientSession`` over Streamable HTTP (SDK 1.x or 2.x)."""
    from mcp.client import streamable_http

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify: Any = ssl.create_default_context(cafile=cafile) if cafile else True
    async with contextlib.AsyncExitStack() as stack:
        if hasattr(streamable_http, "streamablehttp_client"):  # SDK 1.x
            factory = lambda **kw: importlib.import_module("httpx").AsyncClient(  # noqa: E731
                **{**kw, "verify": verify, "trust_env": False})  # fmt: skip
            streams = await stack.enter_async_context(
                streamable_http.streamablehttp_client(url, headers=headers, httpx_client_factory=factory)
            )
        else:  # SDK 2.x: headers and TLS on the client it is given
            httpx = importlib.import_module("httpx2")
            client = await stack.enter_async_context(httpx.AsyncClient(headers=headers, verify=verify, trust_env=False,
                                                                       timeout=30))  # fmt: skip
            streams = await stack.enter_async_context(streamable_http.streamable_http_client(url, http_client=client))
        client_session = await stack.enter_async_context(mcp.ClientSession(streams[0], streams[1]))
        await client_session.initialize()
        yield client_session


def converse(srv, talk: Callable[[Any], Awaitable[Any]], *, https: bool = False, token: str | None = "") -> Any:
    """Run ``talk(session)`` in one SDK conversation with ``srv``'s /mcp/ (bounded in time)."""
    url = (srv.https_url if https else srv.http_url) + "/mcp/"

    async def main() -> Any:
        async with session(url, srv.token if token == "" else token, str(srv.ca_bundle) if https else None) as s:
            return await talk(s)

    return asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def wire(model: Any) -> dict[str, Any]:
    """An SDK result as its JSON-RPC wire form."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def call(srv, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """One tool call's result (wire form)."""

    async def talk(s: Any) -> Any:
        return wire(await s.call_tool(name, arguments or {}))

    return converse(srv, talk)


def value(result: dict[str, Any]) -> Any:
    """A successful result's value (its JSON text, which structuredContent mirrors for objects)."""
    assert result.get("isError") is False, result
    parsed = json.loads(result["content"][0]["text"])
    if isinstance(parsed, dict):
        assert result["structuredContent"] == parsed
    return parsed


def tool_error(result: dict[str, Any]) -> str:
    assert result.get("isError") is True, result
    return result["content"][0]["text"]


# -- handshake and discovery -------------------------------------------------------------------------


def test_initialize_and_list_tools_over_both_ports(srv):
    async def talk(s: Any) -> Any:
        return wire(await s.list_tools()), wire(await s.send_ping())

    for https in (False, True):
        tools, pong = converse(srv, talk, https=https)
        names = {t["name"] for t in tools["tools"]}
        assert {"swf_get_system_state", "swf_list_agents", "swf_send_message", "swf_get_workflow_monitor",
                "swf_list_tf_slices", "swf_kill_agent", "get_server_instructions"} <= names  # fmt: skip
        assert len(names) == 32
        assert pong == {} or pong.get("_meta") is None
    by_name = {t["name"]: t for t in tools["tools"]}
    run = by_name["swf_get_run"]["inputSchema"]
    assert run["required"] == ["run_number"] and run["properties"]["run_number"]["type"] == "integer"
    assert by_name["swf_list_agents"]["annotations"]["readOnlyHint"] is True
    assert by_name["swf_kill_agent"]["annotations"]["destructiveHint"] is True


def test_the_sdk_sees_server_info_and_instructions(srv):
    from mcp.client import streamable_http

    async def main() -> Any:
        url = srv.http_url + "/mcp"  # no trailing slash: served as /mcp/, never redirected
        headers = {"Authorization": f"Token {srv.token}"}  # the REST scheme works too
        async with contextlib.AsyncExitStack() as stack:
            if hasattr(streamable_http, "streamablehttp_client"):
                streams = await stack.enter_async_context(streamable_http.streamablehttp_client(url, headers=headers))
            else:
                client = importlib.import_module("httpx2").AsyncClient(headers=headers, trust_env=False)
                await stack.enter_async_context(client)
                streams = await stack.enter_async_context(
                    streamable_http.streamable_http_client(url, http_client=client)
                )
            s = await stack.enter_async_context(mcp.ClientSession(streams[0], streams[1]))
            return wire(await s.initialize())

    result = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert result["serverInfo"]["name"] == "swf-testbed" and result["serverInfo"]["title"] == "swf-lite"
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert "Always filter list calls" in result["instructions"]
    assert result["protocolVersion"] in ("2025-11-25", "2025-06-18", "2025-03-26")


def test_a_dual_era_client_falls_back_to_initialize(srv):
    """SDK 2.x's default client probes the stateless 2026-07-28 revision first (``server/discover``);
    swf-lite answers 400 -32600, and the client falls back to the initialize handshake."""
    if not hasattr(mcp, "Client") or not hasattr(importlib.import_module("mcp.client.streamable_http"),
                                                  "streamable_http_client"):  # fmt: skip
        pytest.skip("this SDK has no auto-negotiating Client")
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> Any:
        try:
            httpx = importlib.import_module("httpx2")
        except ImportError:
            httpx = importlib.import_module("httpx")
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {srv.token}"}, trust_env=False) as client:
            async with mcp.Client(streamable_http_client(srv.http_url + "/mcp/", http_client=client)) as c:
                return c.protocol_version, wire(await c.call_tool("swf_list_runs", {}))

    version, result = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert version == "2025-11-25"
    assert value(result)["items"] == [] or isinstance(value(result)["items"], list)


def test_discovery_tools(srv):
    listed = value(call(srv, "swf_list_available_tools"))
    assert len(listed) == 32 and {"name", "description", "parameters"} <= set(listed[0])
    agents = next(t for t in listed if t["name"] == "swf_list_agents")
    assert agents["parameters"] == ["namespace", "agent_type", "status", "execution_id", "start_time", "end_time"]
    guide = call(srv, "get_server_instructions")
    assert guide["isError"] is False and "swf_get_system_state" in guide["content"][0]["text"]
    assert "structuredContent" not in guide


# -- every tool on the data ----------------------------------------------------------------------------


def test_agents(srv, testbed):
    listed = value(call(srv, "swf_list_agents", {"namespace": NS}))
    names = [a["name"] for a in listed["items"]]
    assert "silent-agent" not in names and {"daq-sim-1", "data-agent-1", "agent-manager-admin"} <= set(names)
    assert set(listed["items"][0]) >= {"name", "agent_type", "status", "operational_state", "namespace",
                                       "last_heartbeat", "workflow_enabled", "total_stf_processed"}  # fmt: skip
    assert listed["monitor_urls"] == [{"title": "Agents", "url": f"{srv.http_url}/agents/?namespace={NS}"}]
    everyone = value(call(srv, "swf_list_agents", {"status": "all"}))
    silent = next(a for a in everyone["items"] if a["name"] == "silent-agent")
    assert silent["status"] == "EXITED" and silent["operational_state"] == "EXITED"  # the sweep ran first
    exited = value(call(srv, "swf_list_agents", {"status": "exited"}))  # any case
    assert "silent-agent" in [a["name"] for a in exited["items"]]
    senders = value(call(srv, "swf_list_agents", {"execution_id": RUNNING}))
    assert [a["name"] for a in senders["items"]] == ["daq-sim-1"]
    one = value(call(srv, "swf_get_agent", {"name": "data-agent-1"}))
    assert one["agent_type"] == "data" and one["total_stf_processed"] == 3 and "operational_state" not in one
    assert one["monitor_urls"][0]["url"] == f"{srv.http_url}/agents/{testbed['agent_ids']['data-agent-1']}/"
    assert requests.get(one["monitor_urls"][0]["url"], timeout=10).status_code == 200  # the page exists
    assert "swf_list_agents" in value(call(srv, "swf_get_agent", {"name": "nobody"}))["error"]


def test_namespaces(srv, testbed):
    listed = value(call(srv, "swf_list_namespaces"))
    assert listed["items"] == [{"name": NS, "owner": "alice", "description": "Alice's testbed"}]
    one = value(call(srv, "swf_get_namespace", {"namespace": NS}))
    assert one["owner"] == "alice" and one["agent_count"] == 5 and one["execution_count"] == 3
    assert one["active_users"] == ["alice"] and one["message_count"] >= 4
    assert set(one["time_range"]) == {"start", "end"}
    unknown = value(call(srv, "swf_get_namespace", {"namespace": "nowhere"}))
    assert unknown["owner"] is None and unknown["agent_count"] == 0


def test_workflow_definitions_and_executions(srv, testbed):
    defs = value(call(srv, "swf_list_workflow_definitions"))
    assert defs["items"][0]["workflow_name"] == "stf_datataking" and defs["items"][0]["execution_count"] == 3
    listed = value(call(srv, "swf_list_workflow_executions", {"namespace": NS}))
    assert [e["execution_id"] for e in listed["items"]][-1] == DONE  # newest first
    assert listed["items"][0]["workflow_name"] == "stf_datataking"
    running = value(call(srv, "swf_list_workflow_executions", {"status": "RUNNING"}))  # any case
    assert {e["execution_id"] for e in running["items"]} >= {RUNNING}
    assert DONE not in {e["execution_id"] for e in running["items"]}
    now_running = value(call(srv, "swf_list_workflow_executions", {"currently_running": True}))
    assert DONE not in {e["execution_id"] for e in now_running["items"]}
    one = value(call(srv, "swf_get_workflow_execution", {"execution_id": RUNNING}))
    assert one["parameter_values"] == {"stf_count": 3} and "performance_metrics" in one
    assert one["monitor_urls"][0]["url"].endswith(f"/workflow-executions/{RUNNING}/")
    assert "not found" in value(call(srv, "swf_get_workflow_execution", {"execution_id": "nope"}))["error"]


def test_workflow_monitor(srv, testbed):
    watched = value(call(srv, "swf_get_workflow_monitor", {"execution_id": RUNNING}))
    assert watched["phase"] == "running" and watched["run_id"] == RUN and watched["stf_count"] == 3
    assert [e["type"] for e in watched["events"]] == ["run_imminent", "start_run"]
    assert watched["errors"][0]["error"] == "disk full on node2"
    assert {"source": "log", "error": "STF transfer failed"}.items() <= watched["errors"][-1].items()
    assert watched["duration_seconds"] > 0
    monitors = value(call(srv, "swf_list_workflow_monitors"))
    assert {m["execution_id"]: m["stf_count"] for m in monitors["items"]}[RUNNING] == 3


def test_messages(srv, testbed):
    listed = value(call(srv, "swf_list_messages", {"execution_id": RUNNING}))
    assert listed["total_count"] == 4 and listed["has_more"] is False
    assert listed["items"][0]["message_type"] == "run_workflow_failed"  # newest first
    stf_gen = next(m for m in listed["items"] if m["message_type"] == "stf_gen")
    assert len(stf_gen["payload_summary"]) == 200 and stf_gen["run_id"] == str(RUN)
    assert listed["monitor_urls"][0]["url"] == f"{srv.http_url}/messages/?execution_id={RUNNING}"
    assert value(call(srv, "swf_list_messages", {"agent": "nobody"}))["items"] == []


def test_runs_and_files(srv, testbed):
    runs = value(call(srv, "swf_list_runs"))
    assert runs["items"] == [{"run_number": RUN, "start_time": testbed["run"]["start_time"],
                              "end_time": testbed["run"]["end_time"], "duration_seconds": 3000.0,
                              "stf_file_count": 3}]  # fmt: skip
    run = value(call(srv, "swf_get_run", {"run_number": RUN}))
    assert run["file_stats"] == {"registered": 1, "processing": 0, "processed": 1, "failed": 1, "done": 0}
    assert run["total_stf_files"] == 3 and run["run_conditions"] == {"beam": "on"}
    assert run["monitor_urls"][0]["url"] == f"{srv.http_url}/runs/{RUN}/"
    assert "swf_list_runs" in value(call(srv, "swf_get_run", {"run_number": "99"}))["error"]  # "99": lenient int
    files = value(call(srv, "swf_list_stf_files", {"run_number": RUN}))
    assert files["total_count"] == 3 and {f["run_number"] for f in files["items"]} == {RUN}
    assert {f["stf_filename"]: f["tf_file_count"] for f in files["items"]} == {STF[0]: 1, STF[1]: 0, STF[2]: 0}
    processed = value(call(srv, "swf_list_stf_files", {"status": "PROCESSED"}))
    assert [f["stf_filename"] for f in processed["items"]] == [STF[0]]
    by_name = value(call(srv, "swf_get_stf_file", {"stf_filename": STF[0]}))
    by_id = value(call(srv, "swf_get_stf_file", {"file_id": testbed["files"][0]["file_id"]}))
    assert by_name == by_id and by_name["run_number"] == RUN and by_name["file_size_bytes"] == 1000
    assert "neither" not in tool_error(call(srv, "swf_get_stf_file", {})) and "file_id" in tool_error(
        call(srv, "swf_get_stf_file", {})
    )


def test_tf_slices(srv, testbed):
    listed = value(call(srv, "swf_list_tf_slices", {"run_number": RUN}))
    assert listed["total_count"] == 2
    flat = next(s for s in listed["items"] if s["slice_id"] == 2)
    assert flat["fastmon_file"] == TF and flat["fastmon_file_id"] is not None and flat["tf_filename"] == FLAT_SLICE
    by_parent = value(call(srv, "swf_list_tf_slices", {"tf_filename": TF}))
    assert sorted(s["slice_id"] for s in by_parent["items"]) == [1, 2]  # own name or the parent's
    done = value(call(srv, "swf_list_tf_slices", {"status": "Completed"}))
    assert [s["slice_id"] for s in done["items"]] == [2]
    one = value(call(srv, "swf_get_tf_slice", {"tf_filename": TF, "slice_id": 2}))
    assert one["tf_filename"] == FLAT_SLICE and one["assigned_worker"] == "w1" and one["retries"] == 0
    assert "swf_list_tf_slices" in value(call(srv, "swf_get_tf_slice", {"tf_filename": TF, "slice_id": 9}))["error"]


def test_logs(srv, testbed):
    errors = value(call(srv, "swf_list_logs", {"level": "error"}))
    assert [e["message"] for e in errors["items"]] == ["STF transfer failed"]
    assert errors["items"][0]["level"] == "ERROR"
    mine = value(call(srv, "swf_list_logs", {"execution_id": RUNNING}))
    assert [e["message"] for e in mine["items"]] == ["STF transfer failed"] and mine["total_count"] == 1
    found = value(call(srv, "swf_list_logs", {"search": "HEARTBEAT"}))  # case-insensitive, message only
    assert [e["message"] for e in found["items"]] == ["heartbeat sent"]
    entry = value(call(srv, "swf_get_log_entry", {"log_id": testbed["error_log"]}))
    assert entry["process"] == 1 and entry["thread"] == 2 and entry["extra_data"]["namespace"] == NS
    assert "level" in tool_error(call(srv, "swf_list_logs", {"level": "LOUD"}))


def test_ai_memory(srv):
    stored = value(call(srv, "swf_record_ai_memory", {"username": "admin", "session_id": "s1", "role": "user",
                                                       "content": "hello", "namespace": NS}))  # fmt: skip
    assert stored["success"] is True and stored["content_length"] == 5
    assert value(call(srv, "swf_record_ai_memory", {"username": "admin", "session_id": "s1", "role": "robot",
                                                     "content": "x"}))["success"] is False  # fmt: skip
    recalled = value(call(srv, "swf_get_ai_memory", {"turns": 1}))  # the token's user by default
    assert recalled["username"] == "admin" and recalled["items"][-1]["content"] == "hello"
    assert recalled["items"][-1]["post_id"] == NS and recalled["items"][-1]["root_id"] == ""


def test_system_state_and_testbed_status(srv, testbed):
    state = value(call(srv, "swf_get_system_state"))
    assert state["user_context"]["username"] == "admin" and state["user_context"]["namespace"] == NS
    assert state["agent_manager"]["status"] == "healthy"
    assert state["workflow_runner"]["name"] == "daq-sim-1" and state["ready_to_run"] is True
    assert state["errors_last_hour"] == 1 and state["agents"]["total"] == 5
    assert state["run_states"][0]["run_number"] == RUN and state["run_states"][0]["phase"] == "physics"
    assert state["recent_events"][0]["event_type"] == "state_change"
    assert state["persistent_state"]["last_run_number"] >= 0
    manager = value(call(srv, "swf_check_agent_manager"))
    assert manager["alive"] is True and manager["supervisord_healthy"] is True
    assert manager["control_queue"] == "/queue/agent_control.admin"
    assert value(call(srv, "swf_check_agent_manager", {"username": "bob"}))["alive"] is False
    status = value(call(srv, "swf_get_testbed_status"))
    assert status["agent_manager"]["alive"] is True and status["summary"]["running"] >= 2
    assert "agent-manager-admin" not in [a["name"] for a in status["agents"]]
    assert status["running_workflows"] >= 1 and status["ready"] is False and "workflow" in status["note"]


def test_testbed_config_from_the_environment(srv, testbed, tmp_path, monkeypatch):
    config = tmp_path / "mine.toml"
    config.write_text('[testbed]\nnamespace = "cfg-ns"\n[workflow]\nname = "wf"\nconfig = "fast"\nrealtime = false\n'
                      "[parameters]\nstf_count = 7\n")  # fmt: skip
    monkeypatch.setenv("SWF_TESTBED_CONFIG", str(config))
    context = value(call(srv, "swf_get_system_state"))["user_context"]
    assert context == {"username": "admin", "namespace": "cfg-ns", "workflow_name": "wf", "config": "fast",
                       "config_file": str(config), "config_source": "SWF_TESTBED_CONFIG"}  # fmt: skip
    started = value(call(srv, "swf_start_workflow", {"physics_period_count": 2}))
    assert started["workflow_name"] == "wf" and started["namespace"] == "cfg-ns" and started["realtime"] is False
    assert started["params"] == {"stf_count": 7, "physics_period_count": 2, "namespace": "cfg-ns"}
    sent = value(call(srv, "swf_send_message", {"message": "hi"}))
    assert sent["namespace"] == "cfg-ns"


# -- the acting tools ----------------------------------------------------------------------------------


def open_stream(srv) -> Any:
    """The live message stream, past its first (connected) frame."""
    r = requests.get(srv.http_url + "/api/messages/stream/", headers={"Authorization": f"Token {srv.token}"},
                     stream=True, timeout=(5, 15))  # fmt: skip
    assert r.status_code == 200
    lines = r.iter_lines(decode_unicode=True, chunk_size=1)
    assert next_event(lines, skip=("heartbeat",))[0] == "connected"
    return r, lines


def next_event(lines: Any, skip: tuple[str, ...] = ("heartbeat", "connected")) -> tuple[str, dict[str, Any]]:
    """The next frame (event name, data) whose name is not in ``skip``."""
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event not in skip:
            return event, json.loads(line[len("data: ") :])
    raise AssertionError("stream ended")


def test_send_message_is_stored_and_streamed_like_a_rest_post(srv, testbed):
    response, lines = open_stream(srv)
    try:
        sent = value(call(srv, "swf_send_message", {"message": "beam is back", "metadata": {"k": 1}}))
        event, data = next_event(lines)
    finally:
        response.close()
    assert sent["success"] is True and sent["sender"] == "admin-personal-agent"
    assert event == "announcement" and data["message"] == "beam is back" and data["metadata"] == {"k": 1}
    assert data["source"] == "mcp_send_message" and data["queue_name"] == "/topic/epictopic"
    stored = requests.get(f"{srv.http_url}/api/workflow-messages/{sent['message_id']}/", timeout=10).json()
    assert stored["message_content"] == sent["content"] and stored["sender_agent"] == "admin-personal-agent"
    test_kind = value(call(srv, "swf_send_message", {"message": "t", "message_type": "test"}))
    assert test_kind["namespace"] is None


def test_start_and_stop_workflow(srv, testbed):
    started = value(call(srv, "swf_start_workflow", {"namespace": NS, "stf_count": 5, "realtime": "false"}))
    assert started["success"] is True and started["forwarded"] is False and "broker" in started["note"]
    assert started["workflow_name"] == "stf_datataking" and started["config"] == "fast_processing_default"
    stored = requests.get(f"{srv.http_url}/api/workflow-messages/{started['message_id']}/", timeout=10).json()
    assert stored["queue_name"] == "/queue/workflow_control" and stored["message_type"] == "run_workflow"
    assert stored["message_content"]["params"] == {"stf_count": 5, "namespace": NS}
    assert stored["message_content"]["realtime"] is False
    stopped = value(call(srv, "swf_stop_workflow", {"execution_id": RUNNING}))
    assert stopped["success"] is True and stopped["namespace"] == NS
    message = requests.get(f"{srv.http_url}/api/workflow-messages/{stopped['message_id']}/", timeout=10).json()
    assert message["message_content"]["msg_type"] == "stop_workflow" and message["execution_id"] == RUNNING
    assert value(call(srv, "swf_stop_workflow", {"execution_id": DONE}))["success"] is False


def test_end_execution(srv, testbed):
    ended = value(call(srv, "swf_end_execution", {"execution_id": ENDABLE}))
    assert ended["success"] is True and ended["old_status"] == "running" and ended["new_status"] == "terminated"
    assert ended["end_time"] is not None
    row = requests.get(f"{srv.http_url}/api/workflow-executions/{ENDABLE}/", timeout=10).json()
    assert row["status"] == "terminated"
    again = value(call(srv, "swf_end_execution", {"execution_id": ENDABLE}))
    assert again["success"] is False and "not running" in again["error"]


def test_kill_agent_marks_it_exited_and_kills_nothing(srv, testbed):
    killed = value(call(srv, "swf_kill_agent", {"name": "doomed-agent"}))
    assert killed["success"] is True and killed["killed"] is False and killed["pid"] == 999
    assert killed["new_state"] == "EXITED" and "node2" in killed["kill_error"]
    row = requests.get(f"{srv.http_url}/api/systemagents/{testbed['agent_ids']['doomed-agent']}/", timeout=10).json()
    assert row["status"] == "EXITED" and row["operational_state"] == "EXITED"
    assert value(call(srv, "swf_kill_agent", {"name": "ghost"}))["success"] is False


@pytest.mark.parametrize("name", ["swf_start_user_testbed", "swf_stop_user_testbed"])
def test_process_manager_tools_say_what_to_run_instead(srv, name):
    text = tool_error(call(srv, name))
    assert "agent manager" in text and "testbed run" in text


# -- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "arguments", "field"), [
    ("swf_get_run", {"run_number": "abc"}, "run_number"),
    ("swf_get_run", {}, "run_number"),
    ("swf_list_logs", {"start_time": "yesterday"}, "start_time"),
    ("swf_list_agents", {"colour": "red"}, "colour"),
    ("swf_list_workflow_executions", {"currently_running": "maybe"}, "currently_running"),
    ("swf_send_message", {"message": "x", "metadata": [1]}, "metadata"),
    ("swf_send_message", {"message": "x", "message_type": "t" * 51}, "message_type"),
])  # fmt: skip
def test_bad_arguments_are_tool_errors_naming_the_field(srv, name, arguments, field):
    text = tool_error(call(srv, name, arguments))
    assert field in text and name in text


def test_unknown_tool_is_a_protocol_error(srv):
    async def talk(s: Any) -> Any:
        with pytest.raises(Exception) as raised:
            await s.call_tool("swf_list_pandas", {})
        return raised.value

    error = converse(srv, talk)
    assert error.error.code == -32602 and "Unknown tool: swf_list_pandas" in error.error.message


def test_missing_or_wrong_token_is_refused(srv):
    for token in (None, "0" * 40):
        started = time.monotonic()
        with pytest.raises(BaseException):  # noqa: B017 - the SDKs report an HTTP 401 differently
            converse(srv, lambda s: s.send_ping(), token=token)
        assert time.monotonic() - started < TIMEOUT


def test_the_body_limit_applies(tmp_path):
    with running(tmp_path, max_body=2048) as small:
        big = {"message": "x" * 4096}
        result = None
        with pytest.raises(BaseException):  # noqa: B017 - the SDK reports the 413 as an error
            result = call(small, "swf_send_message", big)
        assert result is None
        assert value(call(small, "swf_list_runs"))["items"] == []


def test_the_mcp_tools_load_at_the_first_mcp_request_not_at_start(tmp_path):
    """A server that is never asked over MCP never imports its tools (start time and memory)."""
    script = f"""
import sys, requests
from swf_lite.config import Settings
from swf_lite.server import SwfLiteServer
srv = SwfLiteServer(Settings(http_port=0, https_port=0, data_dir={str(tmp_path / "data")!r}, quiet=True)).start()
try:
    print("swf_lite.mcp.tools" in sys.modules)
    r = requests.post(srv.http_url + "/mcp/", json={{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}},
                      headers={{"Authorization": "Bearer " + srv.token, "MCP-Protocol-Version": "2025-11-25"}})
    print(r.status_code, len(r.json()["result"]["tools"]) > 10, "swf_lite.mcp.tools" in sys.modules)
finally:
    srv.stop()
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["False", "200 True True"], out.stdout + out.stderr
