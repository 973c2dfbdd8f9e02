"""Contract pins: what ``resources.md`` (and README §3-§4, §7) says about every resource, transcribed by
hand into the tables below and checked against a real server over the wire.

The other API tests derive their expectations from ``swf_lite.catalog``, so a wrong declaration there
would pass them. This module never imports the declarations: a wrong primary key, field order,
required set, default, filter or default ordering in the catalog fails a test here. When the contract
changes, change these tables by reading the contract, never by reading the catalog.

Deferred to a later issue (the contract marks them "since the real monitor's <hash>"; not pinned here,
neither required nor forbidden): stf-files ``tf_count``; tf-slices ``fastmon_file`` (key, parent
derivation, the R* rule with a parent) and its filters ``id``, ``fastmon_file_id``,
``fastmon_file__tf_filename``, ``fastmon_file__stf_file__stf_filename``; workflow-messages ordering
ascending under ``?execution_id=``; typed filter values ("Enter a number."); run-lifecycle RunState
transitions (the messages posted here use other types). ``ai-memory`` has no resource entry in
``resources.md`` and is not pinned here.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from api_helpers import error, ok, shared_server

module_server, server = shared_server()
REQUIRED = ["This field is required."]
_n = itertools.count(1)


def at(minutes: int) -> str:
    """An input timestamp ``minutes`` after 2026-03-31 12:00 UTC."""
    return (dt.datetime(2026, 3, 31, 12, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minutes)).isoformat()


def parent(api, name: str, n: int) -> dict[str, Any]:
    """Create a minimal row of ``name`` (the parent of a foreign key) and return it."""
    return ok(api.post(f"/api/{name}/", json=MINIMAL[name](api, n)), 201)


# Minimal valid create bodies: exactly the R fields, parents built as needed. A row made with ``n`` has
# run_number 100000+n all the way down its parents (the filters through foreign keys rely on it).
MINIMAL: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "systemagents": lambda api, n: {"instance_name": f"agent-{n}", "agent_type": "data"},
    "logs": lambda api, n: {
        "app_name": "app",
        "instance_name": f"inst-{n}",
        "timestamp": at(n),
        "levelname": "INFO",
        "message": f"message {n}",
        "module": "mod",
        "funcname": "fn",
        "lineno": n,
        "process": n,
        "thread": 2**40 + n,
    },
    "runs": lambda api, n: {"run_number": 100000 + n, "start_time": at(n)},
    "stf-files": lambda api, n: {"stf_filename": f"run{n}.stf", "run": parent(api, "runs", n)["run_id"]},
    "fastmon-files": lambda api, n: {
        "stf_file": parent(api, "stf-files", n)["stf_filename"],
        "tf_filename": f"run{n}_tf.tf",
    },
    "tf-slices": lambda api, n: {
        "slice_id": n,
        "tf_first": 0,
        "tf_last": 9,
        "tf_count": 10,
        "tf_filename": f"run{n}_tf_slice_001.tf",
        "stf_filename": f"run{n}.stf",
        "run_number": 100000 + n,
    },
    "workers": lambda api, n: {
        "worker_id": f"worker-{n}",
        "run_number": 100000 + n,
        "panda_job": f"job-{n}",
        "location": "BNL",
        "status": "running",
        "started_at": at(n),
    },
    "run-states": lambda api, n: {
        "run_number": 100000 + n,
        "phase": "physics",
        "state": "run",
        "target_worker_count": 2,
        "state_changed_at": at(n),
    },
    "system-state-events": lambda api, n: {
        "timestamp": at(n),
        "run_number": 100000 + n,
        "event_type": "state_change",
        "state": "run",
        "event_data": {"n": n},
    },
    "workflows": lambda api, n: {
        "filename": f"run{n}.stf",
        "daq_state": "run",
        "daq_substate": "physics",
        "generated_time": at(n),
        "stf_start_time": at(n),
        "stf_end_time": at(n + 1),
    },
    "workflow-stages": lambda api, n: {
        "workflow": parent(api, "workflows", n)["workflow_id"],
        "agent_name": f"agent-{n}",
        "agent_type": "data",
    },
    "workflow-messages": lambda api, n: {"message_type": "data_ready", "message_content": {"n": n}},
    "workflow-definitions": lambda api, n: {
        "workflow_name": f"wf-{n}",
        "version": "1.0",
        "workflow_type": "stf_processing",
        "definition": "steps: []",
        "created_by": "alice",
    },
    "workflow-executions": lambda api, n: {
        "execution_id": f"exec-{n}",
        "workflow_definition": parent(api, "workflow-definitions", n)["id"],
        "parameter_values": {"n": n},
        "start_time": at(n),
        "executed_by": "alice",
    },
    "subscribers": lambda api, n: {"subscriber_name": f"sub-{n}"},
}


@dataclass
class Filter:
    """Row ``a`` (with overrides ``a``) must be the only match of ``?param=query``; row ``b`` must not
    match. ``query`` may be a function of row ``a`` as created and its ``n`` (filters through parents)."""

    a: dict[str, Any] = field(default_factory=dict)
    b: dict[str, Any] = field(default_factory=dict)
    query: Any = None
    symmetric: bool = False  # also ``?param=<b's value>`` → [b], and ``a,b`` → both (README §4)


def eq(name: str, a: Any, b: Any) -> Filter:
    return Filter({name: a}, {name: b}, a, symmetric=True)


def via(query: Callable[[dict[str, Any], int], Any]) -> Filter:
    """A filter through a foreign key: the two rows get different parents."""
    return Filter(query=query)


@dataclass
class Spec:
    key: str  # "<pk> <int|uuid|str> <RO|client>": server-assigned (RO) or client-supplied (R U)
    fields: str  # in contract order, pk excluded
    required: str
    defaults: dict[str, Any] = field(default_factory=dict)
    read_only: str = ""  # RO fields besides the pk
    filters: dict[str, tuple | Filter] = field(default_factory=dict)
    deferred: frozenset[str] = frozenset()  # keys of the later issue: tolerated, not required

    @property
    def pk(self) -> str:
        return self.key.split()[0]

    @property
    def pk_kind(self) -> str:
        return self.key.split()[1]

    @property
    def client_pk(self) -> bool:
        return self.key.split()[2] == "client"


U1, U2 = "6f1c2d8e-0000-4000-8000-000000000001", "6f1c2d8e-0000-4000-8000-000000000002"
SPECS: dict[str, Spec] = {
    "systemagents": Spec(
        "id int RO",
        "instance_name agent_type description status last_heartbeat agent_url workflow_enabled "
        "current_stf_count total_stf_processed last_stf_processed pid hostname operational_state namespace metadata "
        "created_at updated_at",
        "instance_name agent_type",
        {
            "description": "",
            "status": "UNKNOWN",
            "workflow_enabled": True,
            "current_stf_count": 0,
            "total_stf_processed": 0,
            "operational_state": "STARTING",
        },
        "created_at updated_at",
        {
            "instance_name": ("agent-a", "agent-b"),
            "agent_type": ("daqsim", "fastmon"),
            "status": ("OK", "ERROR"),
            "operational_state": ("READY", "PROCESSING"),
            "namespace": ("ns-a", "ns-b"),
        },
    ),
    "logs": Spec(
        "id int RO",
        "app_name instance_name timestamp level levelname message module funcname lineno process thread extra_data",
        "app_name instance_name timestamp levelname message module funcname lineno process thread",
        {"level": 0},
        "",
        {
            "app_name": ("app-a", "app-b"),
            "instance_name": ("inst-a", "inst-b"),
            "levelname": ("ERROR", "DEBUG"),
            "level": (40, 10),
            "min_level": Filter({"level": 30}, {"level": 20}, 30),  # level ≥
            "start_time": Filter({"timestamp": at(30)}, {"timestamp": at(29)}, at(30)),  # inclusive
            "end_time": Filter({"timestamp": at(29)}, {"timestamp": at(30)}, at(29)),  # inclusive
            "search": Filter({"message": "found the needle here"}, {"message": "nothing"}, "needle"),
        },
    ),
    "runs": Spec(
        "run_id int RO",
        "run_number start_time end_time run_conditions",
        "run_number start_time",
        filters={"run_number": (200001, 200002)},
    ),
    "stf-files": Spec(
        "file_id uuid RO",
        "machine_state stf_filename file_size_bytes checksum created_at status metadata workflow_id daq_state "
        "daq_substate workflow_status run",
        "stf_filename run",
        {"machine_state": "physics", "status": "registered"},
        "created_at",
        {
            "stf_filename": ("a.stf", "b.stf"),
            "run": via(lambda row, n: row["run"]),  # the run's run_id
            "run_number": via(lambda row, n: 100000 + n),
            "status": ("processed", "failed"),
            "machine_state": ("physics", "cosmics"),
            "workflow_id": (U1, U2),
        },
        deferred=frozenset({"tf_count"}),
    ),
    "fastmon-files": Spec(
        "tf_file_id uuid RO",
        "stf_file tf_filename tf_first tf_last tf_count file_size_bytes checksum status metadata created_at updated_at",
        "stf_file tf_filename",
        {"status": "registered"},
        "created_at updated_at",
        {
            "tf_filename": ("a_tf.tf", "b_tf.tf"),
            "stf_filename": via(lambda row, n: row["stf_file"]),
            "status": ("processing", "done"),
            "run_number": via(lambda row, n: 100000 + n),
        },
    ),
    "tf-slices": Spec(
        "id int RO",
        "slice_id tf_first tf_last tf_count tf_filename stf_filename run_number status retries metadata created_at "
        "updated_at assigned_worker assigned_at completed_at",
        "slice_id tf_first tf_last tf_count tf_filename stf_filename run_number",
        {"status": "queued", "retries": 0},
        "created_at updated_at",
        {
            "run_number": (200001, 200002),
            "slice_id": (1, 2),
            "status": ("processing", "done"),
            "stf_filename": ("a.stf", "b.stf"),
            "tf_filename": ("a_slice_001.tf", "b_slice_001.tf"),
            "assigned_worker": ("worker-a", "worker-b"),
        },
        deferred=frozenset({"fastmon_file"}),
    ),
    "workers": Spec(
        "worker_id str client",
        "run_number panda_job location status current_slice_id tf_filename slices_completed last_heartbeat "
        "started_at ended_at metadata",
        "worker_id run_number panda_job location status started_at",
        {"slices_completed": 0},
        "",
        {"run_number": (200001, 200002), "status": ("running", "finished"), "location": ("BNL", "CERN")},
    ),
    "run-states": Spec(
        "run_number int client",
        "phase state substate target_worker_count active_worker_count stf_samples_received slices_created "
        "slices_queued slices_processing slices_completed slices_failed state_changed_at updated_at metadata",
        "run_number phase state target_worker_count state_changed_at",
        dict.fromkeys(
            "active_worker_count stf_samples_received slices_created slices_queued slices_processing "
            "slices_completed slices_failed".split(),
            0,
        ),
        "updated_at",
    ),
    "system-state-events": Spec(
        "event_id int RO",
        "timestamp run_number event_type state substate event_data",
        "timestamp run_number event_type state event_data",
        filters={"run_number": (200001, 200002), "event_type": ("start", "stop"), "state": ("run", "beam")},
    ),
    "workflows": Spec(
        "workflow_id uuid RO",
        "filename file_id namespace execution_id run_id daq_state daq_substate generated_time stf_start_time "
        "stf_end_time current_status current_agent completed_at failed_at failure_reason stf_metadata created_at "
        "updated_at",
        "filename daq_state daq_substate generated_time stf_start_time stf_end_time",
        {"current_status": "generated", "current_agent": "daqsim"},
        "created_at updated_at",
        {
            "filename": ("a.stf", "b.stf"),
            "namespace": ("ns-a", "ns-b"),
            "execution_id": ("exec-a", "exec-b"),
            "run_id": ("100010", "100011"),
            "current_status": ("data_received", "failed"),
        },
    ),
    "workflow-stages": Spec(
        "stage_id uuid RO",
        "workflow agent_name agent_type status received_at started_at completed_at failed_at processing_time_seconds "
        "failure_reason input_message output_message stage_metadata created_at updated_at",
        "workflow agent_name agent_type",
        {"status": "generated"},
        "created_at updated_at",
        {
            "workflow": via(lambda row, n: row["workflow"]),
            "agent_name": ("agent-a", "agent-b"),
            "status": ("data_processing", "failed"),
        },
    ),
    "workflow-messages": Spec(
        "message_id uuid RO",
        "message_type request_id sender_agent sender_type recipient_agent recipient_type namespace execution_id "
        "run_id message_content message_metadata sent_at delivered_at acknowledged_at is_successful error_message "
        "queue_name correlation_id workflow stage",
        "message_type message_content",
        {"message_metadata": {}},
        "sent_at",
        {
            "execution_id": ("exec-a", "exec-b"),
            "message_type": ("stf_gen", "data_ready"),
            "sender_agent": ("agent-a", "agent-b"),
            "namespace": ("ns-a", "ns-b"),
            "run_id": ("100010", "100011"),
            "queue_name": ("queue-a", "queue-b"),
        },
    ),
    "workflow-definitions": Spec(
        "id int RO",
        "workflow_name version workflow_type definition parameter_values created_by created_at updated_at",
        "workflow_name version workflow_type definition created_by",
        {"parameter_values": {}},
        "created_at updated_at",
        {
            "workflow_name": ("wf-a", "wf-b"),
            "version": ("1.0", "2.0"),
            "workflow_type": ("stf_processing", "fast_processing"),
            "created_by": ("alice", "bob"),
        },
    ),
    "workflow-executions": Spec(
        "execution_id str client",
        "workflow_definition namespace parameter_values performance_metrics status start_time end_time executed_by",
        "execution_id workflow_definition parameter_values start_time executed_by",
        {"status": "pending"},
        "",
        {
            "status": ("running", "completed"),
            "namespace": ("ns-a", "ns-b"),
            "executed_by": ("alice", "bob"),
            "workflow_name": via(lambda row, n: f"wf-{n}"),  # the definition's workflow_name
        },
    ),
    "subscribers": Spec(
        "subscriber_id int RO",
        "subscriber_name fraction description is_active created_at updated_at delivery_type client_ip "
        "client_location connected_at disconnected_at last_activity message_filters messages_received "
        "messages_sent messages_dropped",
        "subscriber_name",
        {
            "is_active": True,
            "delivery_type": "activemq",
            "client_location": "",
            "message_filters": {},
            "messages_received": 0,
            "messages_sent": 0,
            "messages_dropped": 0,
        },
        "created_at updated_at",
        {
            "subscriber_name": ("sub-a", "sub-b"),
            "is_active": (False, True),
            "delivery_type": ("sse", "activemq"),
        },
    ),
}

# Default orderings (resources.md "Order:"; README §4: unordered lists are by primary key ascending).
# name → (overrides of the rows, in creation order; expected list order as creation indexes, or "pk").
ORDERS: dict[str, tuple[list[dict[str, Any]], tuple[int, ...] | str]] = {
    "systemagents": ([{"instance_name": x} for x in "cab"], (0, 1, 2)),  # id
    "logs": ([{"timestamp": at(m)} for m in (1, 3, 2, 3)], (3, 1, 2, 0)),  # -timestamp, then -id
    "runs": ([{"run_number": r} for r in (200003, 200001, 200002)], (0, 1, 2)),  # run_id
    "stf-files": ([{"stf_filename": f"{x}.stf"} for x in "ecadb"], (0, 1, 2, 3, 4)),  # created_at
    # swf-lite decision: resources.md states no order, but pk order of random UUIDs means nothing;
    # creation order is what a reader of these two lists expects (documented as a difference)
    "fastmon-files": ([{}, {}, {}, {}], (0, 1, 2, 3)),  # created_at
    "tf-slices": ([{"slice_id": s} for s in (3, 1, 2)], (0, 1, 2)),  # id
    "workers": ([{"worker_id": w} for w in ("w-c", "w-a", "w-b")], (1, 2, 0)),
    "run-states": ([{"run_number": r} for r in (200003, 200001, 200002)], (1, 2, 0)),
    "system-state-events": ([{"timestamp": at(m)} for m in (2, 1, 3)], (1, 0, 2)),  # timestamp
    "workflows": ([{"generated_time": at(m)} for m in (2, 1, 3)], (2, 0, 1)),  # -generated_time
    "workflow-stages": ([{}, {}, {}, {}], (0, 1, 2, 3)),  # created_at (see fastmon-files)
    "workflow-messages": ([{}, {}, {}], (2, 1, 0)),  # -sent_at
    "workflow-definitions": ([{"workflow_name": x} for x in "cab"], (0, 1, 2)),
    "workflow-executions": ([{"start_time": at(m)} for m in (2, 1, 3)], (2, 0, 1)),  # -start_time
    "subscribers": ([{"subscriber_name": x} for x in "cab"], (0, 1, 2)),
}

# Required-field rules beyond "absent": (resource, overrides of a minimal body, the 400 body).
SPECIAL_RULES = [
    ("logs", {"message": ""}, {"message": ["This field may not be blank."]}),
    ("workflow-definitions", {"definition": ""}, {"definition": ["This field may not be blank."]}),
    ("system-state-events", {"event_data": None}, {"event_data": ["This field may not be null."]}),
]


def minimal(api, name: str, **overrides: Any) -> tuple[dict[str, Any], int]:
    n = next(_n)
    return dict(MINIMAL[name](api, n), **overrides), n


def create(api, name: str, **overrides: Any) -> tuple[dict[str, Any], int]:
    body, n = minimal(api, name, **overrides)
    return ok(api.post(f"/api/{name}/", json=body), 201), n


def keys(obj: dict[str, Any], spec: Spec) -> list[str]:
    return [k for k in obj if k not in spec.deferred]


def q(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


FILTER_CASES = [(name, param) for name, spec in SPECS.items() for param in spec.filters]


@pytest.mark.parametrize("name", SPECS)
def test_minimal_create_key_order_and_defaults(api, anon, name):
    spec = SPECS[name]
    expected = [spec.pk, *spec.fields.split()]
    created, _ = create(api, name)
    assert keys(created, spec) == expected, "pk first, then fields as listed"
    assert {k: created[k] for k in spec.defaults} == spec.defaults, "D=x"
    assert keys(ok(anon.get(f"/api/{name}/{created[spec.pk]}/")), spec) == expected
    assert [keys(row, spec) for row in ok(anon.get(f"/api/{name}/"))] == [expected]


@pytest.mark.parametrize("name", SPECS)
def test_primary_key_and_read_only_fields(api, anon, name):
    spec = SPECS[name]
    sent = {"int": 987654, "uuid": str(uuid.uuid4()), "str": "my-key"}[spec.pk_kind]
    stale = dict.fromkeys(spec.read_only.split(), "1999-01-01T00:00:00Z")
    body, _ = minimal(api, name, **{spec.pk: sent}, **stale)
    created = ok(api.post(f"/api/{name}/", json=body), 201)
    key = created[spec.pk]
    if spec.client_pk:
        assert key == sent
        again = error(api.post(f"/api/{name}/", json=body))
        assert list(again) == [spec.pk] and "already exists" in again[spec.pk][0], again
    else:  # RO: set by the server, ignored on input
        assert key != sent
        if spec.pk_kind == "int":
            assert isinstance(key, int)
        else:
            assert str(uuid.UUID(key)) == key
    for f in stale:  # RO fields: set by the server, ignored on input
        assert created[f] and not created[f].startswith("1999"), (f, created[f])
    assert ok(anon.get(f"/api/{name}/{key}/")) == created


@pytest.mark.parametrize("name", SPECS)
def test_empty_body_names_exactly_the_required_fields(api, anon, name):
    assert error(api.post(f"/api/{name}/", json={})) == dict.fromkeys(SPECS[name].required.split(), REQUIRED)
    assert ok(anon.get(f"/api/{name}/")) == []


@pytest.mark.parametrize("name, overrides, expected", SPECIAL_RULES, ids=[r[0] for r in SPECIAL_RULES])
def test_special_required_rules(api, anon, name, overrides, expected):
    body, _ = minimal(api, name, **overrides)
    assert error(api.post(f"/api/{name}/", json=body)) == expected
    assert ok(anon.get(f"/api/{name}/")) == []


@pytest.mark.parametrize("name, param", FILTER_CASES, ids=[f"{n}?{p}" for n, p in FILTER_CASES])
def test_filter(api, anon, name, param):
    spec = SPECS[name]
    flt = spec.filters[param]
    flt = eq(param, *flt) if isinstance(flt, tuple) else flt
    a, n_a = create(api, name, **flt.a)
    b, _ = create(api, name, **flt.b)
    value = flt.query(a, n_a) if callable(flt.query) else flt.query
    base = f"/api/{name}/"
    assert ok(anon.get(base, params={param: q(value)})) == [a]
    if flt.symmetric:
        value_b = flt.b[param]
        assert ok(anon.get(base, params={param: q(value_b)})) == [b]
        both = ok(anon.get(base, params={param: f"{q(value)},{q(value_b)}"}))
        assert sorted(str(x[spec.pk]) for x in both) == sorted(str(x[spec.pk]) for x in (a, b))


@pytest.mark.parametrize("name", ORDERS)
def test_default_ordering(api, anon, name):
    rows_overrides, expected = ORDERS[name]
    pk = SPECS[name].pk
    created = [create(api, name, **o)[0][pk] for o in rows_overrides]
    want = sorted(created) if expected == "pk" else [created[i] for i in expected]
    assert [x[pk] for x in ok(anon.get(f"/api/{name}/"))] == want


# -- namespaces: read-only list/detail plus POST /api/namespaces/ensure/ (README §7) --------------------


def test_namespaces(api, anon):
    ensure = "/api/namespaces/ensure/"
    for name in ("ns-b", "ns-a"):
        body = {"name": name, "owner": "alice", "description": f"{name} data"}
        assert ok(api.post(ensure, json=body)) == dict(body, created=True, status="success")
    again = ok(api.post(ensure, json={"name": "ns-a", "owner": "bob", "description": "changed"}))
    kept = {"name": "ns-a", "owner": "alice", "description": "ns-a data"}
    assert again == dict(kept, created=False, status="success"), "an existing namespace is returned unchanged"
    detail = ok(anon.get("/api/namespaces/ns-a/"))
    assert list(detail) == ["name", "owner", "description", "metadata", "created_at", "updated_at"]
    assert (detail["owner"], detail["description"]) == ("alice", "ns-a data")
    assert [x["name"] for x in ok(anon.get("/api/namespaces/"))] == ["ns-a", "ns-b"]  # pk ascending


def test_namespaces_ensure_required_and_read_only(api):
    assert error(api.post("/api/namespaces/ensure/", json={"owner": "alice"})) == {
        "error": "name is required",
        "status": "error",
    }
    assert error(api.post("/api/namespaces/ensure/", json={"name": "ns"})) == {
        "error": "owner is required",
        "status": "error",
    }
    assert error(api.post("/api/namespaces/", json={"name": "ns", "owner": "alice"}), 405)
    ok(api.post("/api/namespaces/ensure/", json={"name": "ns", "owner": "alice"}))
    for method in ("PUT", "PATCH", "DELETE"):
        assert error(api.request(method, "/api/namespaces/ns/", json={"owner": "bob"}), 405)
