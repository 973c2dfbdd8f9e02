"""The endpoints that are not plain resources: health, index, counters, heartbeat upsert,
namespace ensure, log summary and the AI-memory pair."""

from __future__ import annotations

import datetime as dt
import logging
import platform
import sqlite3

import bottle
import peewee as pw

from swf_lite import __version__, counters, fields, timefmt
from swf_lite.api.http import ApiError, json_response, read_json, require_token
from swf_lite.catalog import BY_NAME, RESOURCES

log = logging.getLogger("swf_lite.api")

AGENTS = BY_NAME["systemagents"]
HEARTBEAT_DEFAULTS = {"agent_type": "other", "description": "", "status": "OK", "agent_url": None, "namespace": None}
HEARTBEAT_OPTIONAL = ("workflow_enabled", "operational_state", "pid", "hostname", "metadata",
                      "current_stf_count", "total_stf_processed")  # fmt: skip


def mount(app: bottle.Bottle, ctx, resources) -> None:
    """Register the special routes; ``resources`` is the generic ResourceAPI (for validation/saving)."""
    store = ctx.store

    @app.get("/health/")
    def health():
        return json_response({"status": "ok", "version": __version__, "python": platform.python_version(),
                              "sqlite": sqlite3.sqlite_version, "peewee": pw.__version__,
                              "bottle": bottle.__version__})  # fmt: skip

    @app.get("/api/")
    def index():
        root = bottle.request.urlparts.scheme + "://" + bottle.request.urlparts.netloc
        return json_response({r.name: f"{root}/api/{r.name}/" for r in RESOURCES if r.generic})

    def counter_route(counter: counters.Counter):
        def handler():
            require_token(store)
            try:
                value = counters.next_value(store, counter)
            except Exception as exc:  # noqa: BLE001 - contract: 500 with error/status
                log.exception("counter %s failed", counter.endpoint)
                return json_response({"error": str(exc), "status": "error"}, 500)
            return json_response({counter.response_key: value, "status": "success"})

        handler.__name__ = counter.endpoint.replace("-", "_")
        return handler

    for counter in counters.COUNTERS:
        app.post(f"/api/state/{counter.endpoint}/", callback=counter_route(counter))

    def post_only(path: str) -> None:
        """Other methods on a POST-only action path answer 405 (not the detail route's 404)."""

        def not_allowed():
            raise ApiError(405, f'Method "{bottle.request.method}" not allowed.', {"Allow": "POST, OPTIONS"})

        not_allowed.__name__ = "not_allowed_" + path.strip("/").replace("/", "_").replace("-", "_")
        app.route(path, ["GET", "PUT", "PATCH", "DELETE"], not_allowed)

    post_only("/api/systemagents/heartbeat/")
    post_only("/api/namespaces/ensure/")

    @app.post("/api/systemagents/heartbeat/")
    def heartbeat():
        require_token(store)
        data = read_json()
        name = data.get("instance_name")
        if not isinstance(name, (str, int)) or not str(name).strip():
            raise ApiError(400, {"instance_name": ["This field is required."]})
        body = {"instance_name": name}
        body.update({k: data.get(k) if data.get(k) is not None else v for k, v in HEARTBEAT_DEFAULTS.items()})
        body.update({k: data[k] for k in HEARTBEAT_OPTIONAL if k in data})
        values = resources.clean(AGENTS, body, creating=False, partial=True, strict_choices=False)
        values["instance_name"] = str(name)
        now = timefmt.utcnow()
        values["last_heartbeat"] = values["updated_at"] = now
        model = store.model(AGENTS)
        with store.atomic():
            row = model.select().where(model.instance_name == values["instance_name"]).dicts().first()
            if row is None:
                full = resources.clean(AGENTS, {"instance_name": name, "agent_type": "other"}, creating=True,
                                       strict_choices=False)  # fmt: skip
                full.update(values)
                out, status = resources.save_new(AGENTS, full), 201
            else:
                store.update(AGENTS, row["id"], values)
                row.update(values)
                out, status = fields.represent(AGENTS, row), 200
            stale = now - dt.timedelta(seconds=ctx.settings.stale_agent_seconds)
            model.update(status="EXITED", operational_state="EXITED", updated_at=now).where(
                (model.last_heartbeat < stale) & (model.status != "EXITED") & (model.id != out["id"])
            ).execute()
        return json_response(out, status)

    @app.post("/api/namespaces/ensure/")
    def ensure_namespace():
        require_token(store)
        data = read_json()
        for key in ("name", "owner"):
            if not str(data.get(key) or "").strip():
                return json_response({"error": f"{key} is required", "status": "error"}, 400)
        r = BY_NAME["namespaces"]
        with store.atomic():
            row = store.get(r, str(data["name"]))
            created = row is None
            if created:
                values = resources.clean(r, data, creating=True)
                out = resources.save_new(r, values)
            else:
                out = fields.represent(r, row)
        return json_response({"name": out["name"], "owner": out["owner"], "description": out["description"],
                              "created": created, "status": "success"})  # fmt: skip

    @app.get("/api/logs/summary/")
    def logs_summary():
        return json_response(log_summary(store))

    memory = BY_NAME["ai-memory"]

    @app.post("/api/ai-memory/record/")
    def ai_memory_record():
        values = resources.clean(memory, read_json(), creating=True)
        return json_response(resources.save_new(memory, values))  # the hook checks for exactly 200

    @app.get("/api/ai-memory/")
    def ai_memory_list():
        q = bottle.request.query
        model = store.model(memory)
        query = model.select()
        for key in ("username", "namespace", "session_id"):
            if q.getunicode(key):
                query = query.where(getattr(model, key) == q.getunicode(key))
        turns = q.getunicode("turns") or "20"
        limit = int(turns) if turns.isdigit() else 20
        rows = list(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit).dicts())
        return json_response({"items": [fields.represent(memory, row) for row in reversed(rows)]})


def log_summary(store) -> dict:
    """``{app: {instance: {"error_counts": {levelname: n}, "recent_errors": [...]}}}``."""
    out: dict = {}
    counts = store.db.execute_sql(
        'SELECT app_name, instance_name, levelname, COUNT(*) FROM "logs" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3'
    )
    for app_name, instance, levelname, n in counts.fetchall():
        entry = out.setdefault(app_name, {}).setdefault(instance, {"error_counts": {}, "recent_errors": []})
        entry["error_counts"][levelname] = n
    recent = store.db.execute_sql(
        "SELECT app_name, instance_name, timestamp, levelname, message, module, funcname, lineno FROM ("
        " SELECT *, ROW_NUMBER() OVER (PARTITION BY app_name, instance_name ORDER BY timestamp DESC, id DESC) AS n"
        " FROM \"logs\" WHERE levelname IN ('ERROR', 'CRITICAL')) WHERE n <= 5 ORDER BY 1, 2, n"
    )
    for app_name, instance, stamp, levelname, message, module, funcname, lineno in recent.fetchall():
        when = dt.datetime.fromisoformat(stamp)
        out[app_name][instance]["recent_errors"].append(
            {
                "timestamp": timefmt.iso(when),
                "levelname": levelname,
                "message": message,
                "module": module,
                "funcname": funcname,
                "lineno": lineno,
            }  # fmt: skip
        )
    return out
