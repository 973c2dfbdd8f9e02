"""The tools that act: send a message, start or stop a workflow, end an execution, mark an agent exited.
Every write goes through the service, exactly as the REST API writes: a message is stored as
``POST /api/workflow-messages/`` stores it (published on the live stream, run lifecycle applied).

swf-lite has no broker connection and no process manager: the start/stop messages reach the live
stream and the store only (each result says so), and the tools that drive a user's agent manager
answer a tool error saying what to run instead.
"""

from __future__ import annotations

from typing import Any

from swf_lite import timefmt
from swf_lite.mcp import queries as q
from swf_lite.mcp import testbed
from swf_lite.mcp.toolkit import Call, Tool, ToolError, boolean, integer, mirror, number, obj, text

EPICTOPIC = "/topic/epictopic"
CONTROL_QUEUE = "/queue/workflow_control"
FORWARDED = (
    "Stored as a workflow message, published on swf-lite's live stream and handed to swf-lite's STOMP bridge, "
    "which sends it to the broker queue where the testbed's workflow runner listens."
)
NOT_FORWARDED = (
    "Stored as a workflow message and published on swf-lite's live stream (GET /api/messages/stream/); swf-lite "
    "has no broker connection, so nothing outside swf-lite received it: a workflow runner listening on the "
    "broker will not act on it."
)
NO_PROCESS_MANAGER = (
    "{tool} needs the testbed's agent manager, which swf-lite does not have (it starts no processes). Run the "
    "agents yourself in swf-testbed instead: `testbed run` (or `testbed agent-manager`, then `testbed "
    "start-agents` / `testbed stop-agents`), with SWF_MONITOR_URL and SWF_API_TOKEN pointing at this swf-lite."
)


def _sender(call: Call) -> str:
    return f"{call.username}-personal-agent"


def _post(call: Call, kind: str, body: dict[str, Any], queue: str, **columns: Any) -> dict[str, Any]:
    """Store ``body`` as a workflow message, as ``POST /api/workflow-messages/`` would."""
    return call.service.create(q.MESSAGES, {"message_type": kind, "sender_agent": _sender(call), "queue_name": queue,
                                            "message_content": body, **columns})  # fmt: skip


def _forwarding(call: Call, more: str = "") -> dict[str, Any]:
    forwarded = call.broker_connected()
    return {"forwarded": forwarded, "note": (FORWARDED if forwarded else NOT_FORWARDED) + more}


