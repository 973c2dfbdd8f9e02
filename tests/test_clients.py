"""The call sequences of the real clients (contract clients.md §1), replayed with plain requests
sessions configured the way the clients configure theirs, against a real server on real sockets.

The token API is HTTPS and trusted only through ``REQUESTS_CA_BUNDLE`` (no ``verify`` argument, as
agents do); logging and CLI reads use the plain port without a token.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import socket
import urllib.request
from typing import Any

import pytest
import requests
from api_helpers import shared_server

module_server, server = shared_server()
USER = getpass.getuser()
RETRYABLE = {404, 500, 502, 503, 504}  # the lib would sleep 137 s on these before giving up


class APIError(Exception):
    pass


class Lib:
    """swf-common-lib's ``BaseAgent._api_request``: one session with the Token header, 10 s timeout,
    no redirects, ``raise_for_status()`` then ``.json()``; a duplicate subscriber becomes
    ``{"status": "already_exists"}``."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.api = requests.Session()
        if token:
            self.api.headers["Authorization"] = f"Token {token}"

    def request(self, method: str, endpoint: str, data: Any = None) -> Any:
        response = self.api.request(method, f"{self.base}/api{endpoint}", json=data, timeout=10, allow_redirects=False)
        assert response.status_code not in RETRYABLE, f"{method} {endpoint}: {response.status_code} {response.text}"
        if 300 <= response.status_code < 400:
            raise APIError(f"redirect from {endpoint}")
        try:
            response.raise_for_status()
            return response.json()
        except requests.HTTPError:
            text = response.text.lower()
            if response.status_code == 400 and "already exists" in text and "subscriber" in text:
                return {"status": "already_exists"}
            raise

    def get(self, endpoint):
        return self.request("get", endpoint)

    def post(self, endpoint, data=None):
        return self.request("post", endpoint, data)

    def patch(self, endpoint, data):
        return self.request("patch", endpoint, data)


class RestLog(logging.Handler):
    """What rest_logging.RestLogHandler posts for each record: own session, no token, plain port."""

    def __init__(self, base: str, app_name: str, instance_name: str):
        super().__init__()
        self.url = f"{base}/api/logs/"
        self.app_name, self.instance_name = app_name, instance_name
        self.session = requests.Session()
        self.sent: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        extra = {
            k: getattr(record, k) for k in ("execution_id", "workflow_name", "run_id", "username") if hasattr(record, k)
        }
        body = {
            "app_name": self.app_name,
            "instance_name": self.instance_name,
            "timestamp": dt.datetime.fromtimestamp(record.created).isoformat(),  # naive local time
            "level": record.levelno,
            "levelname": record.levelname,
            "message": record.getMessage(),
            "module": record.module or "unknown",
            "funcname": record.funcName or "unknown",
            "lineno": record.lineno or 0,
            "process": record.process or 0,
            "thread": record.thread or 0,
            "extra_data": extra or None,
        }
        response = self.session.post(self.url, json=body, timeout=10)
        response.raise_for_status()
        self.sent.append(body)


@pytest.fixture
def lib(server, monkeypatch):
    """An agent's session: the API over HTTPS, trusted through the environment's CA bundle."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(server.ca_bundle))
    client = Lib(server.https_url, server.token)
    assert client.api.verify is True, "no verify argument: the bundle comes from the environment"
    yield client
    client.api.close()


def now_iso() -> str:
    return dt.datetime.now().isoformat()  # agents send naive local time


def start_agent(lib: Lib, agent_type: str) -> str:
    """BaseAgent.__init__: the agent id names the agent."""
    data = lib.post("/state/next-agent-id/")
    assert data["status"] == "success" and isinstance(data["agent_id"], int)
    return f"{agent_type.lower()}-agent-{USER}-{data['agent_id']}"


def heartbeat_body(name: str, agent_type: str, **kw) -> dict:
    body = {
        "instance_name": name,
        "agent_type": agent_type,
        "status": "OK",
        "description": f"{agent_type} agent. MQ: connected",
        "mq_connected": True,
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "operational_state": "READY",
        "namespace": "alice-ns",
    }
    body.update(kw)
    return body


def cli_get(server, path: str, token: str | None = None) -> requests.Response:
    """The testbed CLI: requests.get on the plain port, token only if set, timeout 5, verify=False."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    return requests.get(server.http_url + path, headers=headers, timeout=5, verify=False)


