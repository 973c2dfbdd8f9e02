"""The overview tools: the whole testbed at a glance, a workflow execution's progress, and the health of
a user's agent manager and testbed — summaries the service's rows add up to, nothing stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from swf_lite import timefmt
from swf_lite.catalog import BY_NAME
from swf_lite.mcp import queries as q
from swf_lite.mcp import testbed
from swf_lite.mcp.toolkit import Call, Tool, mirror

RUN_STATES = BY_NAME["run-states"]
EVENTS = BY_NAME["system-state-events"]
STF = BY_NAME["stf-files"]
RUNNER_TYPES = ("daq_simulator", "workflow_runner")
ERROR_TYPES = ("run_workflow_failed", "error")
AGENT_RUNNING_SECONDS = 120  # the testbed status calls an agent heard within 2 minutes "running"
HOUR = dt.timedelta(hours=1)


def user(call: Call, args: dict[str, Any]) -> str:
    return str(args.get("username") or call.username)


# -- system state ------------------------------------------------------------------------------------


def system_state(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    q.sweep(call)
    username = user(call, args)
    cfg = testbed.load(call.environ)
    manager = q.agent(call, q.manager_name(username))
    namespace = cfg.namespace or (manager or {}).get("namespace")
    agents = q.columns(call, q.AGENTS)
    runner_rows = q.rows(call, q.AGENTS, q.select(call, q.AGENTS, {"namespace": namespace}, [
        q.iexact(agents("agent_type"), RUNNER_TYPES[0]) | q.iexact(agents("agent_type"), RUNNER_TYPES[1]),
        agents("status") != q.EXITED,
    ]), [agents("last_heartbeat").desc()], 1)  # fmt: skip
    runner = runner_rows[0] if runner_rows else None
    executions = q.columns(call, q.EXECUTIONS)
    latest = q.rows(call, q.EXECUTIONS, q.select(call, q.EXECUTIONS, {"namespace": namespace}),
                    [executions("start_time").desc()], 1)  # fmt: skip
    everyone = q.rows(call, q.AGENTS, q.select(call, q.AGENTS))
    active = [a for a in everyone if str(a.get("operational_state") or "").upper() != q.EXITED]
    healthy = [a for a in active if str(a.get("status")).upper() == "OK" and q.heard_within(call, a, q.HEALTHY_SECONDS)]
    runs = q.columns(call, RUN_STATES)
    events = q.columns(call, EVENTS)
    return {
        "timestamp": timefmt.iso(call.now),
        "user_context": {"username": username, "namespace": namespace, "workflow_name": cfg.workflow_name,
                         "config": cfg.config, "config_file": cfg.file, "config_source": cfg.source},
        "agent_manager": {"status": q.health(call, manager), "last_heartbeat": (manager or {}).get("last_heartbeat")},
        "workflow_runner": {"status": q.health(call, runner), "name": (runner or {}).get("instance_name"),
                            "last_heartbeat": (runner or {}).get("last_heartbeat")},
        "ready_to_run": q.health(call, runner) == "healthy",
        "last_execution": q.pick(latest[0], "execution_id", "status", "start_time", "end_time") if latest else None,
        "errors_last_hour": _errors_last_hour(call, namespace),
        "agents": {"total": len(everyone), "active": len(active), "exited": len(everyone) - len(active),
                   "healthy": len(healthy), "unhealthy": len(active) - len(healthy)},
        "executions": {
            "running": q.count(q.select(call, q.EXECUTIONS, where=[q.iexact(executions("status"), "running")])),
            "completed_last_hour": q.count(q.select(call, q.EXECUTIONS, where=[
                q.iexact(executions("status"), "completed"), executions("end_time") >= call.now - HOUR])),
        },
        "messages_last_10min": q.count(q.select(call, q.MESSAGES, where=[
            q.column(call, q.MESSAGES, "sent_at") >= call.now - dt.timedelta(minutes=10)])),
        "run_states": [
            {**q.pick(r, "run_number", "phase", "state", "substate"), "active_workers": r["active_worker_count"],
             "target_workers": r["target_worker_count"],
             **q.pick(r, "slices_queued", "slices_processing", "slices_completed", "slices_failed")}
            for r in q.rows(call, RUN_STATES, q.select(call, RUN_STATES), [runs("run_number").desc()], 5)
        ],
        "persistent_state": call.service.counters(),
        "recent_events": [q.pick(e, "timestamp", "run_number", "event_type", "state") for e in q.rows(
            call, EVENTS, q.select(call, EVENTS), [events("timestamp").desc(), events("event_id").desc()], 10)],
        "monitor_urls": [{"title": "Dashboard", "url": call.base_url + "/"}],
    }  # fmt: skip


def _errors_last_hour(call: Call, namespace: str | None) -> int:
    logs = q.columns(call, q.LOGS)
    where = [logs("timestamp") >= call.now - HOUR, logs("level") >= 40]
    if namespace is None:
        return q.count(q.select(call, q.LOGS, where=where))
    where.append(q.json_mentions(logs("extra_data"), "namespace", namespace))
    found = q.rows(call, q.LOGS, q.select(call, q.LOGS, where=where))
    return sum(1 for r in found if q.has_pair(r.get("extra_data"), "namespace", namespace))


# -- workflow monitor --------------------------------------------------------------------------------


def _messages(call: Call, execution_id: str) -> list[dict[str, Any]]:
    """An execution's messages in the order they were sent."""
    return call.service.list(q.MESSAGES, {"execution_id": execution_id}).rows


