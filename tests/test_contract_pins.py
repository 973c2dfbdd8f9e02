"""Contract pins: what ``resources.md`` (and README §3-§4, §7-§8) says about every resource, transcribed by
hand into the tables below and checked against a real server over the wire.

The other API tests derive their expectations from ``swf_lite.catalog``, so a wrong declaration there
would pass them. This module never imports the declarations: a wrong primary key, field order,
required set, default, filter, typed filter value, default ordering or run lifecycle rule in the catalog
or the service fails a test here. When the contract changes, change these tables by reading the contract,
never by reading the catalog.

``ai-memory`` has no resource entry in ``resources.md`` and is not pinned here.
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
    match. ``query`` may be a function ``(api, row, n)`` of row ``a`` as created and its ``n`` (filters
    through parents); an override may be a function ``(api, n)`` of the row's ``n`` (a parent of its own)."""

    a: dict[str, Any] = field(default_factory=dict)
    b: dict[str, Any] = field(default_factory=dict)
    query: Any = None
    symmetric: bool = False  # also ``?param=<b's value>`` → [b], and ``a,b`` → both (README §4)


def eq(name: str, a: Any, b: Any) -> Filter:
    return Filter({name: a}, {name: b}, a, symmetric=True)


def via(query: Callable[[Any, dict[str, Any], int], Any], **overrides: Any) -> Filter:
    """A filter through a foreign key (or on a server-assigned key): the two rows get different parents
    (``overrides`` on both)."""
    return Filter(dict(overrides), dict(overrides), query)


def own_fastmon_file(api, n: int) -> str:
    """A slice's ``fastmon_file``: a FastMonFile made with the slice's ``n`` (tf_filename ``run<n>_tf.tf``,
    its STF file ``run<n>.stf``)."""
    return parent(api, "fastmon-files", n)["tf_filename"]


def tf_file_id(api, tf_filename: str) -> str:
    """The ``tf_file_id`` of the FastMonFile named ``tf_filename``."""
    found = ok(api.get("/api/fastmon-files/", params={"tf_filename": tf_filename}))
    assert len(found) == 1, found
    return found[0]["tf_file_id"]


@dataclass
class Spec:
    key: str  # "<pk> <int|uuid|str> <RO|client>": server-assigned (RO) or client-supplied (R U)
    fields: str  # in contract order, pk excluded
    required: str
    defaults: dict[str, Any] = field(default_factory=dict)
    read_only: str = ""  # RO fields besides the pk
    filters: dict[str, tuple | Filter] = field(default_factory=dict)

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
        "daq_substate workflow_status tf_count run",
        "stf_filename run",
        {"machine_state": "physics", "status": "registered"},
        "created_at",
        {
            "stf_filename": ("a.stf", "b.stf"),
            "run": via(lambda api, row, n: row["run"]),  # the run's run_id
            "run_number": via(lambda api, row, n: 100000 + n),
            "status": ("processed", "failed"),
            "machine_state": ("physics", "cosmics"),
            "workflow_id": (U1, U2),
        },
    ),
    "fastmon-files": Spec(
        "tf_file_id uuid RO",
        "stf_file tf_filename tf_first tf_last tf_count file_size_bytes checksum status metadata created_at updated_at",
        "stf_file tf_filename",
        {"status": "registered"},
        "created_at updated_at",
        {
            "tf_filename": ("a_tf.tf", "b_tf.tf"),
            "stf_filename": via(lambda api, row, n: row["stf_file"]),
            "status": ("processing", "done"),
            "run_number": via(lambda api, row, n: 100000 + n),
        },
    ),
    "tf-slices": Spec(
        "id int RO",
        "fastmon_file slice_id tf_first tf_last tf_count tf_filename stf_filename run_number status retries metadata "
        "created_at updated_at assigned_worker assigned_at completed_at",
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
            "id": via(lambda api, row, n: row["id"]),
            # through the parent: both rows get the same flat name, so only the parent tells them apart
            "fastmon_file_id": via(
                lambda api, row, n: tf_file_id(api, row["fastmon_file"]), fastmon_file=own_fastmon_file
            ),
            "fastmon_file__tf_filename": via(
                lambda api, row, n: row["fastmon_file"], fastmon_file=own_fastmon_file, tf_filename="same_slice_001.tf"
            ),
            "fastmon_file__stf_file__stf_filename": via(
                lambda api, row, n: f"run{n}.stf", fastmon_file=own_fastmon_file, stf_filename="same.stf"
            ),
        },
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
            "workflow": via(lambda api, row, n: row["workflow"]),
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
            "workflow_name": via(lambda api, row, n: f"wf-{n}"),  # the definition's workflow_name
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

