"""The record tools: list and get agents, namespaces, workflow definitions and executions, messages,
runs, STF files, TF slices, logs and AI memory — each a thin adapter over the service (the REST API's
filters and values), returning the fields the real monitor's tool of the same name returns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from swf_lite import timefmt
from swf_lite.catalog import BY_NAME, FILE_STATUS, LOG_LEVELS
from swf_lite.errors import NotFound
from swf_lite.mcp import queries as q
from swf_lite.mcp.toolkit import Call, Param, Tool, ToolError, boolean, integer, mirror, text, time

RUNS = BY_NAME["runs"]
STF = BY_NAME["stf-files"]
FASTMON = BY_NAME["fastmon-files"]
SLICES = BY_NAME["tf-slices"]
NAMESPACES = BY_NAME["namespaces"]
DEFINITIONS = BY_NAME["workflow-definitions"]
MEMORY = BY_NAME["ai-memory"]
DAY = dt.timedelta(hours=24)
LEVEL_NAMES = {n: name for name, n in q.LEVELS.items() if name not in ("WARN", "FATAL")}
AGENT_FIELDS = ("name", "agent_type", "status", "operational_state", "namespace", "last_heartbeat",
                "workflow_enabled", "total_stf_processed")  # fmt: skip
LOG_FIELDS = ("id", "timestamp", "app_name", "instance_name", "level", "message", "module", "funcname", "lineno",
              "extra_data")  # fmt: skip
SLICE_FIELDS = ("id", "fastmon_file_id", "fastmon_file", "slice_id", "tf_filename", "stf_filename", "run_number",
                "tf_first", "tf_last", "tf_count", "status", "assigned_worker", "created_at",
                "completed_at")  # fmt: skip


def _window(args: dict[str, Any], now: dt.datetime, default: dt.timedelta | None) -> tuple[Any, Any]:
    """(start, end) of a tool's ``start_time``/``end_time``, the start defaulting to ``now - default``."""
    start = args.get("start_time")
    if start is None and default is not None:
        start = now - default
    return start, args.get("end_time")


def _time_range(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, Any]:
    return {"start": timefmt.iso(start), "end": timefmt.iso(end)}


# -- agents ------------------------------------------------------------------------------------------


def _agent_item(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["instance_name"], **q.pick(row, *AGENT_FIELDS[1:])}