def send_message(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    kind = args["message_type"]
    namespace = None if kind == "test" else testbed.load(call.environ).namespace
    body: dict[str, Any] = {
        "msg_type": kind,
        "sender": _sender(call),
        "namespace": namespace,
        "message": args["message"],
        "timestamp": timefmt.iso(call.now),
        "source": "mcp_send_message",
    }
    if args["metadata"] is not None:
        body["metadata"] = args["metadata"]
    row = _post(call, kind, body, EPICTOPIC, namespace=namespace)
    return {"success": True, "message": f"Sent ({kind}) to {EPICTOPIC}: stored as a workflow message and "
                                        "published on the live stream.",
            "sender": body["sender"], "message_type": kind, "namespace": namespace, "content": body,
            "message_id": row["message_id"]}  # fmt: skip


WORKFLOW_OVERRIDES = ("stf_count", "physics_period_count", "physics_period_duration", "stf_interval")


def start_workflow(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    cfg = testbed.load(call.environ)
    namespace = args["namespace"] or cfg.namespace or q.live_manager_namespace(call, call.username)
    if not namespace:
        raise ToolError("No namespace to run the workflow in: give namespace, set [testbed] namespace in the testbed "
                        "config (SWF_TESTBED_CONFIG), or start your agent manager (`testbed agent-manager`) so "
                        "that its namespace is used.")  # fmt: skip
    realtime = args["realtime"] if args["realtime"] is not None else cfg.realtime if cfg.realtime is not None else True
    params = {**cfg.parameters, **{k: args[k] for k in WORKFLOW_OVERRIDES if args[k] is not None},
              "namespace": namespace}  # fmt: skip
    body = {"msg_type": "run_workflow", "namespace": namespace,
            "workflow_name": args["workflow_name"] or cfg.workflow_name or "stf_datataking",
            "config": args["config"] or cfg.config or "fast_processing_default", "realtime": realtime,
            "duration": args["duration"], "params": params, "timestamp": timefmt.iso(call.now),
            "source": "mcp"}  # fmt: skip
    row = _post(call, "run_workflow", body, CONTROL_QUEUE, namespace=namespace)
    return {"success": True, "message": f"Requested workflow {body['workflow_name']} in namespace {namespace}.",
            **{k: body[k] for k in ("workflow_name", "namespace", "config", "realtime", "duration", "params")},
            "message_id": row["message_id"], **_forwarding(call),
            "monitor_urls": [call.page("Workflow executions", "workflow-executions", namespace=namespace)]}  # fmt: skip


def _running_execution(call: Call, execution_id: str) -> tuple[dict[str, Any] | None, str]:
    """(the execution, "") if it is running, else (None, why not)."""
    row = q.execution(call, execution_id)
    if row is None:
        return None, f"Execution {execution_id!r} not found. Use swf_list_workflow_executions to find it."
    if not q.running(row):
        return None, f"Execution {execution_id!r} is not running (status {row['status']!r})."
    return row, ""


def stop_workflow(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    row, why = _running_execution(call, args["execution_id"])
    if row is None:
        return {"success": False, "error": why}
    body = {"msg_type": "stop_workflow", "execution_id": row["execution_id"], "namespace": row["namespace"],
            "timestamp": timefmt.iso(call.now), "source": "mcp"}  # fmt: skip
    message = _post(call, "stop_workflow", body, CONTROL_QUEUE, namespace=row["namespace"],
                    execution_id=row["execution_id"])  # fmt: skip
    return {"success": True, "message": f"Requested to stop execution {row['execution_id']}.",
            "execution_id": row["execution_id"], "namespace": row["namespace"], "message_id": message["message_id"],
            **_forwarding(call, " swf_end_execution marks the execution ended in the monitor.")}  # fmt: skip


def end_execution(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    row, why = _running_execution(call, args["execution_id"])
    if row is None:
        return {"success": False, "error": why}
    ended = {"status": "terminated", "end_time": timefmt.iso(call.now)}
    done = call.service.update(q.EXECUTIONS, row["execution_id"], ended, partial=True)
    return {"success": True, "execution_id": done["execution_id"], "old_status": row["status"],
            "new_status": done["status"], "start_time": done["start_time"], "end_time": done["end_time"]}  # fmt: skip


def kill_agent(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    row = q.agent(call, args["name"])
    if row is None:
        return {"success": False, "error": f"No agent named {args['name']!r}. Use swf_list_agents to find it."}
    done = call.service.update(q.AGENTS, row["id"], {"status": q.EXITED, "operational_state": q.EXITED}, partial=True)
    return {"success": True, "name": done["instance_name"], "pid": done["pid"], "hostname": done["hostname"],
            "killed": False,
            "kill_error": "swf-lite never signals processes: the agent is only marked EXITED here. Stop the process "
                          "with the testbed's agent manager (`testbed stop-agents`) or by hand on host "
                          f"{done['hostname'] or '(unknown)'} (pid {done['pid'] or 'unknown'}); a live agent's next "
                          "heartbeat marks it alive again.",
            "old_state": row["operational_state"], "new_state": done["operational_state"]}  # fmt: skip


def no_process_manager(name: str) -> Any:
    def handler(call: Call, args: dict[str, Any]) -> Any:
        raise ToolError(NO_PROCESS_MANAGER.format(tool=name))

    return handler


EXECUTION = mirror("workflow-executions", "execution_id", "Workflow execution id.", required=True)
USERNAME = mirror("ai-memory", "username", "The testbed user (default: the token's user).")

TOOLS: tuple[Tool, ...] = (
    Tool("swf_send_message", "Send a workflow message",
         "Post a message on the testbed's message topic (/topic/epictopic) as <your user>-personal-agent: it is "
         "stored as a workflow message and published on the live stream that agents and the pages read. Use "
         "message_type 'test' for a message outside any namespace.",
         (text("message", "The message text.", required=True),
          mirror("workflow-messages", "message_type", "The message type (its msg_type).", default="announcement"),
          obj("metadata", "Extra JSON data carried in the message.")),
         send_message, read_only=False),
    Tool("swf_start_workflow", "Start a workflow",
         "Ask the testbed's workflow runner to start a workflow (a run_workflow message on /queue/workflow_control; "
         "stored and published on the live stream — swf-lite has no broker, see the result's note). Arguments "
         "override the testbed config (testbed.toml): workflow name, config, realtime, and the simulation "
         "parameters. Check swf_get_testbed_status first; follow it with swf_get_workflow_monitor.",
         (mirror("workflow-definitions", "workflow_name", "Workflow to run (default: the config's, else "
                                                          "stf_datataking)."),
          mirror("workflow-executions", "namespace", "Namespace (default: the config's, else your agent manager's)."),
          text("config", "Workflow config name (default: the config's, else fast_processing_default)."),
          boolean("realtime", "Run in real time (default: the config's, else true)."),
          integer("duration", "Run duration in seconds (0: until the STF count is reached).", default=0, minimum=0),
          integer("stf_count", "Number of STF files to generate.", minimum=0),
          integer("physics_period_count", "Number of physics periods.", minimum=0),
          number("physics_period_duration", "Length of a physics period in seconds."),
          number("stf_interval", "Seconds between STF files.")),
         start_workflow, read_only=False),
    Tool("swf_stop_workflow", "Stop a workflow",
         "Ask the workflow runner to stop a running execution (a stop_workflow message on /queue/workflow_control; "
         "stored and published on the live stream only — see the result's note). swf_end_execution marks an "
         "execution ended in the monitor.", (EXECUTION,), stop_workflow, read_only=False),
    Tool("swf_end_execution", "End an execution",
         "Mark a running workflow execution terminated (status 'terminated', end time now) — for executions left "
         "'running' after their runner died. Changes the record only.", (EXECUTION,), end_execution,
         read_only=False, destructive=True),
    Tool("swf_kill_agent", "Mark an agent exited",
         "Mark an agent EXITED (status and operational state), e.g. one that died without saying so. swf-lite "
         "never kills processes; the result says how to stop the process itself.",
         (mirror("systemagents", "instance_name", "The agent's instance name.", param="name", required=True),),
         kill_agent, read_only=False, destructive=True),
    Tool("swf_start_user_testbed", "Start a user's testbed",
         "Not available in swf-lite: starting a user's agents needs the testbed's agent manager and supervisord. "
         "The error says what to run instead.",
         (USERNAME, text("config_name", "Testbed config file name.")), no_process_manager("swf_start_user_testbed"),
         read_only=False),
    Tool("swf_stop_user_testbed", "Stop a user's testbed",
         "Not available in swf-lite: stopping a user's agents needs the testbed's agent manager and supervisord. "
         "The error says what to run instead.", (USERNAME,), no_process_manager("swf_stop_user_testbed"),
         read_only=False),
)  # fmt: skip