# -- agent start-up and logging --------------------------------------------------------------------


def test_agent_start_up_and_rest_logging(server, lib):
    name = start_agent(lib, "DATA")
    assert name == f"data-agent-{USER}-1"
    assert start_agent(lib, "STF_Processing") == f"stf_processing-agent-{USER}-2", "ids never repeat"

    logger = logging.getLogger(f"swf-lite-test-{name}")
    logger.propagate, logger.level = False, logging.DEBUG
    handler = RestLog(server.http_url, "base_agent", name)
    logger.addHandler(handler)
    try:
        logger.info("Agent %s starting", name)
        logger.error("STF failed", extra={"execution_id": "stf_datataking-alice-0001", "run_id": "100010"})
    finally:
        logger.removeHandler(handler)
    stored = requests.get(f"{server.http_url}/api/logs/?instance_name={name}", timeout=10).json()
    assert len(stored) == 2
    error_row, info_row = stored
    assert info_row["message"] == f"Agent {name} starting" and info_row["extra_data"] is None
    assert (info_row["app_name"], info_row["level"], info_row["levelname"]) == ("base_agent", 20, "INFO")
    assert info_row["module"] == "test_clients" and info_row["funcname"] == "test_agent_start_up_and_rest_logging"
    assert info_row["thread"] == handler.sent[0]["thread"] and info_row["process"] == os.getpid()
    assert error_row["extra_data"] == {"execution_id": "stf_datataking-alice-0001", "run_id": "100010"}
    sent = dt.datetime.fromisoformat(handler.sent[0]["timestamp"]).replace(tzinfo=server.settings.zone)
    stored_at = sent.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert info_row["timestamp"] == stored_at, "naive time read in the server's zone, stored as UTC"
    summary = requests.get(f"{server.http_url}/api/logs/summary/", timeout=10).json()
    assert summary["base_agent"][name]["recent_errors"][0]["message"] == "STF failed"


# -- heartbeats and status reports -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # daqsim's verify=False
def test_heartbeats_and_status_reports(server, lib):
    name = start_agent(lib, "DATA")
    first = lib.post("/systemagents/heartbeat/", heartbeat_body(name, "DATA"))  # after STOMP subscribe
    assert first["instance_name"] == name and first["operational_state"] == "READY"
    enhanced = heartbeat_body(
        name,
        "DATA",
        workflow_enabled=True,
        current_stf_count=2,
        total_stf_processed=17,
        operational_state="PROCESSING",
        description="DATA agent. MQ: connected. current_stf: 2",
    )
    beat = lib.post("/systemagents/heartbeat/", enhanced)
    assert (beat["id"], beat["current_stf_count"], beat["total_stf_processed"]) == (first["id"], 2, 17)
    report = lib.post(
        "/systemagents/heartbeat/",
        {
            "instance_name": name,
            "agent_type": "DATA",
            "status": "ERROR",
            "description": "DATA agent. lost broker. Error: timeout",
        },
    )
    assert report["status"] == "ERROR" and report["operational_state"] == "PROCESSING"

    daq = requests.Session()  # daqsim: own session, verify=False, expects status == "OK"
    daq.headers["Authorization"] = f"Token {server.token}"
    resp = daq.post(
        f"{server.https_url}/api/systemagents/heartbeat/",
        timeout=10,
        verify=False,
        json={
            "instance_name": f"daq-agent-{USER}-9",
            "agent_type": "daqsim",
            "status": "OK",
            "description": "DAQ simulator",
            "workflow_enabled": False,
        },
    )
    assert resp.status_code == 201 and resp.json()["status"] == "OK"
    manager = daq.post(
        f"{server.https_url}/api/systemagents/heartbeat/",
        timeout=5,
        verify=False,
        json={
            "instance_name": f"agent-manager-{USER}",
            "agent_type": "agent_manager",
            "status": "OK",
            "operational_state": "READY",
            "namespace": None,
            "pid": 1,
            "hostname": "h",
            "description": "manager",
            "metadata": {"supervisord_healthy": True},
        },
    )
    assert manager.ok

    lib.post("/systemagents/heartbeat/", heartbeat_body(name, "DATA", status="EXITED", operational_state="EXITED"))
    listed = cli_get(server, "/api/systemagents/")
    assert listed.status_code == 200
    active = [a["instance_name"] for a in listed.json() if a["operational_state"] != "EXITED"]
    assert sorted(active) == sorted([f"daq-agent-{USER}-9", f"agent-manager-{USER}"])
    assert isinstance(lib.get("/systemagents/"), list), "the lib's health check"


