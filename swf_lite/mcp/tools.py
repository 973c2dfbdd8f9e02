"""The tool registry swf-lite's MCP server offers, and the instructions it gives a model at
``initialize``. The discovery tools are generated from the registry itself (the real monitor keeps a
hand-written list).
"""

from __future__ import annotations

from typing import Any

from swf_lite.mcp import control, overview, records
from swf_lite.mcp.toolkit import Call, Tool

INSTRUCTIONS = """\
swf-lite is a local SWF Monitor for the ePIC streaming-workflow testbed; these tools read and drive it.

Concepts: agents (DAQ simulator, data, processing, fast-monitoring agents and a per-user agent manager) \
heartbeat to the monitor and exchange workflow messages; a workflow execution runs a workflow definition \
(e.g. stf_datataking) in a user's namespace; a run produces STF (Super Time Frame) files, which yield \
fast-monitoring TF files and TF slices for fast processing; agents post their logs here.

Which tool:
- How is the testbed doing? swf_get_system_state (start here), swf_get_testbed_status.
- What is running? swf_list_agents, swf_list_workflow_executions (currently_running=true).
- How is my workflow doing, why did it fail? swf_get_workflow_monitor, then swf_list_logs (level=ERROR, \
execution_id=...) and swf_list_messages (execution_id=...).
- Data: swf_list_runs / swf_get_run, swf_list_stf_files, swf_list_tf_slices.
- Act: swf_start_workflow, swf_stop_workflow, swf_end_execution, swf_send_message, swf_kill_agent.

Always filter list calls (namespace, execution_id, run_number, time window): lists are capped and say \
total_count and has_more. Times are ISO 8601 in UTC (a time without zone is UTC). Results link to \
swf-lite's own web pages in monitor_urls.
"""


def _available(call: Call, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "parameters": [p.name for p in t.params]} for t in TOOLS]


def _instructions(call: Call, args: dict[str, Any]) -> str:
    return INSTRUCTIONS


DISCOVERY: tuple[Tool, ...] = (
    Tool("swf_list_available_tools", "List the testbed tools",
         "Every tool this server offers, with a one-paragraph description and its parameter names.", (), _available),
    Tool("get_server_instructions", "How to use these tools",
         "The server's guide: testbed concepts, which tool answers which question, and conventions.", (),
         _instructions, text=True),
)  # fmt: skip

TOOLS: tuple[Tool, ...] = (*DISCOVERY, *overview.TOOLS[:1], *records.TOOLS, *overview.TOOLS[1:], *control.TOOLS)
BY_NAME: dict[str, Tool] = {t.name: t for t in TOOLS}