def _run_ids(messages: list[dict[str, Any]]) -> set[int]:
    out = set()
    for m in messages:
        content = m.get("message_content")
        for value in (content.get("run_id") if isinstance(content, dict) else None, m.get("run_id")):
            text_ = str(value if value is not None else "").strip()
            if text_.lstrip("-").isdigit() and len(text_) < 12:
                out.add(int(text_))
    return out


def _stf_count(call: Call, messages: list[dict[str, Any]]) -> int:
    runs = _run_ids(messages)
    if not runs:
        return 0
    return q.count(q.select(call, STF, {"run_number": ",".join(map(str, sorted(runs)))}))


def monitor(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    execution = q.execution(call, args["execution_id"])
    if execution is None:
        return {"error": f"Execution {args['execution_id']!r} not found. Use swf_list_workflow_executions to see "
                         "recent executions."}  # fmt: skip
    messages = _messages(call, execution["execution_id"])
    phase, run_id, events, errors = "unknown", None, [], []
    for m in messages:
        kind = q.msg_type(m)
        raw = m.get("message_content")
        content: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if kind in ("run_imminent", "start_run", "end_run"):
            phase = {"run_imminent": "imminent", "start_run": "running", "end_run": "ended"}[kind]
            event = {"type": kind, "time": m.get("sent_at")}
            if kind == "run_imminent":
                run_id = content.get("run_id", m.get("run_id"))
                event["run_id"] = run_id
            events.append(event)
        elif kind in ERROR_TYPES:
            detail = content.get("error") if content.get("error") not in (None, "") else raw
            errors.append({"type": kind, "time": m.get("sent_at"), "error": q.content_text(detail)})
    logs = q.columns(call, q.LOGS)
    found = q.rows(call, q.LOGS, q.select(call, q.LOGS, where=[
        logs("level") >= 40, q.json_mentions(logs("extra_data"), "execution_id", execution["execution_id"])]),
        [logs("timestamp").desc(), logs("id").desc()], 100)  # fmt: skip
    for r in [r for r in found if q.has_pair(r.get("extra_data"), "execution_id", execution["execution_id"])][:10]:
        errors.append({"source": "log", "time": r["timestamp"], "level": r["levelname"], "error": r["message"],
                       "instance_name": r["instance_name"]})  # fmt: skip
    start, end = execution.get("start_time"), execution.get("end_time")
    until = timefmt.parse(end, timefmt.UTC) if end else call.now
    return {
        "execution_id": execution["execution_id"], "status": execution["status"], "phase": phase, "run_id": run_id,
        "stf_count": _stf_count(call, messages), "events": events, "errors": errors, "start_time": start,
        "end_time": end,
        "duration_seconds": (until - timefmt.parse(start, timefmt.UTC)).total_seconds() if start else None,
        "monitor_urls": [call.detail("Execution", "workflow-executions", execution["execution_id"]),
                         call.page("Messages of this execution", "workflow-messages",
                                   execution_id=execution["execution_id"])],
    }  # fmt: skip


def list_monitors(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    executions = q.columns(call, q.EXECUTIONS)
    query = q.select(call, q.EXECUTIONS, where=[executions("start_time") >= call.now - dt.timedelta(hours=24)])
    result = q.listing(call, q.EXECUTIONS, query, order=[executions("start_time").desc()], cap=20,
                       urls=[call.page("Workflow executions", "workflow-executions")])  # fmt: skip
    result["items"] = [
        {**q.pick(e, "execution_id", "status", "start_time", "end_time"),
         "stf_count": _stf_count(call, _messages(call, e["execution_id"]))}
        for e in result["items"]
    ]  # fmt: skip
    return result


# -- agent manager and testbed -----------------------------------------------------------------------


def check_agent_manager(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    username = user(call, args)
    name = q.manager_name(username)
    row = q.agent(call, name)
    if row is None:
        return {"alive": False, "username": username, "instance_name": name,
                "how_to_start": "Start it in swf-testbed with `testbed agent-manager` (it heartbeats to this server "
                                "as " + name + ")."}  # fmt: skip
    raw = row.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "alive": q.health(call, row) == "healthy", "username": username, "instance_name": name,
        **q.pick(row, "namespace", "last_heartbeat", "operational_state", "status", "description"),
        "control_queue": f"/queue/agent_control.{username}", "agents_running": metadata.get("agents_running"),
        "supervisord_healthy": metadata.get("supervisord_healthy"),
        "monitor_urls": [call.detail("Agent manager", "systemagents", row["id"])],
    }  # fmt: skip


def testbed_status(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    manager = check_agent_manager(call, args)
    out: dict[str, Any] = {"username": manager["username"], "agent_manager": {
        k: manager.get(k) for k in ("alive", "namespace", "operational_state", "status", "last_heartbeat",
                                    "supervisord_healthy")}}  # fmt: skip
    namespace = manager.get("namespace")
    if not manager["alive"] and namespace is None:
        out.update(
            agents=[],
            summary={"running": 0, "stopped": 0},
            running_workflows=0,
            ready=False,
            error="No agent manager for this user: start one with `testbed agent-manager` in swf-testbed.",
        )
        return out
    agents = q.columns(call, q.AGENTS)
    found = q.rows(
        call,
        q.AGENTS,
        q.select(
            call,
            q.AGENTS,
            {"namespace": namespace},
            [agents("status") != q.EXITED, ~q.iexact(agents("agent_type"), q.MANAGER_TYPE)],
        ),
        [agents("instance_name")],
    )
    listed = [{"name": a["instance_name"], "type": a["agent_type"],
               "status": "running" if q.heard_within(call, a, AGENT_RUNNING_SECONDS) else "stopped",
               "last_heartbeat": a["last_heartbeat"]} for a in found]  # fmt: skip
    running = sum(1 for a in listed if a["status"] == "running")
    executions = q.columns(call, q.EXECUTIONS)
    workflows = q.count(q.select(call, q.EXECUTIONS, {"namespace": namespace},
                                 [q.iexact(executions("status"), "running")]))  # fmt: skip
    ready = bool(manager["alive"] and str(manager.get("status")).upper() != "ERROR" and running and not workflows)
    out.update(
        agents=listed,
        summary={"running": running, "stopped": len(listed) - running},
        running_workflows=workflows,
        ready=ready,
    )
    if not ready:
        why = ("the agent manager is not alive" if not manager["alive"] else "no agent is running" if not running
               else "a workflow is running" if workflows else "the agent manager reports ERROR")  # fmt: skip
        out["note"] = f"Not ready to start a workflow: {why}."
    return out


USERNAME = mirror("ai-memory", "username", "The testbed user (default: the token's user).")

TOOLS: tuple[Tool, ...] = (
    Tool("swf_get_system_state", "Testbed overview",
         "Start here: an overview of the testbed for a user — their namespace and workflow config, whether their "
         "agent manager and workflow runner are alive (ready_to_run), the last execution, errors in the last "
         "hour, agent and execution counts, messages in the last 10 minutes, the fast-processing run states, "
         "the counters and recent state-machine events.", (USERNAME,), system_state),
    Tool("swf_get_workflow_monitor", "Monitor a workflow execution",
         "Progress of one workflow execution read from its messages and logs: phase (imminent, running, ended), "
         "run id, STF files produced, run events in order, errors (failure messages and ERROR logs) and "
         "duration. Use it to watch a workflow you started or to see why one failed.",
         (mirror("workflow-executions", "execution_id", "Workflow execution id.", required=True),), monitor),
    Tool("swf_list_workflow_monitors", "List recent workflow executions' progress",
         "The workflow executions started in the last 24 hours (max 20) with status and STF files produced; "
         "swf_get_workflow_monitor shows one in detail.", (), list_monitors),
    Tool("swf_check_agent_manager", "Check an agent manager",
         "Whether a user's agent manager (the per-user daemon that starts and stops their testbed agents) is "
         "alive: heartbeat, namespace, state, its control queue and whether supervisord is healthy; says how to "
         "start it when it is missing.", (USERNAME,), check_agent_manager),
    Tool("swf_get_testbed_status", "Testbed status",
         "A user's testbed: agent manager health, the namespace's agents (running = heard within 2 minutes), "
         "running workflows, and whether it is ready to start a workflow (and if not, why).", (USERNAME,),
         testbed_status),
)  # fmt: skip
