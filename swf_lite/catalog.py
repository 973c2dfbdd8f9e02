"""The REST resources, each declared once.

Models, routes, validation, serialization, filters, the OpenAPI document, the seed loader and the
pages' columns are all derived from these declarations. To add a field, add one ``F(...)`` line
here; the table gains the column at the next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # marker: no default, the client must send the field

FILE_STATUS = ("registered", "processing", "processed", "failed", "done")
AGENT_TYPE = ("daqsim", "data", "processing", "fastmon", "workflow_runner", "monitor",
              "sse_sender", "sse_receiver", "test", "other")  # fmt: skip
AGENT_STATUS = ("UNKNOWN", "OK", "WARNING", "ERROR", "EXITED")
OPERATIONAL_STATE = ("STARTING", "READY", "PROCESSING", "EXITED")
WORKFLOW_STATUS = (
    "generated", "daqsim_received", "daqsim_processing", "daqsim_complete", "data_received",
    "data_processing", "data_complete", "processing_received", "processing_processing",
    "processing_complete", "fastmon_received", "fastmon_processing", "fastmon_complete",
    "workflow_complete", "failed",
)  # fmt: skip
WORKFLOW_AGENT = ("daqsim", "data", "processing", "fastmon", "monitor")
DAQ_STATE = ("no_beam", "beam", "run", "calib", "test")
DAQ_SUBSTATE = ("not_ready", "ready", "physics", "standby", "lumi", "eic", "epic", "daq", "calib")
LOG_LEVELS = (50, 40, 30, 20, 10, 0)


@dataclass(frozen=True)
class F:
    """One field. ``kind`` is one of: int, int64, float, bool, str, text, datetime, json, uuid,
    ip, url, fk. ``default`` may be a value, :data:`REQUIRED`, or a callable's name in
    ``auto`` (``now`` on every write, ``created`` on insert, ``uuid`` on insert)."""

    name: str
    kind: str
    default: Any = None
    null: bool = False
    max_length: int | None = None
    choices: tuple[str | int, ...] | None = None
    unique: bool = False
    read_only: bool = False
    auto: str | None = None  # "created" | "now" | "uuid"
    to: str | None = None  # fk: target resource name
    to_field: str | None = None  # fk: target field the JSON shows (default: its pk)
    blank: bool | None = None  # None: blank allowed unless required

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and not self.read_only

    @property
    def allow_blank(self) -> bool:
        return (not self.required) if self.blank is None else self.blank


def req(name: str, kind: str, **kw: Any) -> F:
    """A required field."""
    return F(name, kind, default=REQUIRED, **kw)


def opt(name: str, kind: str, **kw: Any) -> F:
    """An optional nullable field, default null."""
    return F(name, kind, null=True, **kw)


def reqs(kind: str, *names: str, **kw: Any) -> tuple[F, ...]:
    """Several required fields of one kind (as the contract lists them: ``a``, ``b`` int R)."""
    return tuple(req(name, kind, **kw) for name in names)


def opts(kind: str, *names: str, **kw: Any) -> tuple[F, ...]:
    """Several optional nullable fields of one kind."""
    return tuple(opt(name, kind, **kw) for name in names)


def counts(*names: str) -> tuple[F, ...]:
    """Integer counters that start at 0."""
    return tuple(F(name, "int", default=0) for name in names)


def ro(name: str, kind: str = "datetime", auto: str = "created") -> F:
    """A read-only field the server sets."""
    return F(name, kind, null=True, read_only=True, auto=auto)


def auto_pk(name: str) -> F:
    """An integer primary key the database assigns (never reused)."""
    return F(name, "int", read_only=True)


def uuid_pk(name: str) -> F:
    """A UUID primary key the server generates on insert."""
    return F(name, "uuid", read_only=True, auto="uuid")


def created() -> tuple[F, F]:
    return ro("created_at"), ro("updated_at", auto="now")


@dataclass(frozen=True)
class Filter:
    """A query parameter. ``path`` is the field (or fk.field chain); ``op``: eq, ge, le, search."""

    param: str
    path: str
    op: str = "eq"
    kind: str | None = None  # value type when the path leaves this resource


@dataclass(frozen=True)
class Resource:
    """One REST resource. Write it with keyword arguments: the declaration is the documentation."""

    name: str  # URL segment: /api/<name>/
    model: str  # Django model name, used in 404 wording and table naming
    pk: F
    fields: tuple[F, ...]
    filters: tuple[Filter, ...] = ()
    ordering: tuple[str, ...] = ()  # default sort (the primary key always breaks ties)
    # (filter param, ordering): the default sort while that filter is applied (``?ordering=`` still wins)
    filter_ordering: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unique_together: tuple[tuple[str, ...], ...] = ()
    anonymous_write: bool = False
    writable: bool = True  # False: read-only list/detail (writes go through special endpoints)
    generic: bool = True  # False: only special handlers serve it (no generic routes)
    verbose_name: str | None = None
    description: str = ""
    # Rows carry a storage-order number (an internal ``seq`` column): the live stream's event id
    # and the position replay resumes from.
    sequenced: bool = False
    # Display: the columns a list page shows (default: the key and the first fields), and the field
    # that names a row where another row links to it (default: the key).
    columns: tuple[str, ...] = ()
    title_field: str | None = None

    @property
    def all_fields(self) -> tuple[F, ...]:
        return (self.pk, *self.fields)

    def field(self, name: str) -> F:
        for f in self.all_fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def list_columns(self) -> tuple[str, ...]:
        return self.columns or tuple(f.name for f in self.all_fields[:7])

    @property
    def title(self) -> str:
        return self.title_field or self.pk.name

    @property
    def table(self) -> str:
        return self.name.replace("-", "_")

    @property
    def label(self) -> str:
        """Django's default verbose name: ``StfFile`` -> ``stf file``."""
        if self.verbose_name:
            return self.verbose_name
        return re.sub(r"(((?<=[a-z])[A-Z])|([A-Z](?![A-Z]|$)))", r" \1", self.model).strip().lower()


