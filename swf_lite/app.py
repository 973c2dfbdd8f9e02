"""The one WSGI application both servers run: a bottle app wrapped in a thin middleware.

Request flow: middleware (slash on JSON paths, size limit, DB connection, access log) -> bottle
route -> json_errors plugin -> handler (generic resource, special endpoint, stream, control) ->
service.
"""

from __future__ import annotations

import io
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import bottle

from swf_lite.api import control, resources, schema, special, stream
from swf_lite.api.http import dumps, json_errors
from swf_lite.context import Context
from swf_lite.pages import admin, views
from swf_lite.pages.render import SECURITY_HEADERS, TEMPLATE

access_log = logging.getLogger("swf_lite.access")

JSON_PREFIXES = ("/api/", "/_swf_lite/", "/health")


def build_app(ctx: Context) -> bottle.Bottle:
    app = bottle.Bottle(catchall=True)
    app.config["json.enable"] = False
    app.install(json_errors)
    special.mount(app, ctx)  # specific paths first: they win over the generic <pk> routes
    stream.mount(app, ctx)
    control.mount(app, ctx)
    schema.mount(app, ctx)
    resources.ResourceAPI(ctx).mount(app)
    pages = views.mount(app, ctx)  # after the API: page paths never shadow API paths
    admin.mount(app, ctx, pages)
    app.default_error_handler = _error_page
    return app


def is_json_path(path: str) -> bool:
    return path.startswith(JSON_PREFIXES) or path in ("/health", "/api", "/_swf_lite")


def _error_page(err: bottle.HTTPError) -> bytes:
    """Bottle's own errors (no route, wrong method, crash): JSON under the API prefixes."""
    path = bottle.request.path
    if err.status_code == 500 and err.exception is not None:
        logging.getLogger("swf_lite.api").error("unhandled: %s", err.traceback)
    if is_json_path(path):
        bottle.response.content_type = "application/json"
        if err.status_code == 404:
            detail = "Not found."
        elif err.status_code == 405:
            detail = f'Method "{bottle.request.method}" not allowed.'
        else:
            detail = "Internal server error." if err.status_code >= 500 else str(err.body)
        return dumps({"detail": detail})
    for name, value in SECURITY_HEADERS.items():
        bottle.response.set_header(name, value)
    bottle.response.content_type = "text/html; charset=utf-8"
    text = {404: "There is no page at this address.", 405: "This page does not take that method."}.get(
        err.status_code, "Something went wrong; the server log has the details."
    )
    return TEMPLATE.render("message", title=err.status_line, here="", text=text).encode()


class Middleware:
    """Path normalisation (JSON paths only: a file under ``/static/`` keeps its name), body size limit,
    per-thread DB connection and the access log."""

    def __init__(self, app: Callable[..., Any], ctx: Context):
        self.app = app
        self.ctx = ctx

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO") or "/"
        if not path.endswith("/") and is_json_path(path):
            environ["PATH_INFO"] = path = path + "/"  # served directly: API clients treat 3xx as errors
        elif not path.endswith("/") and not path.startswith("/static/"):
            return self._redirect(environ, start_response, path + "/")  # a page: browsers follow
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        if self._body_fits(environ):
            self.ctx.store.connect()
            result: Any = self.app(environ, recording_start_response)
        else:
            limit = self.ctx.settings.max_body
            body = dumps({"detail": f"Request body is larger than the limit of {limit} bytes."})
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            recording_start_response("413 Payload Too Large", [*headers, ("Connection", "close")])
            result = [body]
        if access_log.isEnabledFor(logging.INFO):
            elapsed = (time.perf_counter() - started) * 1000
            status = status_holder[0].split(" ", 1)[0] if status_holder else "-"
            access_log.info("%s %s %s %.1fms", environ.get("REQUEST_METHOD"), path, status, elapsed)
        return result

    @staticmethod
    def _redirect(environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING")
        location = urllib.parse.quote(path, safe="/%") + (f"?{query}" if query else "")
        start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
        return [b""]

    def _body_fits(self, environ: dict[str, Any]) -> bool:
        """Enforce the body limit. A chunked body (cheroot has already de-chunked it) is read here,
        at most limit + 1 bytes, and handed on as a sized body: bottle would try to de-chunk again."""
        limit = self.ctx.settings.max_body
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            return int(length) <= limit
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return True
        data = environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            return False
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        del environ["HTTP_TRANSFER_ENCODING"]
        return True
