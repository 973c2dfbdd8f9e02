"""MCP's JSON-RPC 2.0 layer for the Streamable HTTP transport, stateless, answering ``application/json``
(never an SSE stream): MCP revision **2025-11-25**, also accepting 2025-06-18 and 2025-03-26.

One POST carries one JSON-RPC message; :meth:`Server.handle` turns its body (and the
``MCP-Protocol-Version`` header) into one :class:`Reply`: HTTP status and JSON body. No web framework
here: :mod:`swf_lite.mcp.route` does method, origin, authentication and media type first.

Written by hand: the official SDK serves only ASGI (Starlette) and needs Python 3.10; what swf-lite
needs of it — five methods, no sessions, no streams — is this module (see docs/mcp.md).

- Protocol faults are JSON-RPC errors: -32700 (bad JSON) and -32600 (not a request object, a batch, an
  unsupported ``MCP-Protocol-Version``) with HTTP 400, -32601/-32602/-32603 with HTTP 200.
- Tool failures are tool results with ``isError: true`` (the model reads them and corrects itself).
- Notifications and a client's responses get 202 with no body.
- Never the 2026-07-28 revision's own error codes (-32020 to -32022): its dual-era clients fall back to
  ``initialize`` on a plain 400 -32600, and those codes would mark this server as modern.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swf_lite.mcp.toolkit import Call, Tool, ToolError

log = logging.getLogger("swf_lite.mcp")

PROTOCOL_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
ASSUMED_VERSION = "2025-03-26"  # what the spec says to assume when a request carries no version header
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


@dataclass(frozen=True)
class Reply:
    """What to answer: HTTP status and the JSON body (None: no body, for 202)."""

    status: int
    body: dict[str, Any] | None


class Fault(Exception):
    """A JSON-RPC error to answer (HTTP 400 for a request that is not one, else 200)."""

    def __init__(self, code: int, message: str, *, status: int = 200, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.data = data


def error_body(code: int, message: str, id_: Any = None, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": error}


def _valid_id(value: Any) -> bool:
    return (isinstance(value, str) or isinstance(value, int)) and not isinstance(value, bool)


class Server:
    """The MCP server over a set of tools; ``handle`` is called once per POST, from any thread."""

    def __init__(self, tools: Sequence[Tool], *, name: str, title: str, version: str, instructions: str):
        self.tools = {t.name: t for t in tools}
        self.info = {"name": name, "title": title, "version": version}
        self.instructions = instructions

    def handle(self, body: bytes, version_header: str | None, call: Call) -> Reply:
        """One POSTed message -> one reply."""
        try:
            message = self._parse(body)
        except Fault as fault:
            return Reply(fault.status, error_body(fault.code, fault.message, data=fault.data))
        id_ = message.get("id")
        if "method" not in message:  # a response (or error) the client sends us: nothing to answer
            if ("result" in message or "error" in message) and _valid_id(id_):
                return Reply(202, None)
            return Reply(400, error_body(INVALID_REQUEST, "Invalid Request: a message needs a method"))
        method = message["method"]
        if not isinstance(method, str) or not method:
            return Reply(400, error_body(INVALID_REQUEST, "Invalid Request: method must be a non-empty string",
                                         id_ if _valid_id(id_) else None))  # fmt: skip
        if "id" in message and not _valid_id(id_):
            return Reply(400, error_body(INVALID_REQUEST, "Invalid Request: id must be a string or an integer"))
        if method != "initialize" and version_header is not None and version_header.strip() not in SUPPORTED_VERSIONS:
            shown = version_header.strip()[:60]
            text = f"Unsupported protocol version: {shown} (supported: {', '.join(SUPPORTED_VERSIONS)})"
            return Reply(400, error_body(INVALID_REQUEST, text))
        if "id" not in message:  # a notification (notifications/initialized, cancelled, ...): no answer
            return Reply(202, None)
        params = message.get("params", {})
        try:
            if not isinstance(params, dict):
                raise Fault(INVALID_PARAMS, "Invalid params: params must be an object")
            result = self._dispatch(method, params, call)
        except Fault as fault:
            return Reply(fault.status, error_body(fault.code, fault.message, id_, fault.data))
        except Exception:  # noqa: BLE001 - the answer must still be JSON-RPC; the traceback goes to the log
            log.exception("MCP %s failed", method)
            return Reply(200, error_body(INTERNAL_ERROR, "Internal error", id_))
        return Reply(200, {"jsonrpc": "2.0", "id": id_, "result": result})

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        try:
            message = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise Fault(PARSE_ERROR, f"Parse error: {exc}"[:200], status=400) from None
        if isinstance(message, list):
            raise Fault(INVALID_REQUEST, "Invalid Request: batches are not supported (send one message per POST)",
                        status=400)  # fmt: skip
        if not isinstance(message, dict):
            raise Fault(INVALID_REQUEST, "Invalid Request: a message must be a JSON object", status=400)
        if message.get("jsonrpc") != "2.0":
            raise Fault(INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"', status=400)
        return message

    def _dispatch(self, method: str, params: Mapping[str, Any], call: Call) -> Any:
        if method == "initialize":
            return self.initialize(params)
        if method == "ping":
            return {}
        if method == "tools/list":
            return {"tools": [t.declaration() for t in self.tools.values()]}
        if method == "tools/call":
            return self.call_tool(params, call)
        raise Fault(METHOD_NOT_FOUND, f"Method not found: {method[:100]}")

    def initialize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Version negotiation: the client's version if supported, else ours (the client decides)."""
        asked = params.get("protocolVersion")
        if not isinstance(asked, str):
            raise Fault(INVALID_PARAMS, "Invalid params: initialize needs params.protocolVersion (a string)")
        return {
            "protocolVersion": asked if asked in SUPPORTED_VERSIONS else PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": dict(self.info),
            "instructions": self.instructions,
        }

    def call_tool(self, params: Mapping[str, Any], call: Call) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise Fault(INVALID_PARAMS, "Invalid params: tools/call needs params.name (a string)")
        tool = self.tools.get(name)
        if tool is None:
            raise Fault(INVALID_PARAMS, f"Unknown tool: {name[:100]}")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise Fault(INVALID_PARAMS, "Invalid params: tools/call arguments must be an object")
        try:
            value = tool.run(call, arguments)
        except ToolError as exc:
            return tool_error(str(exc))
        except Exception as exc:  # noqa: BLE001 - a tool's failure is a tool result the model can read
            log.exception("MCP tool %s failed", name)
            return tool_error(f"{name} failed: {type(exc).__name__}: {exc}"[:500] + " (the server log has details)")
        return tool_result(value, text=tool.text)


def tool_result(value: Any, *, text: bool = False) -> dict[str, Any]:
    """A successful tool result: the value as JSON text (or plain text), and as structured content
    when it is a JSON object."""
    shown = str(value) if text else json.dumps(value, ensure_ascii=False)
    out: dict[str, Any] = {"content": [{"type": "text", "text": shown}]}
    if isinstance(value, dict) and not text:
        out["structuredContent"] = value
    out["isError"] = False
    return out


def tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}
