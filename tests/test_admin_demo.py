"""Admin API (/_swf_lite/), --demo data and the demo-agents driver, over real sockets."""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from api_helpers import ok, shared_server

from swf_lite import demo, seeding
from swf_lite.api.control import mask_url
from swf_lite.pytest_plugin import ServerOptions, SubprocessServer
from swf_lite.server import SwfLiteServer

from conftest import Client, make_settings

DEMO = json.loads(seeding.demo_path().read_text(encoding="utf-8"))
RUN = {"run_number": 100010, "start_time": "2026-03-31T12:00:00Z"}


module_server, server = shared_server()  # one server for the module, emptied before each test


def next_run(api) -> int:
    return api.post("/api/state/next-run-number/").json()["run_number"]


# -- admin API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("POST", "/_swf_lite/reset/"), ("POST", "/_swf_lite/seed/"),
                                          ("GET", "/_swf_lite/config/"), ("POST", "/_swf_lite/reset")])  # fmt: skip
def test_admin_needs_a_token(anon, method, path):
    resp = anon.request(method, path, json={})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Token"
    assert resp.json() == {"detail": "Authentication credentials were not provided."}


def test_admin_rejects_a_wrong_token(server):
    bad = Client(server.http_url, "0" * 40, True)
    assert bad.post("/_swf_lite/reset/").json() == {"detail": "Invalid token."}
    assert server.store is not None


@pytest.mark.parametrize("path", ["/_swf_lite/reset/", "/_swf_lite/reset", "/_swf_lite/seed/", "/_swf_lite/seed"])
def test_get_on_post_only_endpoints_is_400(api, anon, path):
    for client in (api, anon):
        resp = client.get(path)
        assert resp.status_code == 400
        assert resp.headers["Content-Type"].startswith("application/json")
        assert "POST" in resp.json()["detail"]


def test_other_methods_are_405_json(api):
    resp = api.put("/_swf_lite/reset/", json={})
    assert resp.status_code == 405 and resp.json() == {"detail": 'Method "PUT" not allowed.'}
    assert api.post("/_swf_lite/config/", json={}).status_code == 405


def test_reset_empties_data_and_restarts_counters(server, api, anon):
    assert next_run(api) == 100010 and next_run(api) == 100011
    assert api.post("/api/runs/", json=RUN).status_code == 201
    assert api.post("/api/systemagents/heartbeat/", json={"instance_name": "a"}).status_code == 201
    resp = api.post("/_swf_lite/reset/")  # no body at all
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "success"
    assert body["counters"] == {"next_run_number": 100010, "next_agent_id": 1, "next_workflow_execution_id": 1}
    assert anon.get("/api/runs/").json() == [] and anon.get("/api/systemagents/").json() == []
    assert next_run(api) == 100010
    assert api.post("/api/state/next-agent-id/").json()["agent_id"] == 1
    assert api.post("/api/runs/", json=RUN).json()["run_id"] == 1  # ids restart too


def test_reset_sets_given_counters(api):
    resp = api.post("/_swf_lite/reset", json={"counters": {"next_run_number": 200000, "next_agent_id": 50,
                                                            "next-workflow-execution-id": 7}})  # fmt: skip
    assert resp.status_code == 200
    assert resp.json()["counters"] == {"next_run_number": 200000, "next_agent_id": 50, "next_workflow_execution_id": 7}
    assert next_run(api) == 200000 and next_run(api) == 200001
    assert api.post("/api/state/next-agent-id/").json()["agent_id"] == 50
    assert api.post("/api/state/next-workflow-execution-id/").json()["sequence"] == 7


@pytest.mark.parametrize("counters", [{"run_number": 5}, {"next_run_number": "abc"}, {"next_run_number": 0},
                                      {"next_run_number": True}, ["next_run_number"]])  # fmt: skip
def test_reset_with_bad_counters_is_400_and_changes_nothing(api, counters):
    api.post("/api/runs/", json=RUN)
    resp = api.post("/_swf_lite/reset/", json={"counters": counters})
    assert resp.status_code == 400 and list(resp.json()) == ["counters"]
    assert len(api.get("/api/runs/").json()) == 1


def test_reset_runs_the_reset_hooks(server, api):
    calls = []
    hook = lambda: calls.append("cleared")  # noqa: E731
    server.ctx.on_reset.append(hook)
    try:
        api.post("/_swf_lite/reset/")
    finally:
        server.ctx.on_reset.remove(hook)
    assert calls == ["cleared"]