def list_agents(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    q.sweep(call)
    col = q.columns(call, q.AGENTS)
    status = args["status"]
    where: list[Any] = [*q.window(col("last_heartbeat"), args["start_time"], args["end_time"])]
    if status is None:
        where.append(col("status") != q.EXITED)
    elif status.lower() != "all":
        where.append(q.iexact(col("status"), status))
    if args["execution_id"]:
        senders = q.select(call, q.MESSAGES, {"execution_id": args["execution_id"]})
        where.append(col("instance_name").in_(senders.select(q.column(call, q.MESSAGES, "sender_agent"))))
    params = {"namespace": args["namespace"], "agent_type": args["agent_type"]}
    shown = status.upper() if status and status.lower() != "all" else None
    return q.listing(call, q.AGENTS, q.select(call, q.AGENTS, params, where), cap=100,
                     order=[col("last_heartbeat").desc(), col("id").desc()], item=_agent_item,
                     urls=[call.page("Agents", "systemagents", **params, status=shown)])  # fmt: skip


def get_agent(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    q.sweep(call)
    row = q.agent(call, args["name"])
    if row is None:
        return {"error": f"No agent named {args['name']!r}. Use swf_list_agents (status='all') to see agents."}
    out = {k: v for k, v in _agent_item(row).items() if k != "operational_state"}
    out.update(q.pick(row, "description", "current_stf_count", "last_stf_processed", "metadata"))
    out["monitor_urls"] = [call.detail("Agent", "systemagents", row["id"])]
    return out


# -- namespaces --------------------------------------------------------------------------------------


def list_namespaces(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return q.listing(call, NAMESPACES, q.select(call, NAMESPACES), cap=100, order=[q.column(call, NAMESPACES, "name")],
                     item=lambda r: q.pick(r, "name", "owner", "description"),
                     urls=[call.page("Namespaces", "namespaces")])  # fmt: skip


def get_namespace(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    name = args["namespace"]
    start, end = _window(args, call.now, DAY)
    end = end or call.now
    found = q.rows(call, NAMESPACES, q.select(call, NAMESPACES, where=[q.column(call, NAMESPACES, "name") == name]))
    row = found[0] if found else {}
    agents = q.count(q.select(call, q.AGENTS, {"namespace": name}))
    runs = q.select(call, q.EXECUTIONS, {"namespace": name},
                    q.window(q.column(call, q.EXECUTIONS, "start_time"), start, end))  # fmt: skip
    users = q.counts_by(call, q.EXECUTIONS, runs, "executed_by")
    messages = q.select(
        call, q.MESSAGES, {"namespace": name}, q.window(q.column(call, q.MESSAGES, "sent_at"), start, end)
    )
    urls = [call.detail("Namespace", "namespaces", name)] if row else []
    urls += [call.page("Agents in this namespace", "systemagents", namespace=name),
             call.page("Messages in this namespace", "workflow-messages", namespace=name)]  # fmt: skip
    return {
        "name": name, "owner": row.get("owner"), "description": row.get("description"), "agent_count": agents,
        "execution_count": sum(users.values()), "active_users": sorted(str(u) for u in users if u is not None),
        "message_count": q.count(messages), "time_range": _time_range(start, end), "monitor_urls": urls,
    }  # fmt: skip


# -- workflow definitions and executions -------------------------------------------------------------


def list_workflow_definitions(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = {"workflow_type": args["workflow_type"], "created_by": args["created_by"]}
    query = q.select(call, DEFINITIONS, params)
    col = q.columns(call, DEFINITIONS)
    result = q.listing(call, DEFINITIONS, query, cap=100, order=[col("workflow_name"), col("version").desc()],
                       urls=[call.page("Workflow definitions", "workflow-definitions", **params)])  # fmt: skip
    ids = [d["id"] for d in result["items"]]
    runs = q.counts_by(call, q.EXECUTIONS, q.select(call, q.EXECUTIONS, where=[
        q.column(call, q.EXECUTIONS, "workflow_definition").in_(ids)]), "workflow_definition")  # fmt: skip
    result["items"] = [
        {**q.pick(d, "workflow_name", "version", "workflow_type", "created_by", "created_at"),
         "execution_count": runs.get(d["id"], 0)}
        for d in result["items"]
    ]  # fmt: skip
    return result


def list_workflow_executions(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, q.EXECUTIONS)
    params = {k: args[k] for k in ("namespace", "executed_by", "workflow_name")}
    if args["currently_running"]:
        where = [q.iexact(col("status"), "running")]
    else:
        where = [q.iexact(col("status"), args["status"]), *q.window(col("start_time"), *_window(args, call.now, DAY))]
    query = q.select(call, q.EXECUTIONS, params, where)
    result = q.listing(call, q.EXECUTIONS, query, cap=100, order=[col("start_time").desc()],
                       urls=[call.page("Workflow executions", "workflow-executions", **params,
                                       status="running" if args["currently_running"] else args["status"])])  # fmt: skip
    result["items"] = q.execution_items(call, result["items"])
    return result


def get_workflow_execution(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    row = q.execution(call, args["execution_id"])
    if row is None:
        return {"error": f"Execution {args['execution_id']!r} not found. Use swf_list_workflow_executions to see "
                         "recent executions."}  # fmt: skip
    out = q.execution_items(call, [row], "performance_metrics")[0]
    out["monitor_urls"] = [call.detail("Execution", "workflow-executions", row["execution_id"])]
    return out


# -- messages ----------------------------------------------------------------------------------------


def list_messages(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, q.MESSAGES)
    params = {"namespace": args["namespace"], "execution_id": args["execution_id"], "sender_agent": args["agent"],
              "message_type": args["message_type"]}  # fmt: skip
    query = q.select(
        call, q.MESSAGES, params, q.window(col("sent_at"), *_window(args, call.now, dt.timedelta(hours=1)))
    )

    def item(m: dict[str, Any]) -> dict[str, Any]:
        content = m.get("message_content")
        summary = None if content is None else q.content_text(content)[:200]
        return {**q.pick(m, "message_type", "sender_agent", "namespace", "sent_at", "execution_id", "run_id"),
                "payload_summary": summary, "message_id": m["message_id"]}  # fmt: skip

    return q.listing(call, q.MESSAGES, query, cap=200, order=[col("sent_at").desc()], item=item,
                     urls=[call.page("Messages", "workflow-messages", **params)])  # fmt: skip


# -- runs, STF files, TF slices ----------------------------------------------------------------------


def _duration(row: dict[str, Any]) -> float | None:
    start, end = row.get("start_time"), row.get("end_time")
    if not start or not end:
        return None
    return (timefmt.parse(end, timefmt.UTC) - timefmt.parse(start, timefmt.UTC)).total_seconds()


def list_runs(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, RUNS)
    query = q.select(call, RUNS, where=q.window(col("start_time"), *_window(args, call.now, dt.timedelta(days=7))))
    result = q.listing(call, RUNS, query, cap=100, order=[col("start_time").desc()], urls=[call.page("Runs", "runs")])
    files = q.counts_by(call, STF, q.select(call, STF, where=[
        q.column(call, STF, "run").in_([r["run_id"] for r in result["items"]])]), "run")  # fmt: skip
    result["items"] = [
        {**q.pick(r, "run_number", "start_time", "end_time"), "duration_seconds": _duration(r),
         "stf_file_count": files.get(r["run_id"], 0)}
        for r in result["items"]
    ]  # fmt: skip
    return result


def get_run(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    found = q.rows(call, RUNS, q.select(call, RUNS, {"run_number": args["run_number"]}), limit=1)
    if not found:
        return {"error": f"Run {args['run_number']} not found. Use swf_list_runs to see recent runs."}
    run = found[0]
    stats = q.counts_by(call, STF, q.select(call, STF, {"run": run["run_id"]}), "status")
    file_stats = {status: stats.get(status, 0) for status in FILE_STATUS}
    file_stats.update({str(k): n for k, n in stats.items() if k not in file_stats})
    return {**q.pick(run, "run_number", "start_time", "end_time"), "duration_seconds": _duration(run),
            "run_conditions": run.get("run_conditions"), "file_stats": file_stats,
            "total_stf_files": sum(stats.values()),
            "monitor_urls": [call.detail("Run", "runs", run["run_number"]),
                             call.page("STF files of this run", "stf-files",
                                       run_number=run["run_number"])]}  # fmt: skip


def _run_numbers(call: Call, run_ids: list[Any]) -> dict[Any, Any]:
    found = q.rows(call, RUNS, q.select(call, RUNS, where=[q.column(call, RUNS, "run_id").in_(run_ids)]))
    return {r["run_id"]: r["run_number"] for r in found}


def _stf_item(row: dict[str, Any], numbers: dict[Any, Any]) -> dict[str, Any]:
    return {**q.pick(row, "file_id", "stf_filename"), "run_number": numbers.get(row["run"]),
            **q.pick(row, "status", "machine_state", "file_size_bytes", "created_at")}  # fmt: skip


def list_stf_files(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, STF)
    default = None if args["run_number"] is not None else DAY
    where = [q.iexact(col("status"), args["status"]), q.iexact(col("machine_state"), args["machine_state"]),
             *q.window(col("created_at"), *_window(args, call.now, default))]  # fmt: skip
    query = q.select(call, STF, {"run_number": args["run_number"]}, where)
    result = q.listing(call, STF, query, cap=100, order=[col("created_at").desc()],
                       urls=[call.page("STF files", "stf-files", run_number=args["run_number"],
                                       status=(args["status"] or "").lower() or None)])  # fmt: skip
    found = result["items"]
    numbers = _run_numbers(call, [f["run"] for f in found])
    tf_files = q.counts_by(call, FASTMON, q.select(call, FASTMON, where=[
        q.column(call, FASTMON, "stf_file").in_([f["stf_filename"] for f in found])]), "stf_file")  # fmt: skip
    result["items"] = [{**_stf_item(f, numbers), "tf_file_count": tf_files.get(f["stf_filename"], 0)} for f in found]
    return result


def get_stf_file(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    if args["file_id"] is None and args["stf_filename"] is None:
        raise ToolError("swf_get_stf_file needs file_id or stf_filename (swf_list_stf_files shows both).")
    if args["file_id"] is not None:
        try:
            found = [call.service.get(STF, args["file_id"])]
        except NotFound:
            found = []
    else:
        found = q.rows(call, STF, q.select(call, STF, {"stf_filename": args["stf_filename"]}), limit=1)
    if not found:
        which = args["file_id"] if args["file_id"] is not None else args["stf_filename"]
        return {"error": f"STF file {which!r} not found. Use swf_list_stf_files to see files."}
    row = found[0]
    out = _stf_item(row, _run_numbers(call, [row["run"]]))
    out.update(q.pick(row, "checksum", "metadata", "workflow_id", "daq_state", "daq_substate", "workflow_status",
                      "tf_count"))  # fmt: skip
    out["monitor_urls"] = [call.detail("STF file", "stf-files", row["file_id"])]
    return out


def _slice_items(call: Call, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parents = [s["fastmon_file"] for s in found if s.get("fastmon_file")]
    ids = {f["tf_filename"]: f["tf_file_id"] for f in q.rows(call, FASTMON, q.select(call, FASTMON, where=[
        q.column(call, FASTMON, "tf_filename").in_(parents)]))} if parents else {}  # fmt: skip
    return [{**s, "fastmon_file_id": ids.get(s.get("fastmon_file"))} for s in found]


def list_tf_slices(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, SLICES)
    named = any(args[k] is not None for k in ("run_number", "stf_filename", "tf_filename"))
    params = {k: args[k] for k in ("id", "fastmon_file_id", "run_number", "stf_filename", "assigned_worker")}
    where = [
        q.iexact(col("status"), args["status"]),
        *q.window(col("created_at"), *_window(args, call.now, None if named else DAY)),
    ]
    if args["tf_filename"] is not None:  # the slice's own name or its parent's
        where.append((col("tf_filename") == args["tf_filename"]) | (col("fastmon_file") == args["tf_filename"]))
    result = q.listing(call, SLICES, q.select(call, SLICES, params, where), cap=200, order=[col("created_at").desc(),
                       col("id").desc()], urls=[call.page("TF slices", "tf-slices", **params)])  # fmt: skip
    result["items"] = [q.pick(s, *SLICE_FIELDS) for s in _slice_items(call, result["items"])]
    return result


def get_tf_slice(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, SLICES)
    name = args["tf_filename"]
    query = q.select(call, SLICES, {"slice_id": args["slice_id"]},
                     [(col("tf_filename") == name) | (col("fastmon_file") == name)])  # fmt: skip
    found = q.rows(call, SLICES, query, [col("id")], 1)
    if not found:
        return {"error": f"No TF slice {args['slice_id']} of {name!r}. Use swf_list_tf_slices to see slices."}
    row = _slice_items(call, found)[0]
    out = q.pick(row, "id", "slice_id", "tf_filename", "stf_filename", "run_number", "tf_first", "tf_last", "tf_count",
                 "status", "retries", "assigned_worker", "assigned_at", "completed_at", "metadata", "fastmon_file",
                 "fastmon_file_id")  # fmt: skip
    out["monitor_urls"] = [call.detail("TF slice", "tf-slices", row["id"])]
    return out


# -- logs --------------------------------------------------------------------------------------------


def _level(name: str | None) -> int | None:
    if name is None:
        return None
    level = q.LEVELS.get(name.strip().upper())
    if level is None:
        raise ToolError(f"level: {name!r} is not a level name; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    return level


def _log_item(row: dict[str, Any], *extra: str) -> dict[str, Any]:
    out = q.pick(row, *LOG_FIELDS, *extra)
    out["level"] = row.get("levelname") or LEVEL_NAMES.get(row.get("level") or 0)
    return out


def list_logs(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    col = q.columns(call, q.LOGS)
    minimum = _level(args["level"])
    params = {"app_name": args["app_name"], "instance_name": args["instance_name"], "min_level": minimum}
    start, end = _window(args, call.now, DAY)
    where = [*q.window(col("timestamp"), start, end)]
    if args["search"] is not None:
        where.append(col("message").contains(args["search"]))
    execution_id = args["execution_id"]
    if execution_id is not None:
        where.append(q.json_mentions(col("extra_data"), "execution_id", execution_id))
    query = q.select(call, q.LOGS, params, where)
    urls = [call.page("Logs", "logs", **params, start_time=start, end_time=end, q=args["search"])]
    order = [col("timestamp").desc(), col("id").desc()]
    if execution_id is None:
        return q.listing(call, q.LOGS, query, order=order, cap=200, item=_log_item, urls=urls)
    matching = [r for r in q.rows(call, q.LOGS, query, order) if q.has_pair(r.get("extra_data"), "execution_id",
                                                                             execution_id)]  # fmt: skip
    return {"items": [_log_item(r) for r in matching[:200]], "total_count": len(matching),
            "has_more": len(matching) > 200, "monitor_urls": urls}  # fmt: skip


def get_log_entry(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    found = q.rows(call, q.LOGS, q.select(call, q.LOGS, where=[q.column(call, q.LOGS, "id") == args["log_id"]]))
    if not found:
        return {"error": f"Log entry {args['log_id']} not found. Use swf_list_logs to find entries."}
    return {
        **_log_item(found[0], "process", "thread"),
        "monitor_urls": [call.detail("Log entry", "logs", args["log_id"])],
    }


# -- AI memory ---------------------------------------------------------------------------------------


def record_ai_memory(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    empty = [k for k in ("username", "session_id", "role", "content") if not str(args[k] or "").strip()]
    if empty:
        return {"success": False, "error": f"{', '.join(empty)} must not be empty"}
    if args["role"] not in ("user", "assistant"):
        return {"success": False, "error": f"role must be 'user' or 'assistant', not {args['role']!r}"}
    row = call.service.create(MEMORY, {k: args[k] for k in ("username", "session_id", "role", "content", "namespace",
                                                              "project_path")})  # fmt: skip
    return {"success": True, "id": row["id"], "username": row["username"], "role": row["role"],
            "content_length": len(row["content"])}  # fmt: skip


def get_ai_memory(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    username = args["username"] or call.username
    found = call.service.recent_memory({"username": username, "namespace": args["namespace"] or ""}, 2 * args["turns"])
    items = [{**q.pick(m, "role", "content", "created_at", "session_id"), "post_id": m.get("namespace") or "",
              "root_id": m.get("project_path") or ""} for m in found]  # fmt: skip
    return {"items": items, "count": len(items), "username": username, "turns_requested": args["turns"],
            "namespace": args["namespace"]}  # fmt: skip


# -- declarations ------------------------------------------------------------------------------------

END = time("end_time", "Only records at or before this time")


def _start(default: str) -> Param:
    return time("start_time", f"Only records at or after this time (default: {default})")


NAMESPACE = mirror("systemagents", "namespace", "Testbed namespace (exact name), e.g. a user's namespace.")
EXECUTION = mirror("workflow-executions", "execution_id", "Workflow execution id, e.g. 'stf_datataking-alice-0042'.",
                   required=True)  # fmt: skip
LEVEL_LIST = ", ".join(LEVEL_NAMES[n] for n in sorted(LEVEL_NAMES) if n in LOG_LEVELS)

TOOLS: tuple[Tool, ...] = (
    Tool("swf_list_agents", "List agents",
         "List the testbed's agents (DAQ simulator, data, processing, fast-monitoring agents, agent managers) with "
         "status and last heartbeat, latest heartbeat first (max 100). By default agents that have EXITED are "
         "left out; status='all' shows every agent. Agents silent for 3 minutes are marked EXITED first. Use it to "
         "see what is running; swf_get_agent shows one agent in full.",
         (NAMESPACE, mirror("systemagents", "agent_type", "Agent type, e.g. daqsim, data, processing, fastmon."),
          text("status", "OK, WARNING, ERROR, EXITED (any case), or 'all'. Default: every status but EXITED."),
          text("execution_id", "Only agents that sent a message of this workflow execution."),
          time("start_time", "Only agents whose last heartbeat is at or after this time"),
          time("end_time", "Only agents whose last heartbeat is at or before this time")),
         list_agents),
    Tool("swf_get_agent", "Get an agent",
         "One agent by its instance name (as swf_list_agents shows it under 'name'): type, status, heartbeat, "
         "STF counts, host metadata and a link to its page.",
         (mirror("systemagents", "instance_name", "The agent's instance name.", param="name", required=True),),
         get_agent),
    Tool("swf_list_namespaces", "List namespaces",
         "List the testbed namespaces (each user's isolated set of agents and workflows) with owner and "
         "description, by name (max 100).", (), list_namespaces),
    Tool("swf_get_namespace", "Get a namespace",
         "Activity of one namespace: owner, how many agents it has, executions started and messages sent in "
         "the time window (default the last 24 hours) and who ran them.",
         (mirror("namespaces", "name", "The namespace name.", param="namespace", required=True),
          _start("24 hours ago"), END), get_namespace),
    Tool("swf_list_workflow_definitions", "List workflow definitions",
         "List the workflow definitions that can be executed (e.g. stf_datataking), by name and newest version "
         "first, with how many times each was executed (max 100).",
         (mirror("workflow-definitions", "workflow_type", "Workflow type, exact."),
          mirror("workflow-definitions", "created_by", "Creator's username, exact.")),
         list_workflow_definitions),
    Tool("swf_list_workflow_executions", "List workflow executions",
         "List workflow executions (runs of a workflow definition), newest first (max 100), started in the time "
         "window (default the last 24 hours). currently_running=true lists every running execution regardless "
         "of time. Use swf_get_workflow_monitor for one execution's progress.",
         (NAMESPACE, text("status", "Status, any case: pending, running, completed, failed, terminated."),
          mirror("workflow-executions", "executed_by", "Username who started it."),
          mirror("workflow-definitions", "workflow_name", "Workflow definition name, e.g. stf_datataking."),
          boolean("currently_running", "Only running executions, over all time (ignores the time window).",
                  default=False),
          _start("24 hours ago"), END), list_workflow_executions),
    Tool("swf_get_workflow_execution", "Get a workflow execution",
         "One workflow execution in full: workflow, namespace, status, who ran it, times, parameters and "
         "performance metrics.", (EXECUTION,), get_workflow_execution),
    Tool("swf_list_messages", "List workflow messages",
         "List workflow messages agents exchanged (run_imminent, start_run, stf_gen, stf_ready, end_run, ...), "
         "newest first (max 200), sent in the time window (default the last hour), each with the first 200 "
         "characters of its content. Filter by execution_id to follow one workflow execution; for failures "
         "look at swf_list_logs too.",
         (NAMESPACE, text("execution_id", "Workflow execution id."),
          mirror("workflow-messages", "sender_agent", "Sender agent's instance name.", param="agent"),
          mirror("workflow-messages", "message_type", "Message type, e.g. stf_gen, start_run."),
          _start("1 hour ago"), END), list_messages),
    Tool("swf_list_runs", "List runs",
         "List data-taking runs started in the time window (default the last 7 days), newest first (max 100), "
         "with duration and number of STF files.", (_start("7 days ago"), END), list_runs),
    Tool("swf_get_run", "Get a run",
         "One run by run number: times, duration, run conditions and its STF files counted per status.",
         (mirror("runs", "run_number", "The run number, e.g. 100010.", required=True),), get_run),
    Tool("swf_list_stf_files", "List STF files",
         "List STF (Super Time Frame) files, the DAQ's data files, newest first (max 100), with run, status and "
         "number of fast-monitoring (TF) files. Without run_number only files created in the time window "
         "(default the last 24 hours).",
         (mirror("runs", "run_number", "Only files of this run."),
          text("status", "File status, any case: " + ", ".join(FILE_STATUS) + "."),
          text("machine_state", "Machine state, any case, e.g. physics."), _start("24 hours ago, unless run_number"),
          END), list_stf_files),
    Tool("swf_get_stf_file", "Get an STF file",
         "One STF file in full (by file_id or stf_filename; give one): run, status, size, checksum, DAQ state, "
         "workflow status, number of time frames and metadata.",
         (mirror("stf-files", "file_id", "The file's id (a UUID)."),
          mirror("stf-files", "stf_filename", "The file's name.")), get_stf_file),
    Tool("swf_list_tf_slices", "List TF slices",
         "List the TF slices of fast processing (pieces of fast-monitoring files handed to workers), newest first "
         "(max 200), with status and worker. Without run_number, stf_filename or tf_filename only slices created "
         "in the time window (default the last 24 hours).",
         (integer("id", "The slice's database id."),
          mirror("fastmon-files", "tf_file_id", "The parent fast-monitoring file's id (a UUID).",
                 param="fastmon_file_id"),
          mirror("tf-slices", "run_number", "Only slices of this run."),
          mirror("tf-slices", "stf_filename", "Only slices of this STF file."),
          text("tf_filename", "A slice's own TF file name or its parent fast-monitoring file's name."),
          text("status", "Slice status, any case: queued, processing, completed, failed."),
          mirror("tf-slices", "assigned_worker", "Worker id."), _start("24 hours ago, unless a run or file is named"),
          END), list_tf_slices),
    Tool("swf_get_tf_slice", "Get a TF slice",
         "One TF slice by its TF file name (its own or its parent's) and slice number: range of time frames, "
         "status, retries, worker and times.",
         (text("tf_filename", "The slice's TF file name or its parent's.", required=True),
          mirror("tf-slices", "slice_id", "The slice number within the file.", required=True)), get_tf_slice),
    Tool("swf_list_logs", "List logs",
         "List the log records agents posted, newest first (max 200), in the time window (default the last 24 "
         "hours). level is a minimum: level='ERROR' finds failures. Use execution_id to see one workflow "
         "execution's logs, search for a word in the message.",
         (mirror("logs", "app_name", "Application name, exact."),
          mirror("logs", "instance_name", "Agent instance name, exact."),
          text("execution_id", "Only records whose extra_data.execution_id is this."),
          text("level", f"Minimum level by name, any case: {LEVEL_LIST}."),
          text("search", "Text the message contains (case-insensitive)."), _start("24 hours ago"), END), list_logs),
    Tool("swf_get_log_entry", "Get a log entry",
         "One log record in full (by the id swf_list_logs shows), with process, thread and extra data.",
         (integer("log_id", "The log record's id.", required=True, minimum=1,
                  maximum=2**63 - 1),), get_log_entry),  # fmt: skip
    Tool("swf_record_ai_memory", "Record an AI-memory turn",
         "Store one dialogue turn in the AI memory (the store the testbed's dialogue hooks use), so that a later "
         "session can recall it with swf_get_ai_memory.",
         (mirror("ai-memory", "username", "Whose memory.", required=True),
          mirror("ai-memory", "session_id", "The assistant session's id.", required=True),
          text("role", "'user' or 'assistant'.", required=True),
          mirror("ai-memory", "content", "The turn's text.", required=True),
          mirror("ai-memory", "namespace", "Testbed namespace."),
          mirror("ai-memory", "project_path", "The project folder.")),
         record_ai_memory, read_only=False),
    Tool("swf_get_ai_memory", "Recall AI memory",
         "The most recent dialogue turns recorded in the AI memory (2 x turns entries), oldest first.",
         (mirror("ai-memory", "username", "Whose memory (default: the token's user)."),
          integer("turns", "How many exchanges to recall.", default=20, minimum=1, maximum=5000),
          mirror("ai-memory", "namespace", "Only turns of this namespace.")), get_ai_memory),
)  # fmt: skip
