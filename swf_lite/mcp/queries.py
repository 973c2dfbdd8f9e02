"""The reads the MCP tools share, over :class:`swf_lite.service.Service`: a resource's query with the
catalog's filters (the REST API's semantics and wording), narrowed by what tools add (time windows,
case-insensitive matches), rows in the REST representation, counts, list results, and the agent
facts several tools need (the stale-agent sweep, an agent manager's health).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import peewee as pw

from swf_lite import timefmt
from swf_lite.catalog import BY_NAME, Resource
from swf_lite.mcp.toolkit import Call

AGENTS = BY_NAME["systemagents"]
MESSAGES = BY_NAME["workflow-messages"]
EXECUTIONS = BY_NAME["workflow-executions"]
LOGS = BY_NAME["logs"]
EXITED = "EXITED"
HEALTHY_SECONDS = 300  # "healthy": heard from within 5 minutes
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
MANAGER_TYPE = "agent_manager"


def column(call: Call, r: Resource, name: str) -> Any:
    return getattr(call.service.store.model(r), name)


def columns(call: Call, r: Resource) -> Callable[[str], Any]:
    """``column`` of ``r`` by name (a shorthand for tools that name many)."""
    return functools.partial(column, call, r)


def select(call: Call, r: Resource, params: Mapping[str, Any] | None = None, where: Iterable[Any] = ()) -> Any:
    """``r``'s rows matching the catalog filters ``params`` (None and empty values left out) and the
    extra conditions ``where``."""
    call.service.store.connect()
    clean = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
    query = call.service.query(r, clean)
    for condition in where:
        if condition is not None:
            query = query.where(condition)
    return query


def rows(
    call: Call, r: Resource, query: Any, order: Sequence[Any] = (), limit: int | None = None
) -> list[dict[str, Any]]:
    """The rows of ``query`` as the REST API shows them."""
    if order:
        query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return call.service.store.client_rows(r, query)


def count(query: Any) -> int:
    return int(query.order_by().count())


def counts_by(call: Call, r: Resource, query: Any, name: str) -> dict[Any, int]:
    """Rows of ``query`` per value of field ``name``."""
    return dict(call.service.store.count_by(query.order_by(), column(call, r, name)))


def window(col: Any, start: dt.datetime | None, end: dt.datetime | None) -> list[Any]:
    """Conditions bounding ``col`` (inclusive)."""
    return [col >= start if start is not None else None, col <= end if end is not None else None]


def iexact(col: Any, value: str | None) -> Any:
    """``col`` equals ``value`` without regard to case (None: no condition)."""
    return None if value is None else pw.fn.LOWER(col) == value.lower()


def listing(call: Call, r: Resource, query: Any, *, order: Sequence[Any], cap: int,
            item: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            urls: Sequence[dict[str, str]] = ()) -> dict[str, Any]:  # fmt: skip
    """The list result every list tool returns: at most ``cap`` items, the total and the page links."""
    total = count(query)
    found = rows(call, r, query, order, cap)
    return {"items": [item(row) for row in found] if item else found, "total_count": total,
            "has_more": total > cap, "monitor_urls": list(urls)}  # fmt: skip


def pick(row: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: row.get(name) for name in names}


def json_mentions(col: Any, key: str, value: str) -> Any:
    """A coarse condition for "the JSON object in ``col`` has ``key`` = ``value``": the stored text
    contains the pair (stored JSON is compact). :func:`has_pair` confirms on the decoded value."""
    pair = json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]
    # a raw value: the JSON column's own converter would encode the pattern as JSON
    return pw.Expression(col, pw.OP.ILIKE, pw.Value(f"%{pair}%", converter=False))


def has_pair(value: Any, key: str, expected: str) -> bool:
    return isinstance(value, dict) and value.get(key) is not None and str(value.get(key)) == expected


def content_text(content: Any) -> str:
    """A message's content as text (a JSON value as compact JSON)."""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def msg_type(message: Mapping[str, Any]) -> str:
    """What a workflow message is: its content's ``msg_type``, else its ``message_type``."""
    content = message.get("message_content")
    kind = content.get("msg_type") if isinstance(content, dict) else None
    return str(kind) if kind not in (None, "") else str(message.get("message_type") or "")


