"""The one WSGI application both servers run: two bottle apps behind a thin middleware.

Request flow: middleware (slash on JSON paths, size limit, DB connection, access log) -> the API app
(JSON paths) or the pages app (everything else, built on the first page request) -> bottle route ->
json_errors plugin -> handler (generic resource, special endpoint, stream, control, page) -> service.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import bottle

from swf_lite.api import control, resources, schema, special, stream
from swf_lite.api.http import ApiError, dumps, json_errors, store_unavailable
from swf_lite.context import Context
from swf_lite.errors import Unavailable
from swf_lite.mcp import route as mcp_route

access_log = logging.getLogger("swf_lite.access")

JSON_PREFIXES = ("/api/", "/_swf_lite/", "/health", "/mcp/")


class Router(bottle.Router):
    """bottle's router, compiling each method's combined pattern once, when the first request arrives:
    bottle recompiles it on every route added, which made start-up 0.26 s slower for 300 routes.
    It also answers the methods a fixed API path lacks (:meth:`refuse`) before any pattern is tried."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self._stale: set[str] = set()
        self._refusals: dict[str, tuple[frozenset[str], bottle.Route]] = {}

    def _compile(self, method: str) -> None:
        self._stale.add(method)

    def refuse(self, path: str, methods: frozenset[str], route: bottle.Route) -> None:
        """Requests for ``path`` with one of ``methods`` go to ``route``, whatever else would match."""
        self._refusals[path] = (methods, route)

    def match(self, environ: dict[str, Any]) -> Any:
        if self._stale:
            with _COMPILE_LOCK:
                for method in list(self._stale):
                    super()._compile(method)
                    self._stale.discard(method)
        refusal = self._refusals.get(environ.get("PATH_INFO") or "/") if self._refusals else None
        if refusal is not None and environ["REQUEST_METHOD"].upper() in refusal[0]:
            return refusal[1], {}
        return super().match(environ)


_COMPILE_LOCK = threading.Lock()


def new_app() -> bottle.Bottle:
    """A bottle app with the lazily compiling router, no automatic JSON and the json_errors plugin."""
    app = bottle.Bottle(catchall=True)
    vars(app)["router"] = Router()  # bottle guards its attributes against plugins rebinding them
    app.config["json.enable"] = False
    app.install(json_errors)
    return app


def build_app(ctx: Context) -> bottle.Bottle:
    """The API: every JSON path (``/api/``, ``/_swf_lite/``, ``/health/``, ``/mcp/``)."""
    app = new_app()
    special.mount(app, ctx)  # specific paths first: they win over the generic <pk> routes
    stream.mount(app, ctx)
    control.mount(app, ctx)
    schema.mount(app, ctx)
    resources.ResourceAPI(ctx).mount(app)
    mcp_route.mount(app, ctx)  # /mcp/: answers every method itself (405 but POST)
    refuse_other_methods(app)
    app.default_error_handler = _json_error
    return app


def build_pages(ctx: Context) -> bottle.Bottle:
    """The web interface: every other path. Built on the first page request, not at start: its modules
    and routes are ~25 ms that an agent's API never needs."""
    from swf_lite.pages import admin, render, views

    app = new_app()
    pages = views.mount(app, ctx)
    admin.mount(app, ctx, pages)
    app.default_error_handler = render.error_page
    return app


class Lazy:
    """A WSGI app that ``factory`` builds when the first request arrives (once, whichever thread asks)."""

    def __init__(self, factory: Callable[[], Callable[..., Iterable[bytes]]]):
        self._factory = factory
        self._app: Callable[..., Iterable[bytes]] | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._app is not None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
                app = self._app
        return app(environ, start_response)


METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def refuse_other_methods(app: bottle.Bottle) -> None:
    """A fixed API path (``/api/namespaces/ensure/``, ``/api/logs/summary/``) answers any method it
    does not have with 405 and its own ``Allow`` — as DRF's router does — instead of falling through
    to the resource's ``<pk>`` route (a 404, or a 405 advertising the resource's methods). One router
    entry per path, not a route per missing method (150 routes, ~6 ms of every start)."""
    allowed: dict[str, set[str]] = {}
    for route in app.routes:
        if "<" not in route.rule and is_json_path(route.rule):
            allowed.setdefault(route.rule, set()).add(route.method)
    for rule, methods in allowed.items():
        allow = ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
        refusal = bottle.Route(app, rule, "ANY", _not_allowed(allow))  # through the plugins, in no route table
        app.router.refuse(rule, METHODS - methods, refusal)


def _not_allowed(allow: str) -> Callable[[], None]:
    def not_allowed() -> None:
        raise ApiError(405, f'Method "{bottle.request.method}" not allowed.', {"Allow": allow})

    return not_allowed