# Validation rules beyond "absent": (resource, overrides of a minimal body, the 400 body).
SPECIAL_RULES = [
    ("logs", {"message": ""}, {"message": ["This field may not be blank."]}),
    ("workflow-definitions", {"definition": ""}, {"definition": ["This field may not be blank."]}),
    ("system-state-events", {"event_data": None}, {"event_data": ["This field may not be null."]}),
    ("stf-files", {"tf_count": "many"}, {"tf_count": ["A valid integer is required."]}),
    (
        "tf-slices",
        {"fastmon_file": "nope_tf.tf"},
        {"fastmon_file": ["Object with tf_filename=nope_tf.tf does not exist."]},
    ),
]


def minimal(api, name: str, **overrides: Any) -> tuple[dict[str, Any], int]:
    """A minimal body with ``overrides`` (a callable override is called with ``(api, n)``) and its ``n``."""
    n = next(_n)
    resolved = {k: v(api, n) if callable(v) else v for k, v in overrides.items()}
    return dict(MINIMAL[name](api, n), **resolved), n


def create(api, name: str, **overrides: Any) -> tuple[dict[str, Any], int]:
    body, n = minimal(api, name, **overrides)
    return ok(api.post(f"/api/{name}/", json=body), 201), n


def q(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


FILTER_CASES = [(name, param) for name, spec in SPECS.items() for param in spec.filters]


@pytest.mark.parametrize("name", SPECS)
def test_minimal_create_key_order_and_defaults(api, anon, name):
    spec = SPECS[name]
    expected = [spec.pk, *spec.fields.split()]
    created, _ = create(api, name)
    assert list(created) == expected, "pk first, then fields as listed"
    assert {k: created[k] for k in spec.defaults} == spec.defaults, "D=x"
    assert list(ok(anon.get(f"/api/{name}/{created[spec.pk]}/"))) == expected
    assert [list(row) for row in ok(anon.get(f"/api/{name}/"))] == [expected]


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


@pytest.mark.parametrize(
    "name, overrides, expected", SPECIAL_RULES, ids=[f"{r[0]}.{next(iter(r[2]))}" for r in SPECIAL_RULES]
)
def test_special_validation_rules(api, anon, name, overrides, expected):
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
    value = flt.query(api, a, n_a) if callable(flt.query) else flt.query
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


# -- stf-files tf_count; tf-slices fastmon_file (resources.md) ---------------------------------------

FLAT = ("tf_filename", "stf_filename")  # a slice's flat names: R* (required unless fastmon_file is given)
NULL_WHEN_ABSENT = [("stf-files", "tf_count"), ("tf-slices", "fastmon_file")]  # O N, no D=


def fastmon(api, tf_filename: str) -> dict[str, Any]:
    """A FastMonFile named ``tf_filename`` (with an STF file of its own) as created."""
    stf = parent(api, "stf-files", next(_n))
    return ok(api.post("/api/fastmon-files/", json={"stf_file": stf["stf_filename"], "tf_filename": tf_filename}), 201)


def post_slice(api, without: tuple[str, ...] = (), **overrides: Any):
    """POST a minimal slice with ``overrides``, leaving out the fields named in ``without``."""
    body, _ = minimal(api, "tf-slices", **overrides)
    return api.post("/api/tf-slices/", json={k: v for k, v in body.items() if k not in without})


@pytest.mark.parametrize("name, name_of_field", NULL_WHEN_ABSENT)
def test_optional_field_without_default_is_null(api, anon, name, name_of_field):
    created, _ = create(api, name)
    assert created[name_of_field] is None
    assert ok(anon.get(f"/api/{name}/{created[SPECS[name].pk]}/"))[name_of_field] is None


def test_stf_file_tf_count_stored_and_echoed(api, anon):
    created, _ = create(api, "stf-files", tf_count=12)
    detail = f"/api/stf-files/{created['file_id']}/"
    assert (created["tf_count"], ok(anon.get(detail))["tf_count"]) == (12, 12)
    assert ok(api.patch(detail, json={"tf_count": 3}))["tf_count"] == 3
    assert ok(api.patch(detail, json={"tf_count": None}))["tf_count"] is None  # N
    assert ok(anon.get(detail))["tf_count"] is None


def test_slice_with_fastmon_file_takes_the_parents_names(api, anon):
    fm = fastmon(api, "A_tf_003.tf")
    created = ok(post_slice(api, without=FLAT, fastmon_file="A_tf_003.tf"), 201)
    assert list(created)[:2] == ["id", "fastmon_file"], "fastmon_file right after id"
    got = (created["fastmon_file"], created["tf_filename"], created["stf_filename"])
    assert got == ("A_tf_003.tf", "A_tf_003.tf", fm["stf_file"]), "defaults: the parent's tf and STF filenames"
    assert ok(anon.get(f"/api/tf-slices/{created['id']}/")) == created
    given = {"tf_filename": "A_tf_003_slice_002.tf", "stf_filename": "other.stf"}
    explicit = ok(post_slice(api, fastmon_file="A_tf_003.tf", **given), 201)
    assert {k: explicit[k] for k in ("fastmon_file", *FLAT)} == dict(given, fastmon_file="A_tf_003.tf")


def test_slice_required_set_with_fastmon_file(api, anon):
    fastmon(api, "A_tf.tf")
    required = "slice_id tf_first tf_last tf_count run_number"  # R* fields not required with a parent
    assert error(api.post("/api/tf-slices/", json={"fastmon_file": "A_tf.tf"})) == dict.fromkeys(
        required.split(), REQUIRED
    )
    unknown = error(post_slice(api, without=FLAT, fastmon_file="nope_tf.tf"))
    assert unknown == {"fastmon_file": ["Object with tf_filename=nope_tf.tf does not exist."]}
    assert error(post_slice(api, without=FLAT)) == dict.fromkeys(FLAT, REQUIRED), "R* without a parent"
    assert ok(anon.get("/api/tf-slices/")) == []


# Parent derivation without fastmon_file: (FastMonFiles present, the slice's tf_filename, its fastmon_file).
DERIVATION = [
    (["A_tf_003.tf"], "A_tf_003_slice_001.tf", "A_tf_003.tf"),  # the contract's example
    (["A_tf_003.tf"], "A_tf_003_slice_0042.tf", "A_tf_003.tf"),  # any number of digits
    (["A_tf_003.tf"], "A_tf_003.tf", "A_tf_003.tf"),  # exact match
    (["A_tf_003.tf", "A_tf_003_slice_001.tf"], "A_tf_003_slice_001.tf", "A_tf_003_slice_001.tf"),  # exact first
    (["A_tf_003.tf"], "A_tf_003_slice_x.tf", None),  # not digits
    (["A_tf_003.tf"], "A_tf_003_slice_001.dat", None),  # the extension is kept: A_tf_003.dat
    (["A_tf_003.tf"], "B_tf_003_slice_001.tf", None),
    ([], "A_tf_003_slice_001.tf", None),
]


@pytest.mark.parametrize("parents, tf_filename, expected", DERIVATION, ids=[d[1] + f"-{len(d[0])}" for d in DERIVATION])
def test_slice_parent_derived_from_its_name(api, anon, parents, tf_filename, expected):
    for name in parents:
        fastmon(api, name)
    created = ok(post_slice(api, tf_filename=tf_filename), 201)
    assert (created["fastmon_file"], created["tf_filename"]) == (expected, tf_filename)
    assert ok(anon.get(f"/api/tf-slices/{created['id']}/"))["fastmon_file"] == expected


def test_slice_parent_derived_whenever_the_slice_is_written(api, anon):
    body, _ = minimal(api, "tf-slices", tf_filename="L_tf_slice_001.tf")
    created = ok(api.post("/api/tf-slices/", json=body), 201)
    assert created["fastmon_file"] is None, "no parent yet"
    fastmon(api, "L_tf.tf")
    fastmon(api, "M_tf.tf")
    detail = f"/api/tf-slices/{created['id']}/"
    assert ok(api.patch(detail, json={"status": "processing"}))["fastmon_file"] == "L_tf.tf"
    assert ok(api.patch(detail, json={"tf_filename": "M_tf_slice_001.tf"}))["fastmon_file"] == "M_tf.tf"
    assert ok(api.patch(detail, json={"tf_filename": "Z_tf_slice_001.tf"}))["fastmon_file"] is None
    assert ok(api.put(detail, json=body))["fastmon_file"] == "L_tf.tf"
    assert ok(anon.get(detail))["fastmon_file"] == "L_tf.tf"


def test_slice_unique_together_fastmon_file_and_slice_id(api, anon):
    fastmon(api, "U_tf.tf")
    fastmon(api, "V_tf.tf")
    first = ok(post_slice(api, fastmon_file="U_tf.tf", slice_id=1, tf_filename="U_tf_slice_001.tf"), 201)
    clash = post_slice(api, fastmon_file="U_tf.tf", slice_id=1, tf_filename="other_slice_001.tf")
    assert error(clash) == {"non_field_errors": ["The fields fastmon_file, slice_id must make a unique set."]}
    other = ok(post_slice(api, fastmon_file="V_tf.tf", slice_id=1, tf_filename="V_tf_slice_001.tf"), 201)
    # only when set: parentless slices may share a slice_id
    loose = [ok(post_slice(api, slice_id=1, tf_filename=f"W{i}_slice_001.tf"), 201) for i in (1, 2)]
    assert [x["fastmon_file"] for x in loose] == [None, None]
    assert [x["id"] for x in ok(anon.get("/api/tf-slices/"))] == [x["id"] for x in (first, other, *loose)]


def test_slice_filters_through_the_parent_take_comma_lists(api, anon):
    a, _ = create(api, "tf-slices", fastmon_file=own_fastmon_file)
    b, _ = create(api, "tf-slices", fastmon_file=own_fastmon_file)
    c, _ = create(api, "tf-slices")  # no parent
    assert c["fastmon_file"] is None

    def ids(**params: str) -> list[int]:
        return sorted(x["id"] for x in ok(anon.get("/api/tf-slices/", params=params)))

    both = sorted([a["id"], b["id"]])
    assert ids(id=f"{a['id']},{b['id']}") == both
    assert ids(id=str(c["id"])) == [c["id"]]
    tf_ids = [tf_file_id(api, x["fastmon_file"]) for x in (a, b)]
    assert ids(fastmon_file_id=",".join(tf_ids)) == both
    assert ids(fastmon_file__tf_filename=f"{a['fastmon_file']},{b['fastmon_file']}") == both
    assert ids(fastmon_file__stf_file__stf_filename="nope.stf") == []
    assert ids(fastmon_file_id=str(uuid.uuid4())) == [], "a well-formed unknown parent: [], never 400"


# -- typed filter values (README §4) ---------------------------------------------------------------

NUMBER, VALID_UUID, DATE_TIME = ["Enter a number."], ["Enter a valid UUID."], ["Enter a valid date/time."]
# (resource, param, a bad value, the 400 message, a well-formed value that matches nothing)
TYPED = [
    ("logs", "level", "high", NUMBER, "50"),
    ("logs", "min_level", "high", NUMBER, "50"),
    ("logs", "start_time", "yesterday", DATE_TIME, at(10**6)),
    ("logs", "end_time", "31/03/2026 12:00", DATE_TIME, "2000-01-01T00:00:00Z"),
    ("runs", "run_number", "abc", NUMBER, "999999"),
    ("stf-files", "run", "abc", NUMBER, "999999"),
    ("stf-files", "run_number", "12x", NUMBER, "999999"),
    ("stf-files", "workflow_id", "not-a-uuid", VALID_UUID, U2),
    ("fastmon-files", "run_number", "abc", NUMBER, "999999"),
    ("tf-slices", "run_number", "abc", NUMBER, "999999"),
    ("tf-slices", "slice_id", "one", NUMBER, "999999"),
    ("tf-slices", "id", "first", NUMBER, "999999"),
    ("tf-slices", "fastmon_file_id", "not-a-uuid", VALID_UUID, U2),
    ("workers", "run_number", "abc", NUMBER, "999999"),
    ("system-state-events", "run_number", "abc", NUMBER, "999999"),
    ("workflow-stages", "workflow", "not-a-uuid", VALID_UUID, U2),
]
BOUNDS = {"min_level", "start_time", "end_time"}  # not exact matches: no comma lists

# Every bad parameter at once: (resource, query, the 400 body). String filters take any value.
ALL_AT_ONCE = [
    ("tf-slices", {"run_number": "x", "slice_id": "y"}, {"run_number": NUMBER, "slice_id": NUMBER}),  # README
    (
        "tf-slices",
        {"id": "x", "fastmon_file_id": "y", "status": "z", "run_number": "1"},
        {"id": NUMBER, "fastmon_file_id": VALID_UUID},
    ),
    (
        "stf-files",
        {"run": "x", "run_number": "y", "workflow_id": "z", "stf_filename": "w"},
        {"run": NUMBER, "run_number": NUMBER, "workflow_id": VALID_UUID},
    ),
    (
        "logs",
        {"level": "x", "min_level": "y", "start_time": "z", "end_time": "w", "app_name": "v"},
        {"level": NUMBER, "min_level": NUMBER, "start_time": DATE_TIME, "end_time": DATE_TIME},
    ),
]
STRING_FILTERS = [("workflows", "run_id"), ("workflow-messages", "run_id"), ("tf-slices", "status")]


@pytest.mark.parametrize("name, param, bad, message, nomatch", TYPED, ids=[f"{t[0]}?{t[1]}" for t in TYPED])
def test_typed_filter_value(api, anon, name, param, bad, message, nomatch):
    row, _ = create(api, name)
    base = f"/api/{name}/"
    assert error(anon.get(base, params={param: bad})) == {param: message}
    assert ok(anon.get(base, params={param: nomatch})) == [], "well-formed, no match: [], never 400"
    assert ok(anon.get(base, params={param: ""})) == [row], "an empty value: not applied"
    if param not in BOUNDS:  # comma lists: each element checked
        assert error(anon.get(base, params={param: f"{nomatch},{bad}"})) == {param: message}
        assert ok(anon.get(base, params={param: f"{nomatch},{nomatch}"})) == []


@pytest.mark.parametrize("name, query, expected", ALL_AT_ONCE, ids=[f"{a[0]}?{'&'.join(a[1])}" for a in ALL_AT_ONCE])
def test_every_bad_filter_value_at_once(api, anon, name, query, expected):
    create(api, name)
    assert error(anon.get(f"/api/{name}/", params=query)) == expected


@pytest.mark.parametrize("name, param", STRING_FILTERS)
def test_string_filter_takes_any_value(api, anon, name, param):
    create(api, name, **{param: "100010"})
    assert ok(anon.get(f"/api/{name}/", params={param: "not-a-number"})) == []


# -- workflow-messages ordering under ?execution_id= (resources.md) ---------------------------------


def test_workflow_messages_oldest_first_under_execution_id(api, anon):
    made = [create(api, "workflow-messages", execution_id=e)[0] for e in ("exec-a", "exec-b", "exec-a", "exec-a")]
    ids = [m["message_id"] for m in made]
    a_ids = [m["message_id"] for m in made if m["execution_id"] == "exec-a"]
    base = "/api/workflow-messages/"

    def listed(**params: str) -> list[str]:
        return [m["message_id"] for m in ok(anon.get(base, params=params))]

    assert listed() == ids[::-1], "-sent_at without ?execution_id="
    assert listed(execution_id="exec-a") == a_ids, "sent_at ascending"
    assert listed(execution_id="exec-a,exec-b") == ids
    assert listed(execution_id="exec-a", ordering="-sent_at") == a_ids[::-1], "an explicit ?ordering= wins"
    assert listed(message_type="data_ready") == ids[::-1], "other filters keep -sent_at"


# -- run lifecycle → RunState (README §8) ----------------------------------------------------------

RUN = 200001
COUNTERS = "active_worker_count stf_samples_received slices_created slices_queued slices_processing slices_completed"
COUNTERS += " slices_failed"
CREATED = dict(  # a RunState created by a lifecycle message
    {"phase": "initializing", "state": "imminent", "substate": "preparing", "target_worker_count": 0},
    **dict.fromkeys(COUNTERS.split(), 0),
    metadata={},
)
EXISTING = {  # a RunState a client made before the message
    "run_number": RUN,
    "phase": "warmup",
    "state": "beam",
    "substate": "not_ready",
    "target_worker_count": 5,
    "active_worker_count": 3,
    "slices_created": 7,
    "slices_failed": 1,
    "state_changed_at": at(0),
    "metadata": {"k": 1},
}


def post_message(api, message_type: str, content: Any, **columns: Any) -> dict[str, Any]:
    """POST /api/workflow-messages/ (token) and return the stored message."""
    body = dict(columns, message_type=message_type, message_content=content)
    return ok(api.post("/api/workflow-messages/", json=body), 201)


def lifecycle(api, msg_type: str, run_id: Any = RUN, **content: Any) -> dict[str, Any]:
    """A lifecycle message as the testbed sends it: ``msg_type`` and ``run_id`` in the content."""
    return post_message(api, msg_type, dict(content, msg_type=msg_type, run_id=run_id))


def run_state(anon, number: int = RUN) -> dict[str, Any]:
    return ok(anon.get(f"/api/run-states/{number}/"))


def plain(state: dict[str, Any]) -> dict[str, Any]:
    """A RunState without its timestamps."""
    return {k: v for k, v in state.items() if k not in ("state_changed_at", "updated_at")}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def case_id(msg_type: str, content: dict[str, Any]) -> str:
    return ",".join([msg_type, *(f"{k}={v!r}" for k, v in content.items())])


def changed_now(state: dict[str, Any], message: dict[str, Any]) -> None:
    """``state_changed_at`` = now: the server time the message was stored at."""
    assert abs(when(state["state_changed_at"]) - when(message["sent_at"])) < dt.timedelta(seconds=5), state


# (message type, message_content besides msg_type and run_id, the fields that differ from CREATED)
ON_A_NEW_RUN = [
    ("run_imminent", {}, {}),
    ("run_imminent", {"state": "beam", "substate": "not_ready"}, {"state": "beam", "substate": "not_ready"}),
    ("start_run", {}, {"phase": "physics"}),
    ("start_run", {"state": "run", "substate": "physics"}, {"phase": "physics", "state": "run", "substate": "physics"}),
    ("pause_run", {"state": "run", "substate": "standby"}, {"phase": "physics", "state": "run", "substate": "standby"}),
    (
        "resume_run",
        {"state": "run", "substate": "physics"},
        {"phase": "physics", "state": "run", "substate": "physics"},
    ),
    ("end_run", {}, {"phase": "completed", "state": "ended", "substate": None}),
    ("end_run", {"state": "run", "substate": "physics"}, {"phase": "completed", "state": "ended", "substate": None}),
    ("start_run", {"execution_id": "exec-1"}, {"phase": "physics", "metadata": {"execution_id": "exec-1"}}),
]
# (message type, message_content besides msg_type and run_id, the fields that differ from EXISTING)
ON_AN_EXISTING_RUN = [
    ("run_imminent", {}, {}),  # phase left alone
    ("run_imminent", {"state": "run", "substate": "physics"}, {"state": "run", "substate": "physics"}),
    ("start_run", {}, {"phase": "physics"}),
    ("start_run", {"state": "run", "substate": "physics"}, {"phase": "physics", "state": "run", "substate": "physics"}),
    ("pause_run", {"state": "", "substate": "standby"}, {"phase": "physics", "substate": "standby"}),  # "" kept
    ("resume_run", {"state": "run", "substate": ""}, {"phase": "physics", "state": "run"}),
    ("pause_run", {"substate": 3}, {"phase": "physics", "substate": "3"}),  # as text
    ("end_run", {"state": "run"}, {"phase": "completed", "state": "ended", "substate": None}),
]
# metadata.execution_id only when missing: (metadata before, the message's execution_id, metadata after)
METADATA = [
    ({"k": 1}, "exec-new", {"k": 1, "execution_id": "exec-new"}),
    ({"execution_id": "exec-old", "k": 1}, "exec-new", {"execution_id": "exec-old", "k": 1}),
    (None, "exec-new", {"execution_id": "exec-new"}),  # not an object: {} first
    ([1, 2], "exec-new", {"execution_id": "exec-new"}),
    ("text", "exec-new", {"execution_id": "exec-new"}),
    (None, None, None),  # no execution_id: nothing else changes
    ([1, 2], None, [1, 2]),
    ({"k": 1}, None, {"k": 1}),
]
# Inputs from message_content, each falling back to the message's own column:
# (id, message_type column, message_content, other columns, the run moved or None, metadata after).
FALLBACKS = [
    ("type from the column", "start_run", {"run_id": RUN}, {}, RUN, {}),
    ("run_id from the column", "start_run", {"msg_type": "start_run"}, {"run_id": str(RUN)}, RUN, {}),
    ("content msg_type wins", "data_ready", {"msg_type": "start_run", "run_id": RUN}, {}, RUN, {}),
    ("content msg_type wins, not lifecycle", "start_run", {"msg_type": "data_ready", "run_id": RUN}, {}, None, {}),
    ("content run_id wins", "start_run", {"run_id": RUN + 1}, {"run_id": str(RUN)}, RUN + 1, {}),
    ("run_id as a string", "start_run", {"run_id": str(RUN)}, {}, RUN, {}),
    (
        "execution_id from the column",
        "start_run",
        {"run_id": RUN},
        {"execution_id": "exec-col"},
        RUN,
        {"execution_id": "exec-col"},
    ),
    (
        "content execution_id wins",
        "start_run",
        {"run_id": RUN, "execution_id": "exec-content"},
        {"execution_id": "exec-col"},
        RUN,
        {"execution_id": "exec-content"},
    ),
]
NOT_AN_INTEGER = ["abc", "1.5", 1.5, float(RUN), "", None, True, [RUN], {"n": RUN}]  # int(str(v)) fails
NOT_LIFECYCLE = ["data_ready", "stf_gen", "Start_Run", "run_started", "stop_run"]


@pytest.mark.parametrize("msg_type, content, changes", ON_A_NEW_RUN, ids=[case_id(*c[:2]) for c in ON_A_NEW_RUN])
def test_lifecycle_message_creates_the_run_state(api, anon, msg_type, content, changes):
    message = lifecycle(api, msg_type, **content)
    state = run_state(anon)
    assert plain(state) == dict(CREATED, run_number=RUN, **changes)
    changed_now(state, message)
    assert ok(anon.get("/api/run-states/")) == [state]
    assert ok(anon.get(f"/api/workflow-messages/{message['message_id']}/")) == message, "the message is stored"


@pytest.mark.parametrize(
    "msg_type, content, changes", ON_AN_EXISTING_RUN, ids=[case_id(*c[:2]) for c in ON_AN_EXISTING_RUN]
)
def test_lifecycle_message_moves_the_run_state(api, anon, msg_type, content, changes):
    before = ok(api.post("/api/run-states/", json=EXISTING), 201)
    message = lifecycle(api, msg_type, **content)
    after = run_state(anon)
    assert plain(after) == dict(plain(before), **changes), "nothing else changes"
    assert after["state_changed_at"] != before["state_changed_at"]
    changed_now(after, message)


@pytest.mark.parametrize("before, execution_id, after", METADATA, ids=[f"{m[0]!r}+{m[1]}" for m in METADATA])
def test_lifecycle_message_sets_execution_id_only_when_missing(api, anon, before, execution_id, after):
    ok(api.post("/api/run-states/", json=dict(EXISTING, metadata=before)), 201)
    lifecycle(api, "start_run", **({"execution_id": execution_id} if execution_id else {}))
    assert run_state(anon)["metadata"] == after


@pytest.mark.parametrize(
    "message_type, content, columns, moved, metadata", [f[1:] for f in FALLBACKS], ids=[f[0] for f in FALLBACKS]
)
def test_lifecycle_inputs_fall_back_to_the_columns(api, anon, message_type, content, columns, moved, metadata):
    post_message(api, message_type, content, **columns)
    states = ok(anon.get("/api/run-states/"))
    if moved is None:
        assert states == []
    else:
        assert [plain(s) for s in states] == [dict(CREATED, run_number=moved, phase="physics", metadata=metadata)]


@pytest.mark.parametrize("run_id", NOT_AN_INTEGER, ids=repr)
def test_lifecycle_run_id_not_an_integer_stores_the_message_only(api, anon, run_id):
    message = lifecycle(api, "start_run", run_id, state="run")
    assert ok(anon.get("/api/run-states/")) == [], "no transition"
    assert ok(anon.get("/api/workflow-messages/")) == [message], "the message is still stored"


@pytest.mark.parametrize("msg_type", NOT_LIFECYCLE)
def test_other_message_types_leave_run_states_alone(api, anon, msg_type):
    before = ok(api.post("/api/run-states/", json=EXISTING), 201)
    lifecycle(api, msg_type, state="run", substate="physics")
    lifecycle(api, msg_type, RUN + 1, state="run", substate="physics")
    assert ok(anon.get("/api/run-states/")) == [before], "no transition, no new RunState"


def test_lifecycle_message_rejected_moves_nothing(api, anon):
    content = {"msg_type": "start_run", "run_id": RUN}
    bad = api.post("/api/workflow-messages/", json={"message_type": "start_run", "run_id": str(RUN)})
    assert error(bad) == {"message_content": REQUIRED}
    wrong = {"message_type": "start_run", "message_content": content, "sender_type": "bogus"}
    assert error(api.post("/api/workflow-messages/", json=wrong)) == {"sender_type": ['"bogus" is not a valid choice.']}
    denied = anon.post("/api/workflow-messages/", json={"message_type": "start_run", "message_content": content})
    assert error(denied, 401) == {"detail": "Authentication credentials were not provided."}
    assert (ok(anon.get("/api/workflow-messages/")), ok(anon.get("/api/run-states/"))) == ([], [])


def test_lifecycle_testbed_run_sequence(api, anon):
    """The testbed's run: each message moves the run; the agent's own PATCHes stay on top."""
    steps = [
        ("run_imminent", {"state": "beam", "substate": "not_ready"}, ("initializing", "beam", "not_ready")),
        ("start_run", {"state": "run", "substate": "physics"}, ("physics", "run", "physics")),
        ("pause_run", {"state": "run", "substate": "standby"}, ("physics", "run", "standby")),
        ("resume_run", {"state": "run", "substate": "physics"}, ("physics", "run", "physics")),
        ("end_run", {}, ("completed", "ended", None)),
    ]
    patch = {"target_worker_count": 4, "slices_created": 2}
    seen: list[str] = []
    for i, (msg_type, content, expected) in enumerate(steps):
        message = lifecycle(api, msg_type, execution_id=f"exec-{i + 1}", **content)
        state = run_state(anon)
        assert (state["phase"], state["state"], state["substate"]) == expected, msg_type
        assert state["metadata"] == {"execution_id": "exec-1"}, "set once, by the first message"
        assert {k: state[k] for k in patch} == (patch if i else {"target_worker_count": 0, "slices_created": 0})
        changed_now(state, message)
        seen.append(state["state_changed_at"])
        if i == 0:
            ok(api.patch(f"/api/run-states/{RUN}/", json=patch))
    assert [when(t) for t in seen] == sorted(when(t) for t in seen) and len(set(seen)) == len(seen)


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