def test_subscriber_registration_twice(lib):
    name = start_agent(lib, "DATA")
    body = {
        "subscriber_name": f"{name}-/topic/epictopic",
        "description": "DATA agent subscriber",
        "is_active": True,
        "fraction": 1.0,
    }
    first = lib.post("/subscribers/", body)
    assert first["subscriber_name"] == body["subscriber_name"]
    assert lib.post("/subscribers/", body) == {"status": "already_exists"}
    assert [s["subscriber_name"] for s in lib.get("/subscribers/")] == [body["subscriber_name"]]


# -- data agent and fastmon ------------------------------------------------------------------------


def test_data_agent_run_and_stf_files(lib):
    run_number = lib.post("/state/next-run-number/")
    assert run_number["status"] == "success" and run_number["run_number"] == 100010
    run_id = str(run_number["run_number"])  # the run id in STOMP messages
    run = lib.post(
        "/runs/",
        {"run_number": int(run_id), "start_time": now_iso(), "run_conditions": {"state": "run", "substate": "physics"}},
    )
    stfs = []
    for seq in range(1, 3):
        stf = lib.post(
            "/stf-files/",
            {
                "run": run["run_id"],
                "stf_filename": f"swf.{run_id}.{seq:06d}.stf",
                "file_size_bytes": None,
                "machine_state": "physics",
                "status": "registered",
                "metadata": {
                    "created_by": "data-agent",
                    "substate": "physics",
                    "start": "20250801143000",
                    "end": "20250801143010",
                    "sequence": seq,
                },
            },
        )
        assert stf["file_id"] and stf["run"] == run["run_id"]
        done = lib.patch(
            f"/stf-files/{stf['file_id']}/",
            {"status": "processed", "metadata": {"processed_by": "data-agent", "updated_at": now_iso()}},
        )
        assert done and done["status"] == "processed"
        stfs.append(done)
    ended = lib.patch(f"/runs/{run['run_id']}/", {"end_time": now_iso()})
    assert ended and ended["end_time"].endswith("Z")
    assert lib.get(f"/stf-files/?run={run['run_id']}") == stfs