def test_seed_loads_records_and_counters(api, anon):
    body = {
        "runs": [RUN],
        "stf-files": [{"run": {"run_number": 100010}, "stf_filename": "swf.100010.000001.stf", "status": "processed"}],
        "logs": [{"app_name": "a", "instance_name": "i", "timestamp": "2026-03-31T12:00:00Z", "levelname": "INFO",
                  "message": "hello", "module": "m", "funcname": "f", "lineno": 1, "process": 1, "thread": 1}],
        "counters": {"next_run_number": 100011},
    }  # fmt: skip
    resp = api.post("/_swf_lite/seed/", json=body)
    assert resp.status_code == 200
    assert resp.json()["loaded"] == {"runs": 1, "stf-files": 1, "logs": 1}
    (stf,) = anon.get("/api/stf-files/").json()
    assert stf["run"] == anon.get("/api/runs/").json()[0]["run_id"] and stf["status"] == "processed"
    assert anon.get("/api/logs/").json()[0]["timestamp"] == "2026-03-31T12:00:00.000000Z"
    assert next_run(api) == 100011


@pytest.mark.parametrize("body, words", [
    ({"nothing": []}, "unknown resource 'nothing'"),
    ({"runs": {"run_number": 1}}, "runs: expected a list"),
    ({"runs": [{"run_number": 1}]}, "runs[0]"),
    ({"runs": [RUN, RUN]}, "runs[1]"),  # the second is a duplicate: nothing of the body stays
    ({"runs": [RUN], "counters": {"next_run_number": -1}}, "next_run_number"),
])  # fmt: skip
def test_seed_is_all_or_nothing(api, body, words):
    resp = api.post("/_swf_lite/seed/", json=body)
    assert resp.status_code == 400
    assert words in resp.json()["detail"]
    assert api.get("/api/runs/").json() == []


def test_seed_body_must_be_an_object(api):
    resp = api.post("/_swf_lite/seed/", data="[]", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json() == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}


def test_config_shows_settings_without_secrets(server, api):
    resp = api.get("/_swf_lite/config")
    assert resp.status_code == 200
    body = resp.json()
    assert body["settings"]["data_dir"] == str(server.settings.data_dir)
    assert body["settings"]["tls"] is True and body["settings"]["max_body"] == server.settings.max_body
    assert body["settings"]["db_url"].startswith(("sqlite:///", "postgresql://"))
    assert body["settings"]["db_url"].split(":", 1)[0] == server.settings.db_url.split(":", 1)[0]
    assert server.token not in resp.text
    assert "version" in body
    engine = server.store.dialect.name
    assert body["database"]["engine"] == engine and body["database"]["pool"] == server.settings.db_pool
    assert (body["database"]["change_feed"] is not None) == (engine == "postgresql")
    assert "bridge" not in body  # no --stomp


def test_database_passwords_are_masked():
    assert mask_url("postgresql://swf:s3cret@db.example:5432/swf") == "postgresql://swf:***@db.example:5432/swf"
    assert mask_url("sqlite:////tmp/x/swf-lite.sqlite3") == "sqlite:////tmp/x/swf-lite.sqlite3"


# -- --demo --------------------------------------------------------------------------------------


def counts(http_url: str) -> dict[str, int]:
    return {
        name: len(requests.get(f"{http_url}/api/{name}/", timeout=10).json()) for name in DEMO if name != "counters"
    }


def expected_counts() -> dict[str, int]:
    return {name: len(records) for name, records in DEMO.items() if name != "counters"}


def test_demo_loads_every_record(tmp_path, engine):
    with engine.serve(tmp_path / "data", demo=True) as srv:
        assert counts(srv.http_url) == expected_counts()
        api = Client(srv.http_url, srv.token, True)
        assert next_run(api) == DEMO["counters"]["next_run_number"]
        runs = requests.get(f"{srv.http_url}/api/runs/", timeout=10).json()
        assert [r["run_number"] for r in runs] == [r["run_number"] for r in DEMO["runs"]]