def is_json_path(path: str) -> bool:
    return path.startswith(JSON_PREFIXES) or path in ("/health", "/api", "/_swf_lite", "/mcp")


def _json_error(err: bottle.HTTPError) -> bytes:
    """bottle's own errors on the API (no route, wrong method, crash), in DRF's JSON shape."""
    if err.status_code == 500 and err.exception is not None:
        logging.getLogger("swf_lite.api").error("unhandled: %s", err.traceback)
    bottle.response.content_type = "application/json"
    if err.status_code == 404:
        detail = "Not found."
    elif err.status_code == 405:
        detail = f'Method "{bottle.request.method}" not allowed.'
    else:
        detail = "Internal server error." if err.status_code >= 500 else str(err.body)
    return dumps({"detail": detail})


class ClientError(Exception):
    """A request the middleware refuses before any route sees it (status line, JSON detail or body)."""

    def __init__(self, status: str, body: dict[str, Any]):
        super().__init__(status, body)
        self.status = status
        self.body = body


def printable(text: str) -> str:
    """``text`` safe for one log line: control and other non-printable characters (CR, LF, ESC, the
    Unicode line separators) become escapes, so a URL cannot forge or colour log lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def wsgi_text(value: str) -> str | None:
    """A WSGI environ string (bytes carried as latin-1) as UTF-8 text; None if the bytes are not UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


