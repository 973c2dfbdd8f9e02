"""The endpoints that are not plain resources: health, index, counters, heartbeat upsert,
namespace ensure, log summary and the AI-memory pair. Each parses, calls the service, shapes."""

from __future__ import annotations

import logging
import platform
import sqlite3
from collections.abc import Callable

import bottle
import peewee as pw

from swf_lite import __version__, counters
from swf_lite.api.http import json_response, read_json, require_token
from swf_lite.catalog import BY_NAME, RESOURCES
from swf_lite.context import Context
from swf_lite.errors import Exhausted, Invalid

log = logging.getLogger("swf_lite.api")

MEMORY = BY_NAME["ai-memory"]
DEFAULT_TURNS = 20
MAX_TURNS = 10_000  # a bound: turns=10**30 must not ask for (or allocate) that many rows
REQUIRED = ["This field is required."]
PEEWEE_VERSION: str = pw.__version__  # type: ignore[attr-defined]  # peewee's bundled stubs omit it


def mount(app: bottle.Bottle, ctx: Context) -> None:
    """Register the special routes (before the generic ones: they win over ``<pk>`` routes)."""
    store, service = ctx.store, ctx.service

    @app.get("/health/")
    def health() -> bottle.HTTPResponse:
        return json_response({"status": "ok", "version": __version__, "python": platform.python_version(),
                              "sqlite": sqlite3.sqlite_version, "peewee": PEEWEE_VERSION,
                              "bottle": bottle.__version__})  # fmt: skip

    @app.get("/api/")
    def index() -> bottle.HTTPResponse:
        root = bottle.request.urlparts.scheme + "://" + bottle.request.urlparts.netloc
        return json_response({r.name: f"{root}/api/{r.name}/" for r in RESOURCES if r.generic})

    def counter_route(counter: counters.Counter) -> Callable[[], bottle.HTTPResponse]:
        def handler() -> bottle.HTTPResponse:
            require_token(store)
            try:
                value = service.next_value(counter)
            except Exhausted as exc:  # contract: a failure is 500 with error/status; not a crash, no traceback
                log.error("%s", exc)
                return json_response({"error": str(exc), "status": "error"}, 500)
            except Exception as exc:  # noqa: BLE001 - contract: 500 with error/status
                log.exception("counter %s failed", counter.endpoint)
                return json_response({"error": str(exc), "status": "error"}, 500)
            return json_response({counter.response_key: value, "status": "success"})

        handler.__name__ = counter.endpoint.replace("-", "_")
        return handler

    for counter in counters.COUNTERS:
        app.post(f"/api/state/{counter.endpoint}/", callback=counter_route(counter))

    @app.post("/api/systemagents/heartbeat/")
    def heartbeat() -> bottle.HTTPResponse:
        require_token(store)
        agent, created = service.heartbeat(read_json())
        return json_response(agent, 201 if created else 200)

    @app.post("/api/namespaces/ensure/")
    def ensure_namespace() -> bottle.HTTPResponse:
        require_token(store)
        data = read_json()
        try:
            row, created = service.ensure_namespace(data)
        except Invalid as exc:
            if all(exc.errors.get(k) == REQUIRED for k in exc.errors) and exc.errors.keys() <= {"name", "owner"}:
                # the contract's own shape for a missing name or owner
                return json_response({"error": f"{next(iter(exc.errors))} is required", "status": "error"}, 400)
            raise
        return json_response({"name": row["name"], "owner": row["owner"], "description": row["description"],
                              "created": created, "status": "success"})  # fmt: skip

    @app.get("/api/logs/summary/")
    def logs_summary() -> bottle.HTTPResponse:
        return json_response(service.log_summary())

    @app.post("/api/ai-memory/record/")
    def ai_memory_record() -> bottle.HTTPResponse:
        return json_response(service.create(MEMORY, read_json()))  # the hook checks for exactly 200

    @app.get("/api/ai-memory/")
    def ai_memory_list() -> bottle.HTTPResponse:
        q = bottle.request.query
        params = {key: q.getunicode(key) or "" for key in ("username", "namespace", "session_id")}
        turns = (q.getunicode("turns") or "").strip()  # the middleware has refused a value that is not UTF-8
        digits = turns.isascii() and turns.isdigit()  # isdigit() alone accepts "²", which int() refuses
        n = (min(int(turns), MAX_TURNS) if len(turns) <= 9 else MAX_TURNS) if digits else DEFAULT_TURNS
        items = service.recent_memory(params, n)
        return json_response({"items": items})