def test_demo_goes_only_into_an_empty_store(tmp_path, caplog, engine):
    data = tmp_path / "data"
    first = engine.settings(data)  # the second start opens the same database
    srv = SwfLiteServer(first).start()
    api = Client(srv.http_url, srv.token, True)
    assert api.post("/api/runs/", json={"run_number": 1, "start_time": "2026-03-31T12:00:00Z"}).status_code == 201
    srv.stop()
    with caplog.at_level(logging.WARNING, logger="swf_lite.seeding"):
        srv = SwfLiteServer(make_settings(data, demo=True, db=first.db)).start()
    try:
        assert [r["run_number"] for r in requests.get(f"{srv.http_url}/api/runs/", timeout=10).json()] == [1]
        (record,) = [r for r in caplog.records if r.name == "swf_lite.seeding"]
        assert "--demo skipped" in record.getMessage() and "already has data" in record.getMessage()
    finally:
        srv.stop()
        engine.release(first)


def test_demo_restart_keeps_the_data_as_it_is(tmp_path, engine):
    data = tmp_path / "data"
    first = engine.settings(data, demo=True)
    SwfLiteServer(first).start().stop()
    srv = SwfLiteServer(make_settings(data, demo=True, db=first.db)).start()  # duplicates if it re-loaded
    try:
        assert counts(srv.http_url) == expected_counts()
    finally:
        srv.stop()
        engine.release(first)


def test_seed_file_on_start(tmp_path, engine):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"runs": [RUN], "counters": {"next_run_number": 100020}}))
    with engine.serve(tmp_path / "data", seed=seed) as srv:
        assert len(requests.get(f"{srv.http_url}/api/runs/", timeout=10).json()) == 1
        assert next_run(Client(srv.http_url, srv.token, True)) == 100020


def test_python_m_swf_lite_demo_end_to_end(tmp_path):
    """The real command line: ``python -m swf_lite --demo --quiet`` on port 0, then the lists."""
    srv = SubprocessServer(tmp_path / "data", ServerOptions(settings={"demo": True})).start()
    try:
        assert srv.pid != os.getpid()
        assert counts(srv.http_url) == expected_counts()
        resp = requests.get(f"{srv.https_url}/api/systemagents/", timeout=10, verify=str(srv.ca_bundle))
        assert len(resp.json()) == len(DEMO["systemagents"])
        page = requests.get(f"{srv.http_url}/health/", timeout=10)
        assert page.status_code == 200
    finally:
        srv.stop()
    assert srv.proc.returncode == 0  # SIGTERM is a clean stop


# -- demo-agents ---------------------------------------------------------------------------------


def driver_args(server, *extra: str) -> list[str]:
    return ["--url", server.https_url, "--http-url", server.http_url, "--token", server.token,
            "--ca-bundle", str(server.ca_bundle), "--interval", "0", *extra]  # fmt: skip


def check_one_run(http_url: str, stf_count: int, tf_per_stf: int = 2) -> None:
    get = lambda name: requests.get(f"{http_url}/api/{name}/", timeout=10).json()  # noqa: E731
    (run,) = get("runs")
    assert run["run_number"] == 100010 and run["end_time"] is not None
    stfs = get("stf-files")
    assert len(stfs) == stf_count
    assert {s["status"] for s in stfs} == {"processed"} and {s["run"] for s in stfs} == {run["run_id"]}
    assert len(get("fastmon-files")) == stf_count * tf_per_stf
    agents = get("systemagents")
    assert sorted(a["agent_type"] for a in agents) == ["daqsim", "data", "processing"]
    assert {a["operational_state"] for a in agents} == {"READY"}
    assert [a["instance_name"].split("-")[-1] for a in agents] == ["1", "2", "3"]  # from next-agent-id
    assert len(get("subscribers")) == 3
    kinds = collections.Counter(m["message_type"] for m in get("workflow-messages"))
    assert kinds == {"run_imminent": 1, "start_run": 1, "stf_gen": stf_count, "stf_ready": stf_count, "end_run": 1}
    assert {m["run_id"] for m in get("workflow-messages")} == {"100010"}
    logs = get("logs")
    assert {entry["instance_name"] for entry in logs} == {a["instance_name"] for a in agents}
    assert len(logs) >= 3 + 3 * stf_count


def test_demo_agents_play_a_run(server, capsys):
    assert demo.main(server.settings, driver_args(server, "--stf-count", "2")) == 0
    check_one_run(server.http_url, 2)
    out = capsys.readouterr().out
    assert "run 100010 done: 2 STF files processed" in out and "[daq] run 100010 imminent" in out


def test_demo_agents_read_the_agents_environment(server, monkeypatch, capsys):
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)
    assert demo.main(server.settings, ["--interval", "0", "--stf-count", "1", "--tf-per-stf", "3", "--quiet"]) == 0
    check_one_run(server.http_url, 1, tf_per_stf=3)
    assert capsys.readouterr().out.count("\n") == 1  # --quiet: only the summary