class Middleware:
    """Path normalisation (JSON paths only: a file under ``/static/`` keeps its name), encoding checks of
    the path, query and headers, the body (size limit, read in full here), a pooled DB connection per request,
    the access log — and the last line of defence: whatever fails outside a route answers JSON."""

    def __init__(self, app: Callable[..., Any], ctx: Context, pages: Callable[..., Any]):
        self.app = app  # JSON paths
        self.pages = pages  # every other path
        self.ctx = ctx

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO") or "/"
        wire = environ.get("wsgi.input")  # cheroot's reader: _handle replaces it with the body read
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        try:
            result = self._handle(environ, recording_start_response)
        except ClientError as exc:
            _stop_reading(wire, start_response)
            result = self._json(recording_start_response, exc.status, exc.body, close=True)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never an empty body or a traceback
            if isinstance(exc, Unavailable) or store_unavailable(exc):
                logging.getLogger("swf_lite.api").warning("database unavailable: %s", exc)
                body = {"detail": str(exc) if isinstance(exc, Unavailable) else
                        "Service temporarily unavailable: the database cannot be used now."}  # fmt: skip
                result = self._json(recording_start_response, "503 Service Unavailable", body, retry=True)
            else:
                logging.getLogger("swf_lite.api").exception("unexpected failure outside a route")
                _stop_reading(wire, start_response)
                body = {"detail": f"Internal server error: {type(exc).__name__}"}
                result = self._json(recording_start_response, "500 Internal Server Error", body, close=True)
        if access_log.isEnabledFor(logging.INFO):
            elapsed = (time.perf_counter() - started) * 1000
            status = status_holder[-1].split(" ", 1)[0] if status_holder else "-"
            method = printable(str(environ.get("REQUEST_METHOD")))
            shown = printable(wsgi_text(path) or path.encode("latin-1", "replace").decode("utf-8", "backslashreplace"))
            access_log.info("%s %s %s %.1fms", method, shown, status, elapsed)
        return result

    def _handle(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        self._check_encoding(environ, path)
        api = is_json_path(path)
        if not path.endswith("/") and api:
            environ["PATH_INFO"] = path = path + "/"  # served directly: API clients treat 3xx as errors
        elif not path.endswith("/") and not path.startswith("/static/"):
            return self._redirect(environ, start_response, path + "/")  # a page: browsers follow
        if not self._read_body(environ):
            limit = self.ctx.settings.max_body
            raise ClientError(
                "413 Payload Too Large", {"detail": f"Request body is larger than the limit of {limit} bytes."}
            )
        self.ctx.store.connect()
        try:
            return (self.app if api else self.pages)(environ, start_response)
        finally:
            self.ctx.store.release()  # back to the pool: a stream has released it already

    @staticmethod
    def _json(start_response: Callable[..., Any], status: str, obj: Any, close: bool = False,
              retry: bool = False) -> Iterable[bytes]:  # fmt: skip
        body = dumps(obj)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if close:  # the rest of what the client sent cannot be trusted to start a request
            headers.append(("Connection", "close"))
        if retry:
            headers.append(("Retry-After", "1"))
        start_response(status, headers, sys.exc_info() if sys.exc_info()[0] else None)
        return [body]

    @staticmethod
    def _check_encoding(environ: dict[str, Any], path: str) -> None:
        """Path, query and header values must be UTF-8: a filter that cannot be read is refused, never
        silently dropped (bottle's ``getunicode`` would return None)."""
        if not path.isascii() and wsgi_text(path) is None:  # ASCII is UTF-8: the usual case costs one scan
            raise ClientError("400 Bad Request", {"detail": "The request path is not valid UTF-8."})
        query = environ.get("QUERY_STRING") or ""
        plain = query.isascii() and "%" not in query  # nothing to decode: valid as it stands
        for pair in () if plain else query.replace(";", "&").split("&"):
            if not pair:
                continue
            raw_name, _, raw_value = pair.partition("=")
            try:
                name = _unquote(raw_name)
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise ClientError("400 Bad Request", {"detail": "A query parameter name is not valid UTF-8."}) from None
            try:
                _unquote(raw_value)
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise ClientError("400 Bad Request", {name: ["The value is not valid UTF-8."]}) from None
        for key, value in environ.items():  # ASCII first: the usual header costs one scan
            if isinstance(value, str) and not value.isascii() and key.startswith(("HTTP_", "CONTENT_")):
                if wsgi_text(value) is None:
                    header = key.removeprefix("HTTP_").replace("_", "-").title()
                    raise ClientError("400 Bad Request", {"detail": f"The {header} header is not valid UTF-8."})

    def _read_body(self, environ: dict[str, Any]) -> bool:
        """Enforce the body limit and read the body here, in full: a body shorter than its
        Content-Length, a stalled client or bad chunked encoding is answered here (400/408) instead of
        reaching a route half read. A chunked body (cheroot de-chunks it) is handed on as a sized body:
        bottle would try to de-chunk again. False if the body is over the limit."""
        limit = self.ctx.settings.max_body
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length.isdigit() and not chunked:
            expected = int(length)
            if expected > limit:
                return False
            if expected == 0:
                return True
            data = self._read(environ, expected)
            if len(data) < expected:
                detail = (
                    f"The request body ended after {len(data)} of the {expected} bytes its Content-Length announced."
                )
                raise ClientError("400 Bad Request", {"detail": detail})
        elif chunked:
            data = self._read(environ, limit + 1)
            if len(data) > limit:
                return False
            del environ["HTTP_TRANSFER_ENCODING"]
        else:
            return True
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        return True

    @staticmethod
    def _read(environ: dict[str, Any], size: int) -> bytes:
        """Up to ``size`` body bytes (fewer if the client stops sending)."""
        stream = environ["wsgi.input"]
        parts: list[bytes] = []
        got = 0
        try:
            while got < size:
                part = stream.read(min(size - got, 64 * 1024))
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except (socket.timeout, TimeoutError):
            raise ClientError("408 Request Timeout", {"detail": "The request body did not arrive in time."}) from None
        except ValueError as exc:  # cheroot's chunked reader: bad chunk size or framing
            raise ClientError("400 Bad Request", {"detail": f"Malformed chunked request body: {exc}"}) from None
        except OSError as exc:
            raise ClientError("400 Bad Request", {"detail": f"The request body could not be read: {exc}"}) from None
        return b"".join(parts)

    @staticmethod
    def _redirect(environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING")
        location = urllib.parse.quote(path, safe="/%") + (f"?{query}" if query else "")
        start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
        return [b""]


def _unquote(raw: str) -> str:
    """One query name or value, percent-decoded strictly as UTF-8 (``+`` is a space)."""
    return urllib.parse.unquote_to_bytes(raw.replace("+", " ").encode("latin-1")).decode("utf-8")


def _stop_reading(stream: Any, start_response: Callable[..., Any]) -> None:
    """After a refused request, read nothing more of this connection: cheroot would first drain the
    rest of a sized body and then parse whatever follows a broken body (or read a timed-out socket)
    as the next request — a ``Connection: close`` header from the app stops neither. So the body
    reader is marked done, and cheroot's request (the gateway behind ``start_response``, under any
    wrappers) is told to close the connection after this response, lingering so that a client still
    sending its body reads this answer rather than a connection reset."""
    if isinstance(getattr(stream, "remaining", None), int):
        stream.remaining = 0
    req = _cheroot_request(start_response)
    if req is not None:
        req.close_connection = True
        req.conn.linger_after_refusal = True  # the edge drains what the client still sends: no reset


def _cheroot_request(start_response: Callable[..., Any], depth: int = 4) -> Any:
    """cheroot's HTTPRequest behind ``start_response`` (a gateway's bound method, maybe wrapped in
    closures by outer WSGI layers), or None."""
    req = getattr(getattr(start_response, "__self__", None), "req", None)
    if hasattr(req, "close_connection"):
        return req
    if depth > 0:
        for cell in getattr(start_response, "__closure__", None) or ():
            try:
                inner = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(inner):
                found = _cheroot_request(inner, depth - 1)
                if found is not None:
                    return found
    return None