# -- agents ------------------------------------------------------------------------------------------


def sweep(call: Call) -> int:
    """The heartbeat's stale-agent sweep, run before agents are reported: agents silent for longer than
    the configured age and not yet EXITED become EXITED (through the service: published as updates)."""
    stale = call.now - dt.timedelta(seconds=call.service.stale_agent_seconds)
    found = rows(call, AGENTS, select(call, AGENTS, where=[
        column(call, AGENTS, "last_heartbeat") < stale, column(call, AGENTS, "status") != EXITED,
    ]))  # fmt: skip
    for agent in found:
        call.service.update(AGENTS, agent["id"], {"status": EXITED, "operational_state": EXITED}, partial=True)
    return len(found)


def agent(call: Call, name: str) -> dict[str, Any] | None:
    """The agent with instance name ``name``, or None."""
    found = rows(call, AGENTS, select(call, AGENTS, {"instance_name": name}), limit=1)
    return found[0] if found else None


def age(call: Call, stamp: str | None) -> float | None:
    """Seconds since an ISO time as the API prints it (None for none)."""
    if not stamp:
        return None
    return (call.now - timefmt.parse(stamp, timefmt.UTC)).total_seconds()


def heard_within(call: Call, row: Mapping[str, Any], seconds: float) -> bool:
    seen = age(call, row.get("last_heartbeat"))
    return seen is not None and seen <= seconds


def exited(row: Mapping[str, Any]) -> bool:
    return EXITED in (str(row.get("status") or "").upper(), str(row.get("operational_state") or "").upper())


def manager_name(username: str) -> str:
    return f"agent-manager-{username}"


def health(call: Call, row: Mapping[str, Any] | None) -> str:
    """missing | exited | healthy (heard within 5 minutes) | unhealthy."""
    if row is None:
        return "missing"
    if exited(row):
        return "exited"
    return "healthy" if heard_within(call, row, HEALTHY_SECONDS) else "unhealthy"


def live_manager_namespace(call: Call, username: str) -> str | None:
    """The namespace of an agent manager heard from within 5 minutes: the user's own first, else any."""
    own = agent(call, manager_name(username))
    if own is not None and health(call, own) == "healthy" and own.get("namespace"):
        return str(own["namespace"])
    since = call.now - dt.timedelta(seconds=HEALTHY_SECONDS)
    found = rows(call, AGENTS, select(call, AGENTS, where=[
        iexact(column(call, AGENTS, "agent_type"), MANAGER_TYPE),
        column(call, AGENTS, "last_heartbeat") >= since, column(call, AGENTS, "status") != EXITED,
        column(call, AGENTS, "namespace").is_null(False),
    ]), [column(call, AGENTS, "last_heartbeat").desc()], 1)  # fmt: skip
    return str(found[0]["namespace"]) if found else None


# -- workflow executions -----------------------------------------------------------------------------


def definition_names(call: Call, ids: Iterable[Any]) -> dict[Any, str]:
    """Workflow definition id -> workflow_name."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    defs = BY_NAME["workflow-definitions"]
    found = rows(call, defs, select(call, defs, where=[column(call, defs, "id").in_(wanted)]))
    return {d["id"]: d["workflow_name"] for d in found}


def execution_items(call: Call, found: list[dict[str, Any]], *extra: str) -> list[dict[str, Any]]:
    """Executions as the execution tools show them (the definition's name instead of its id)."""
    names = definition_names(call, (e["workflow_definition"] for e in found))
    return [
        {"execution_id": e["execution_id"], "workflow_name": names.get(e["workflow_definition"]),
         **pick(e, "namespace", "status", "executed_by", "start_time", "end_time", "parameter_values", *extra)}
        for e in found
    ]  # fmt: skip


def execution(call: Call, execution_id: str) -> dict[str, Any] | None:
    found = rows(call, EXECUTIONS, select(call, EXECUTIONS, where=[
        column(call, EXECUTIONS, "execution_id") == execution_id]), limit=1)  # fmt: skip
    return found[0] if found else None


def running(row: Mapping[str, Any]) -> bool:
    return str(row.get("status") or "").lower() == "running"