def test_demo_agents_find_the_local_server_from_settings(server, monkeypatch):
    """No flags, no SWF_* variables: the ports and the data dir's token and CA bundle."""
    for key in ("SWF_MONITOR_URL", "SWF_MONITOR_HTTP_URL", "SWF_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # a global bundle
    settings = make_settings(server.settings.data_dir, http_port=server.endpoints[0].port,
                             https_port=server.endpoints[1].port, db=server.settings.db)  # fmt: skip
    assert demo.main(settings, ["--interval", "0", "--stf-count", "1", "--quiet"]) == 0
    check_one_run(server.http_url, 1)


def test_demo_agents_through_the_command_line(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWF_", "REQUESTS_CA", "CURL_CA"))}
    env.update(server.client_env())
    cmd = [sys.executable, "-m", "swf_lite", "demo-agents", "--", "--interval", "0", "--stf-count", "1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run 100010 done" in done.stdout
    check_one_run(server.http_url, 1)


def test_demo_agents_report_failures(server, tmp_path, monkeypatch, capsys):
    args = driver_args(server)
    args[args.index("--token") + 1] = "f" * 40
    assert demo.main(server.settings, args) == 1
    assert "401" in capsys.readouterr().err
    for key in ("SWF_MONITOR_URL", "SWF_MONITOR_HTTP_URL", "SWF_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert demo.main(make_settings(tmp_path / "empty"), ["--interval", "0"]) == 2
    assert "no API token" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()  # looking for a token created nothing


def test_demo_agents_help_and_bounds(capsys):
    parser = demo.build_parser()
    text = parser.format_help()
    for flag in ("--interval", "--stf-count", "--url", "--token", "--ca-bundle"):
        assert flag in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--stf-count", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--interval", "-1"])
    assert parser.parse_args([]).interval == 1.0 and parser.parse_args([]).stf_count == 5
    capsys.readouterr()


def test_demo_file_is_where_the_package_finds_it():
    assert seeding.demo_path() == Path(__file__).resolve().parent.parent / "data" / "demo.json"


def test_counters_stop_at_their_maximum_and_never_repeat(api):
    """The run number counter stops below what POST /api/runs/ accepts (32-bit); values never wrap or
    turn into floats, and a value beyond the maximum cannot be set."""
    top = 2**31 - 1
    ok(api.post("/_swf_lite/reset/", json={"counters": {"next_run_number": top - 1}}))
    got = [api.post("/api/state/next-run-number/").json() for _ in range(3)]
    assert got[0] == {"run_number": top - 1, "status": "success"}
    assert got[1] == {"run_number": top, "status": "success"}
    assert got[2]["status"] == "error" and str(top) in got[2]["error"]
    assert api.post("/api/state/next-run-number/").status_code == 500  # still exhausted, still not repeating
    assert ok(api.post("/api/runs/", json={"run_number": top, "start_time": "2026-03-31T12:00:00Z"}), 201)
    refused = api.post("/_swf_lite/reset/", json={"counters": {"next_run_number": top + 1}})
    assert refused.status_code == 400 and "at most" in refused.json()["counters"][0]
    big = 2**63 - 1
    ok(api.post("/_swf_lite/reset/", json={"counters": {"next_agent_id": big}}))
    assert api.post("/api/state/next-agent-id/").json() == {"agent_id": big, "status": "success"}
    assert api.post("/api/state/next-agent-id/").json()["status"] == "error"


def test_reset_and_seed_need_a_staff_user(server, api):
    """Any token may write records; only staff may delete or replace everyone's data."""
    from swf_lite import auth

    server.store.connect()
    bob = Client(server.http_url, auth.get_or_create_token(server.store, "bob-not-staff"), True)
    ok(api.post("/api/runs/", json={"run_number": 7, "start_time": "2026-03-31T12:00:00Z"}), 201)
    for path, body in (("/_swf_lite/reset/", {}), ("/_swf_lite/seed/", {"runs": []})):
        refused = bob.post(path, json=body)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "You do not have permission to perform this action."}
    assert [r["run_number"] for r in ok(api.get("/api/runs/"))] == [7]  # nothing deleted
    ok(bob.post("/api/state/next-run-number/"))  # ordinary token work still allowed
    ok(api.post("/_swf_lite/reset/", json={}))