def test_fastmon_run_lookup_stf_and_tf_file(lib):
    for number in (100020, 100021, 100022):
        lib.post("/runs/", {"run_number": number, "start_time": now_iso()})

    def get_or_create_run(number: int) -> int:
        found = lib.get(f"/runs/?run_number={number}")
        records = found.get("results", []) if isinstance(found, dict) else found
        if records:
            return records[0]["run_id"]
        return lib.post(
            "/runs/", {"run_number": number, "start_time": now_iso(), "run_conditions": {"auto_created": True}}
        )["run_id"]

    existing = get_or_create_run(100021)
    assert lib.get(f"/runs/{existing}/")["run_number"] == 100021, "the first record is the matching run"
    created = get_or_create_run(100099)
    assert lib.get(f"/runs/{created}/")["run_conditions"] == {"auto_created": True}
    assert get_or_create_run(100099) == created

    stf = lib.post(
        "/stf-files/",
        {
            "run": existing,
            "stf_filename": "swf.100021.000001.stf",
            "file_size_bytes": 1024,
            "machine_state": "physics",
            "status": "registered",
            "checksum": "",
            "metadata": {"source": "fastmon"},
        },
    )
    tf = lib.post(
        "/fastmon-files/",
        {
            "stf_file": stf["stf_filename"],
            "tf_filename": "swf.100021.000001_tf_001.tf",
            "tf_first": 0,
            "tf_last": 99,
            "tf_count": 100,
            "file_size_bytes": 512,
            "status": "registered",
            "metadata": {"sampled": True},
        },
    )
    message = {
        k: tf[k] for k in ("tf_file_id", "tf_filename", "tf_first", "tf_last", "tf_count", "file_size_bytes", "status")
    }
    assert None not in message.values(), "forwarded as tf_file_registered; fast processing needs every value"
    assert lib.get("/fastmon-files/?run_number=100021") == [tf]


# -- workflow runner and fast processing -----------------------------------------------------------