def eq(*params: str) -> tuple[Filter, ...]:
    """Exact-match filters on same-named fields."""
    return tuple(Filter(p, p) for p in params)


AUTO_ID = auto_pk("id")

RESOURCES: tuple[Resource, ...] = (
    Resource(
        name="systemagents", model="SystemAgent", pk=AUTO_ID,
        fields=(
            req("instance_name", "str", max_length=100, unique=True),
            req("agent_type", "str", max_length=20, choices=AGENT_TYPE),
            F("description", "text", default=""),
            F("status", "str", default="UNKNOWN", max_length=20, choices=AGENT_STATUS),
            opt("last_heartbeat", "datetime"),
            opt("agent_url", "url", max_length=200),
            F("workflow_enabled", "bool", default=True),
            F("current_stf_count", "int", default=0),
            F("total_stf_processed", "int", default=0),
            opt("last_stf_processed", "datetime"),
            opt("pid", "int"),
            opt("hostname", "str", max_length=100),
            F("operational_state", "str", default="STARTING", max_length=20, choices=OPERATIONAL_STATE),
            opt("namespace", "str", max_length=100),
            opt("metadata", "json"),
            *created(),
        ),
        filters=eq("instance_name", "agent_type", "status", "operational_state", "namespace"),
        ordering=("id",),
        columns=("instance_name", "agent_type", "status", "operational_state", "last_heartbeat", "namespace",
                 "hostname"),
        title_field="instance_name",
        description="Agents and their heartbeats.",
    ),
    Resource(
        name="logs", model="AppLog", pk=AUTO_ID,
        fields=(
            req("app_name", "str", max_length=100),
            req("instance_name", "str", max_length=100),
            req("timestamp", "datetime"),
            F("level", "int", default=0, choices=LOG_LEVELS),
            req("levelname", "str", max_length=50),
            req("message", "text"),
            *reqs("str", "module", "funcname", max_length=255),
            *reqs("int", "lineno", "process"),
            req("thread", "int64"),
            opt("extra_data", "json"),
        ),
        filters=(
            *eq("app_name", "instance_name", "levelname", "level"),
            Filter("min_level", "level", "ge"),
            Filter("start_time", "timestamp", "ge"),
            Filter("end_time", "timestamp", "le"),
            Filter("search", "app_name,instance_name,levelname,message,module,funcname", "search"),
        ),
        ordering=("-timestamp", "-id"),
        anonymous_write=True,
        verbose_name="app log",
        columns=("timestamp", "levelname", "app_name", "instance_name", "message", "module", "lineno"),
        description="Python logging records posted by agents (no token needed).",
    ),
    Resource(
        name="runs", model="Run", pk=auto_pk("run_id"),
        fields=(
            req("run_number", "int", unique=True),
            req("start_time", "datetime"),
            opt("end_time", "datetime"),
            opt("run_conditions", "json"),
        ),
        filters=eq("run_number"),
        ordering=("run_id",),
        columns=("run_number", "start_time", "end_time", "run_conditions"),
        title_field="run_number",
        description="Data-taking runs.",
    ),
    Resource(
        name="stf-files", model="StfFile", pk=uuid_pk("file_id"),
        fields=(
            F("machine_state", "str", default="physics", max_length=64),
            req("stf_filename", "str", max_length=255, unique=True),
            opt("file_size_bytes", "int64"),
            opt("checksum", "str", max_length=64),
            ro("created_at"),
            F("status", "str", default="registered", max_length=20, choices=FILE_STATUS),
            opt("metadata", "json"),
            opt("workflow_id", "uuid"),
            opt("daq_state", "str", max_length=20),
            opt("daq_substate", "str", max_length=20),
            opt("workflow_status", "str", max_length=30),
            opt("tf_count", "int"),  # time frames in the file
            req("run", "fk", to="runs"),
        ),
        filters=(
            *eq("stf_filename", "run", "status", "machine_state", "workflow_id"),
            Filter("run_number", "run.run_number", kind="int"),
        ),
        ordering=("created_at",),
        columns=("stf_filename", "run", "status", "machine_state", "file_size_bytes", "created_at"),
        title_field="stf_filename",
        description="Super Time Frame files.",
    ),
    Resource(
        name="fastmon-files", model="FastMonFile", pk=uuid_pk("tf_file_id"),
        fields=(
            req("stf_file", "fk", to="stf-files", to_field="stf_filename"),
            req("tf_filename", "str", max_length=255, unique=True),
            *opts("int", "tf_first", "tf_last", "tf_count"),
            opt("file_size_bytes", "int64"),
            opt("checksum", "str", max_length=64),
            F("status", "str", default="registered", max_length=20, choices=FILE_STATUS),
            opt("metadata", "json"),
            *created(),
        ),
        filters=(
            *eq("tf_filename", "status"),
            Filter("stf_filename", "stf_file"),
            Filter("run_number", "stf_file.run.run_number", kind="int"),
        ),
        ordering=("created_at",),
        verbose_name="fast mon file",
        columns=("tf_filename", "stf_file", "status", "tf_first", "tf_last", "tf_count", "created_at"),
        title_field="tf_filename",
        description="Fast-monitoring Time Frame files; stf_file is the parent's filename.",
    ),
    Resource(
        name="tf-slices", model="TFSlice", pk=AUTO_ID,
        fields=(
            # The parent's tf_filename. Optional: today's agent sends only the flat names below (required
            # then); with a parent they default to its names, and without one it is derived (swf_lite.rules).
            opt("fastmon_file", "fk", to="fastmon-files", to_field="tf_filename"),
            *reqs("int", "slice_id", "tf_first", "tf_last", "tf_count"),
            *reqs("str", "tf_filename", "stf_filename", max_length=255),
            req("run_number", "int"),
            F("status", "str", default="queued", max_length=20),
            F("retries", "int", default=0),
            opt("metadata", "json"),
            *created(),
            opt("assigned_worker", "str", max_length=255),
            opt("assigned_at", "datetime"),
            opt("completed_at", "datetime"),
        ),
        filters=(
            *eq("id", "run_number", "slice_id", "status", "stf_filename", "tf_filename", "assigned_worker"),
            Filter("fastmon_file_id", "fastmon_file.tf_file_id"),
            Filter("fastmon_file__tf_filename", "fastmon_file"),
            Filter("fastmon_file__stf_file__stf_filename", "fastmon_file.stf_file"),
        ),
        ordering=("id",),
        unique_together=(("tf_filename", "slice_id"), ("fastmon_file", "slice_id")),
        verbose_name="tf slice",
        columns=("id", "run_number", "slice_id", "tf_filename", "status", "assigned_worker", "completed_at"),
        description="Slices of TF files for fast processing. tf_filename and stf_filename are required unless "
        "fastmon_file is given (they default to the parent's names); without it the parent is derived from "
        "tf_filename. Filtered lists are always plain lists.",
    ),
    Resource(
        name="workers", model="Worker", pk=req("worker_id", "str", max_length=255, unique=True),
        fields=(
            req("run_number", "int"),
            req("panda_job", "str", max_length=255),
            req("location", "str", max_length=255),
            req("status", "str", max_length=20),
            opt("current_slice_id", "int"),
            opt("tf_filename", "str", max_length=255),
            F("slices_completed", "int", default=0),
            opt("last_heartbeat", "datetime"),
            req("started_at", "datetime"),
            opt("ended_at", "datetime"),
            opt("metadata", "json"),
        ),
        filters=eq("run_number", "status", "location"),
        ordering=("worker_id",),
        columns=("worker_id", "run_number", "status", "location", "slices_completed", "last_heartbeat"),
        description="Fast-processing workers.",
    ),
    Resource(
        name="run-states", model="RunState", pk=req("run_number", "int", unique=True),
        fields=(
            req("phase", "str", max_length=20),
            req("state", "str", max_length=20),
            opt("substate", "str", max_length=20),
            req("target_worker_count", "int"),
            *counts("active_worker_count", "stf_samples_received", "slices_created", "slices_queued",
                    "slices_processing", "slices_completed", "slices_failed"),
            req("state_changed_at", "datetime"),
            ro("updated_at", auto="now"),
            opt("metadata", "json"),
        ),
        filters=eq("phase", "state"),
        ordering=("run_number",),
        columns=("run_number", "phase", "state", "substate", "active_worker_count", "slices_completed",
                 "state_changed_at"),
        description="Fast-processing state per run; counters are plain values.",
    ),
    Resource(
        name="system-state-events", model="SystemStateEvent", pk=auto_pk("event_id"),
        fields=(
            req("timestamp", "datetime"),
            req("run_number", "int"),
            req("event_type", "str", max_length=50),
            req("state", "str", max_length=20),
            opt("substate", "str", max_length=20),
            req("event_data", "json"),
        ),
        filters=eq("run_number", "event_type", "state"),
        ordering=("timestamp", "event_id"),
        columns=("event_id", "timestamp", "run_number", "event_type", "state", "substate"),
        description="State-machine events of the fast-processing system.",
    ),
    Resource(
        name="workflows", model="STFWorkflow", pk=uuid_pk("workflow_id"),
        fields=(
            req("filename", "str", max_length=255, unique=True),
            opt("file_id", "uuid"),
            opt("namespace", "str", max_length=100),
            opt("execution_id", "str", max_length=100),
            opt("run_id", "str", max_length=50),
            req("daq_state", "str", max_length=20, choices=DAQ_STATE),
            req("daq_substate", "str", max_length=20, choices=DAQ_SUBSTATE),
            *reqs("datetime", "generated_time", "stf_start_time", "stf_end_time"),
            F("current_status", "str", default="generated", max_length=30, choices=WORKFLOW_STATUS),
            F("current_agent", "str", default="daqsim", max_length=20, choices=WORKFLOW_AGENT),
            *opts("datetime", "completed_at", "failed_at"),
            opt("failure_reason", "text"),
            opt("stf_metadata", "json"),
            *created(),
        ),
        filters=eq("filename", "namespace", "execution_id", "run_id", "current_status"),
        ordering=("-generated_time",),
        verbose_name="stf workflow",
        columns=("filename", "run_id", "current_status", "current_agent", "daq_state", "generated_time"),
        title_field="filename",
        description="STF workflows (one per STF file as it moves through the agents).",
    ),
    Resource(
        name="workflow-stages", model="AgentWorkflowStage", pk=uuid_pk("stage_id"),
        fields=(
            req("workflow", "fk", to="workflows"),
            req("agent_name", "str", max_length=100),
            req("agent_type", "str", max_length=20, choices=WORKFLOW_AGENT),
            F("status", "str", default="generated", max_length=30, choices=WORKFLOW_STATUS),
            *opts("datetime", "received_at", "started_at", "completed_at", "failed_at"),
            opt("processing_time_seconds", "float"),
            opt("failure_reason", "text"),
            *opts("json", "input_message", "output_message", "stage_metadata"),
            *created(),
        ),
        filters=eq("workflow", "agent_name", "status"),
        ordering=("created_at",),
        unique_together=(("workflow", "agent_name", "agent_type"),),
        columns=("stage_id", "workflow", "agent_name", "agent_type", "status", "processing_time_seconds"),
        description="One agent's stage of an STF workflow.",
    ),
    Resource(
        name="workflow-messages", model="WorkflowMessage", pk=uuid_pk("message_id"),
        fields=(
            req("message_type", "str", max_length=50),
            opt("request_id", "int"),
            opt("sender_agent", "str", max_length=100),
            opt("sender_type", "str", max_length=20, choices=WORKFLOW_AGENT),
            opt("recipient_agent", "str", max_length=100),
            opt("recipient_type", "str", max_length=20, choices=WORKFLOW_AGENT),
            opt("namespace", "str", max_length=100),
            opt("execution_id", "str", max_length=100),
            opt("run_id", "str", max_length=50),
            req("message_content", "json"),
            F("message_metadata", "json", default={}),
            ro("sent_at"),
            *opts("datetime", "delivered_at", "acknowledged_at"),
            opt("is_successful", "bool"),
            opt("error_message", "text"),
            opt("queue_name", "str", max_length=100),
            opt("correlation_id", "str", max_length=100),
            opt("workflow", "fk", to="workflows"),
            opt("stage", "fk", to="workflow-stages"),
        ),
        filters=eq("execution_id", "message_type", "sender_agent", "namespace", "run_id", "queue_name"),
        ordering=("-sent_at",),
        filter_ordering=(("execution_id", ("sent_at",)),),  # one execution's messages: oldest first
        columns=("sent_at", "message_type", "sender_agent", "recipient_agent", "run_id", "namespace"),
        title_field="message_type",
        sequenced=True,
        description="Workflow messages; creating one publishes it on the live stream.",
    ),
    Resource(
        name="workflow-definitions", model="WorkflowDefinition", pk=AUTO_ID,
        fields=(
            req("workflow_name", "str", max_length=200),
            req("version", "str", max_length=50),
            req("workflow_type", "str", max_length=100),
            req("definition", "text"),
            F("parameter_values", "json", default={}),
            req("created_by", "str", max_length=100),
            *created(),
        ),
        filters=eq("workflow_name", "version", "workflow_type", "created_by"),
        ordering=("id",),
        unique_together=(("workflow_name", "version"),),
        columns=("workflow_name", "version", "workflow_type", "created_by", "created_at"),
        title_field="workflow_name",
        description="Workflow definitions (immutable by convention).",
    ),
    Resource(
        name="workflow-executions", model="WorkflowExecution",
        pk=req("execution_id", "str", max_length=100, unique=True),
        fields=(
            req("workflow_definition", "fk", to="workflow-definitions"),
            opt("namespace", "str", max_length=100),
            req("parameter_values", "json"),
            opt("performance_metrics", "json"),
            F("status", "str", default="pending", max_length=50),
            req("start_time", "datetime"),
            opt("end_time", "datetime"),
            req("executed_by", "str", max_length=100),
        ),
        filters=(
            *eq("status", "namespace", "executed_by"),
            Filter("workflow_name", "workflow_definition.workflow_name", kind="str"),
        ),
        ordering=("-start_time",),
        columns=("execution_id", "workflow_definition", "status", "namespace", "start_time", "end_time",
                 "executed_by"),
        description="Executions of workflow definitions.",
    ),
    Resource(
        name="subscribers", model="Subscriber", pk=auto_pk("subscriber_id"),
        fields=(
            req("subscriber_name", "str", max_length=255, unique=True),
            opt("fraction", "float"),
            opt("description", "text"),
            F("is_active", "bool", default=True),
            *created(),
            F("delivery_type", "str", default="activemq", max_length=20, choices=("activemq", "sse")),
            opt("client_ip", "ip"),
            F("client_location", "str", default="", max_length=255),
            *opts("datetime", "connected_at", "disconnected_at", "last_activity"),
            F("message_filters", "json", default={}),
            *counts("messages_received", "messages_sent", "messages_dropped"),
        ),
        filters=eq("subscriber_name", "is_active", "delivery_type"),
        ordering=("subscriber_id",),
        columns=("subscriber_name", "delivery_type", "is_active", "client_ip", "messages_sent", "last_activity"),
        title_field="subscriber_name",
        description="Message subscribers (ActiveMQ queues and live stream clients).",
    ),
    Resource(
        name="namespaces", model="Namespace", pk=req("name", "str", max_length=100, unique=True),
        fields=(
            req("owner", "str", max_length=100),
            F("description", "text", default=""),
            opt("metadata", "json"),
            *created(),
        ),
        filters=eq("owner"),
        ordering=("name",),
        writable=False,
        columns=("name", "owner", "description", "created_at"),
        description="Namespaces; created through POST /api/namespaces/ensure/.",
    ),
    Resource(
        name="ai-memory", model="AIMemory", pk=AUTO_ID,
        fields=(
            req("username", "str", max_length=100),
            opt("session_id", "str", max_length=100),
            F("role", "str", default="user", max_length=20),
            req("content", "text"),
            opt("namespace", "str", max_length=100),
            opt("project_path", "str", max_length=500),
            opt("metadata", "json"),
            ro("created_at"),
        ),
        filters=eq("username", "namespace", "session_id"),
        ordering=("-created_at", "-id"),
        anonymous_write=True,
        generic=False,
        verbose_name="ai memory",
        columns=("created_at", "username", "role", "content", "session_id"),
        description="Dialogue turns recorded by the testbed's optional AI-memory hooks.",
    ),
)  # fmt: skip

BY_NAME: dict[str, Resource] = {r.name: r for r in RESOURCES}
