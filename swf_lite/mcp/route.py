"""The ``/mcp/`` route (``/mcp`` too: the middleware serves it as ``/mcp/``): the HTTP side of the MCP
door. Checks in order — method (405, before anything), ``Origin`` (403), the token (401), the media
type (415) — then hands the body to :class:`swf_lite.mcp.protocol.Server`.

Authentication is an swf-lite API token as ``Authorization: Bearer <t>`` (what MCP clients send) or
``Token <t>`` (the REST scheme); the token's user is the default ``username`` of the tools. The host
check and the body limit of the rest of the app apply here too (they run before any route).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import TYPE_CHECKING

import bottle

from swf_lite import __version__, auth
from swf_lite.api.http import dumps
from swf_lite.context import Context

if TYPE_CHECKING:  # imported at the first MCP request: most servers never get one (~15 ms, ~1 MB at start)
    from swf_lite.mcp import protocol

PATH = "/mcp/"
OTHER_METHODS = ("GET", "PUT", "PATCH", "DELETE", "OPTIONS")
SCHEMES = ("bearer", "token")
LOOPBACK_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "::1")
SERVER_NAME = "swf-testbed"  # the real monitor's name; clients' permissions use their config entry's name


def respond(status: int, body: object | None, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    data = b"" if body is None else dumps(body)
    hdrs = {"Content-Length": str(len(data)), "Cache-Control": "no-store", **(headers or {})}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    return bottle.HTTPResponse(body=data, status=status, headers=hdrs)


def origin_allowed(origin: str | None) -> bool:
    """No ``Origin`` (not a browser), or a loopback origin: http(s) on localhost, 127.0.0.1 or [::1]."""
    if origin is None:
        return True
    try:
        parts = urllib.parse.urlsplit(origin.strip())
        host, _ = parts.hostname, parts.port  # .port raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host in LOOPBACK_ORIGIN_HOSTS


def bearer_token(header: str | None) -> str | None:
    """The token of ``Bearer <t>`` or ``Token <t>`` (scheme in any case), else None."""
    parts = (header or "").split()
    if len(parts) != 2 or parts[0].lower() not in SCHEMES:
        return None
    return parts[1]


def mount(app: bottle.Bottle, ctx: Context) -> None:
    """Register ``/mcp/`` (before the app refuses other methods on fixed API paths); the MCP server
    and its tools are built at the first request."""
    built: list[protocol.Server] = []
    building = threading.Lock()

    def mcp_server() -> protocol.Server:
        with building:
            if not built:
                from swf_lite.mcp import protocol, tools

                built.append(protocol.Server(tools.TOOLS, name=SERVER_NAME, title="swf-lite", version=__version__,
                                             instructions=tools.INSTRUCTIONS))  # fmt: skip
        return built[0]

    def broker_connected() -> bool:
        bridge = getattr(ctx, "bridge", None)  # a STOMP bridge, where the server makes one reachable
        return bool(getattr(bridge, "connected", False))

    def not_allowed() -> bottle.HTTPResponse:
        from swf_lite.mcp import protocol

        method = bottle.request.method
        text = (
            f"Method Not Allowed: {method}. This MCP server is stateless and offers no stream: POST JSON-RPC messages"
        )
        return respond(405, protocol.error_body(protocol.INVALID_REQUEST, text), {"Allow": "POST"})

    def handle() -> bottle.HTTPResponse:
        request = bottle.request
        origin = request.get_header("Origin")
        if not origin_allowed(origin):
            return respond(403, {"error": f"Origin not allowed: {str(origin)[:100]}"})
        token = bearer_token(request.get_header("Authorization"))
        challenge = {"WWW-Authenticate": "Bearer"}
        if token is None:
            return respond(401, {"error": "Authorization required"}, challenge)
        try:
            username = auth.authenticate(ctx.store, f"Token {token}")
        except auth.AuthFailed:
            return respond(401, {"error": "Invalid token"}, challenge)
        from swf_lite.mcp import protocol
        from swf_lite.mcp.toolkit import Call

        media = (request.content_type or "").split(";")[0].strip().lower()
        if media != "application/json":
            text = f"Unsupported Media Type: {media or 'none'}; send Content-Type: application/json"
            return respond(415, protocol.error_body(protocol.INVALID_REQUEST, text))
        urlparts = request.urlparts
        call = Call(ctx.service, username, f"{urlparts.scheme}://{urlparts.netloc}", os.environ, broker_connected)
        reply = mcp_server().handle(request.body.read(), request.get_header("MCP-Protocol-Version"), call)
        return respond(reply.status, reply.body)

    app.route(PATH, "POST", handle)
    app.route(PATH, list(OTHER_METHODS), not_allowed)