def runner_session(server) -> requests.Session:
    """The runner reuses BaseAgent's session directly: no timeout, no retry (the bundle from the env)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {server.token}"
    return session


def run_workflow(server, session, workflow="fast_processing", version="1.0") -> tuple[str, int]:
    """WorkflowRunner: execution id, namespace, definition (reused), execution, run state, completion."""
    api = f"{server.https_url}/api"
    resp = session.post(f"{api}/state/next-workflow-execution-id/", json={"workflow_name": workflow})
    assert resp.status_code == 200
    execution_id = f"{workflow}-{USER}-{resp.json().get('sequence', 1):04d}"

    ns = session.post(f"{api}/namespaces/ensure/", json={"name": "alice-ns", "owner": USER}, timeout=10)
    ns.raise_for_status()
    assert ns.json()["status"] == "success"

    resp = session.get(f"{api}/workflow-definitions/", params={"workflow_name": workflow, "version": version})
    assert resp.status_code == 200
    found = resp.json()
    found = found.get("results", []) if isinstance(found, dict) else found
    if found:
        definition_id = found[0]["id"]
    else:
        resp = session.post(
            f"{api}/workflow-definitions/",
            json={
                "workflow_name": workflow,
                "version": version,
                "workflow_type": "simulation",
                "definition": "# the workflow's Python source\n",
                "created_by": USER,
                "created_at": now_iso(),
                "parameter_values": {
                    "workflow": {"name": workflow, "version": version, "description": "d"},
                    "fast_processing": {"num_tf_per_slice": 10, "slices_per_sample": 3},
                },
            },
        )
        assert resp.status_code in (200, 201), resp.text
        definition_id = resp.json()["id"]

    resp = session.post(
        f"{api}/workflow-executions/",
        json={
            "execution_id": execution_id,
            "workflow_definition": definition_id,
            "namespace": "alice-ns",
            "status": "running",
            "executed_by": USER,
            "start_time": now_iso(),
            "parameter_values": {
                "fast_processing": {"num_tf_per_slice": 10, "slices_per_sample": 3},
                "git_version": {"commit": "abc123", "tag": None, "branch": "main"},
            },
        },
    )
    assert resp.status_code in (200, 201), resp.text
    run_number = session.post(f"{api}/state/next-run-number/", timeout=10).json()["run_number"]
    resp = session.post(
        f"{api}/run-states/",
        json={
            "run_number": run_number,
            "phase": "initializing",
            "state": "imminent",
            "substate": "preparing",
            "target_worker_count": 4,
            "active_worker_count": 0,
            "stf_samples_received": 0,
            "slices_created": 0,
            "slices_queued": 0,
            "slices_processing": 0,
            "slices_completed": 0,
            "slices_failed": 0,
            "state_changed_at": now_iso(),
            "metadata": {"execution_id": execution_id, "stf_sampling_rate": 0.1, "slices_per_sample": 3},
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return execution_id, run_number


def test_workflow_runner(server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
    session = runner_session(server)
    first, run_number = run_workflow(server, session)
    assert first == f"fast_processing-{USER}-0001" and run_number == 100010
    second, _ = run_workflow(server, session)
    assert second == f"fast_processing-{USER}-0002"
    api = f"{server.https_url}/api"
    assert len(session.get(f"{api}/workflow-definitions/").json()) == 1, "the definition is reused"
    resp = session.patch(f"{api}/workflow-executions/{first}/", json={"status": "completed", "end_time": now_iso()})
    assert resp.status_code == 200
    resp = session.patch(f"{api}/workflow-executions/{second}/", json={"status": "terminated", "end_time": None})
    assert resp.status_code == 200 and resp.json()["end_time"] is None
    other, _ = run_workflow(server, session, workflow="stf_datataking")
    assert other == f"stf_datataking-{USER}-0003", "one global sequence"
    # the fallback count when the counter fails: executions of this workflow only
    fallback = session.get(f"{api}/workflow-executions/", params={"workflow_name": "fast_processing"})
    assert fallback.status_code == 200 and len(fallback.json()) + 1 == 3
    ns = session.post(f"{api}/namespaces/ensure/", json={"name": "alice-ns", "owner": USER}).json()
    assert ns["created"] is False


def test_fast_processing(server, lib):
    execution_id, run_number = run_workflow(server, runner_session(server))
    params = lib.get(f"/workflow-executions/{execution_id}/")["parameter_values"]
    per_slice = params["fast_processing"]["num_tf_per_slice"]
    name = start_agent(lib, "Fast_Processing")
    for queue in ("/queue/tf_files", "/queue/slice_results"):
        assert lib.post(
            "/subscribers/",
            {"subscriber_name": f"{name}-{queue}", "description": "fp", "is_active": True, "fraction": 1.0},
        )["subscriber_name"]

    def update_run_state(**increments):
        state = lib.get(f"/run-states/{run_number}/")
        lib.patch(f"/run-states/{run_number}/", {k: state[k] + v for k, v in increments.items()})

    def log_event(event_type, state, substate, data):
        lib.post(
            "/system-state-events/",
            {
                "timestamp": now_iso(),
                "run_number": run_number,
                "event_type": event_type,
                "state": state,
                "substate": substate,
                "event_data": data,
            },
        )

    lib.patch(
        f"/run-states/{run_number}/",
        {"phase": "running", "state": "run", "substate": "physics", "state_changed_at": now_iso()},
    )
    log_event("run_start", "run", "physics", {"execution_id": execution_id})
    slice_ids = {}
    for sample in range(2):  # tf_file_registered: make the slices of one TF file
        tf_filename = f"swf.{run_number}.{sample:06d}_tf_001"
        update_run_state(stf_samples_received=1)
        for n in range(3):
            created = lib.post(
                "/tf-slices/",
                {
                    "slice_id": n,
                    "tf_first": n * per_slice,
                    "tf_last": (n + 1) * per_slice - 1,
                    "tf_count": per_slice,
                    "tf_filename": f"{tf_filename}_slice_{n:03d}.tf",
                    "stf_filename": f"swf.{run_number}.{sample:06d}.stf",
                    "run_number": run_number,
                    "status": "queued",
                    "retries": 0,
                    "metadata": {"execution_id": execution_id, "created_by": name},
                },
            )
            slice_ids[(sample, n)] = created["id"]
        update_run_state(slices_created=3, slices_queued=3)
        log_event("slices_created", "run", "physics", {"count": 3})
    state = lib.get(f"/run-states/{run_number}/")
    assert (state["stf_samples_received"], state["slices_created"], state["slices_queued"]) == (2, 6, 6)

    # slice_result: the filtered lookup must be a plain list; the first record is patched
    found = lib.get(f"/tf-slices/?run_number={run_number}&slice_id=1")
    assert isinstance(found, list) and [s["id"] for s in found] == [slice_ids[(0, 1)], slice_ids[(1, 1)]]
    done = lib.patch(
        f"/tf-slices/{found[0]['id']}/",
        {"status": "completed", "processed_at": now_iso(), "metadata": {"result": "ok", "worker": "w1"}},
    )
    assert done["status"] == "completed"
    assert [s["status"] for s in lib.get(f"/tf-slices/?run_number={run_number}&status=completed")] == ["completed"]
    events = lib.get(f"/system-state-events/?run_number={run_number}")
    assert [e["event_type"] for e in events] == ["run_start", "slices_created", "slices_created"]


# -- prompt processing and CLI ---------------------------------------------------------------------


def test_prompt_processing_start_up_scan(lib):
    runs = [lib.post("/runs/", {"run_number": n, "start_time": now_iso()}) for n in (100010, 100011)]
    for run in runs:
        for seq in (1, 2):
            lib.post(
                "/stf-files/",
                {
                    "run": run["run_id"],
                    "stf_filename": f"swf.{run['run_number']}.{seq:06d}.stf",
                    "status": "registered",
                    "metadata": {"sequence": seq},
                },
            )
    records = lib.get("/runs/")
    records = records if isinstance(records, list) else records.get("results", [])
    target = next(r for r in records if str(r["run_number"]) == "100011")
    files = [
        f for f in lib.get("/stf-files/") if str(f["run"]) == str(target["run_id"]) and f["status"] == "registered"
    ]
    assert [f["stf_filename"] for f in files] == ["swf.100011.000001.stf", "swf.100011.000002.stf"]
    claimed = files[0]
    metadata = dict(
        claimed["metadata"],
        processed_by="prompt-processing",
        panda_task_id=12345,
        panda_output_dataset="user.alice.out",
        workflow_execution_id="prompt-alice-0001",
    )
    lib.patch(f"/stf-files/{claimed['file_id']}/", {"status": "processing", "metadata": metadata})
    again = next(f for f in lib.get("/stf-files/") if f["file_id"] == claimed["file_id"])
    assert again["metadata"] == metadata and again["status"] == "processing", "metadata round-trips unchanged"


def test_cli_status_reads_over_the_plain_port(server, lib):
    name = start_agent(lib, "DATA")
    lib.post("/systemagents/heartbeat/", heartbeat_body(name, "DATA"))
    lib.post("/systemagents/heartbeat/", heartbeat_body("gone", "DATA", status="EXITED", operational_state="EXITED"))
    execution_id, _ = run_workflow(server, runner_session(server))
    for token in (None, server.token):
        agents = cli_get(server, "/api/systemagents/", token)
        assert agents.status_code == 200
        rows = agents.json()
        rows = rows if isinstance(rows, list) else rows["results"]
        assert [(a["instance_name"], a["agent_type"]) for a in rows if a["operational_state"] != "EXITED"] == [
            (name, "DATA")
        ]
        running = cli_get(server, "/api/workflow-executions/?status=running", token)
        assert running.status_code == 200
        assert [(e["execution_id"], e["namespace"]) for e in running.json()] == [(execution_id, "alice-ns")]
        assert running.json()[0]["start_time"].endswith("Z")


def test_ai_memory_hooks(server):
    """The dialogue hooks: urllib, no token, plain port; recording counts only an exact 200."""
    for n, role in enumerate(("user", "assistant")):
        payload = {"username": USER, "session_id": "abc", "role": role, "content": f"turn {n}",
                   "namespace": None, "project_path": "/home/x/swf-testbed"}  # fmt: skip
        request = urllib.request.Request(f"{server.http_url}/api/ai-memory/record/", method="POST",
                                         data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
    with urllib.request.urlopen(f"{server.http_url}/api/ai-memory/?username={USER}&turns=5", timeout=5) as resp:
        assert resp.status == 200
        items = json.loads(resp.read())["items"]
    assert [(i["role"], i["content"]) for i in items] == [("user", "turn 0"), ("assistant", "turn 1")]
