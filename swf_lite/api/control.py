"""The test-control API under ``/_swf_lite/`` (not part of the real monitor's contract).

- ``POST /_swf_lite/reset/``: empty every table, restart the counters (or set them from
  ``{"counters": {"next_run_number": 200000, ...}}``) and clear stream buffers.
- ``POST /_swf_lite/seed/``: load a JSON body in the seed-file format (see :mod:`swf_lite.seeding`),
  all or nothing.
- ``GET /_swf_lite/config/``: the settings as JSON (database credentials masked; no tokens).
- ``POST /_swf_lite/session/`` (token): sets the browser session cookie the event streams accept;
  ``DELETE`` clears it.

All need a token. A ``GET`` of a POST-only endpoint answers 400 saying to use POST (a browser or a
curl without ``-X POST`` should get a reason, not a bare 405).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bottle

from swf_lite import __version__, auth, counters, seeding
from swf_lite.api.http import ApiError, json_response, read_json, require_token
from swf_lite.config import Settings, mask_url
from swf_lite.context import Context

PREFIX = "/_swf_lite"
__all__ = ["PREFIX", "mask_url", "mount", "public_settings"]  # mask_url lives in swf_lite.config


def mount(app: bottle.Bottle, ctx: Context) -> None:
    """Register the control routes (paths end with ``/``; the middleware adds a missing one)."""
    store, service = ctx.store, ctx.service

    def require_staff() -> str:
        """Deleting or replacing everyone's data is for staff users (the default user is staff)."""
        username = require_token(store)
        who = auth.user(store, username)
        if who is None or not who.is_staff:
            raise ApiError(403, "You do not have permission to perform this action.")
        return username

    @app.post(f"{PREFIX}/reset/")
    def reset() -> bottle.HTTPResponse:
        require_staff()
        body = read_json()
        try:
            wanted = counters.normalize(body.get("counters") or {})
        except ValueError as exc:
            raise ApiError(400, {"counters": [str(exc)]}) from None
        started = time.perf_counter()
        ctx.reset(wanted)
        return json_response({"status": "success", "counters": service.next_values(),
                              "elapsed_ms": round((time.perf_counter() - started) * 1000, 2)})  # fmt: skip

    @app.post(f"{PREFIX}/seed/")
    def seed() -> bottle.HTTPResponse:
        require_staff()
        body = read_json()
        try:
            loaded = seeding.load(service, body)
        except ValueError as exc:
            raise ApiError(400, {"detail": str(exc)}) from None
        return json_response({"status": "success", "loaded": loaded, "counters": service.next_values()})

    @app.get(f"{PREFIX}/config/")
    def config() -> bottle.HTTPResponse:
        require_token(store)
        out = {"version": __version__, "settings": public_settings(ctx.settings),
               "database": {"engine": ctx.store.dialect.name, "pool": ctx.store.pool,
                            "connections_in_use": ctx.store.open_connections,
                            "change_feed": ctx.feed.origin if ctx.feed else None}}  # fmt: skip
        if ctx.bridge is not None:
            out["bridge"] = ctx.bridge.status()
        return json_response(out)

    @app.post(f"{PREFIX}/session/")
    def session_start() -> bottle.HTTPResponse:
        username = require_token(store)
        resp = json_response({"status": "success", "username": username})
        resp.set_cookie(auth.SESSION_COOKIE, auth.session_value(store, username), path="/", httponly=True,
                        samesite="strict")  # fmt: skip
        return resp

    @app.delete(f"{PREFIX}/session/")
    def session_end() -> bottle.HTTPResponse:
        resp = json_response({"status": "success"})
        resp.delete_cookie(auth.SESSION_COOKIE, path="/")
        return resp

    def post_only(name: str) -> Callable[[], None]:
        def handler() -> None:
            raise ApiError(400, f"{PREFIX}/{name}/ takes POST with a JSON body (and a token), not GET.")

        handler.__name__ = f"{name}_get"
        return handler

    for name in ("reset", "seed"):
        app.get(f"{PREFIX}/{name}/", callback=post_only(name))


def public_settings(settings: Settings) -> dict[str, Any]:
    """``Settings.public()`` without secrets: a password in the database URL is masked."""
    out = settings.public()
    out["db"] = mask_url(out.get("db") or "")
    out["db_url"] = mask_url(settings.db_url)
    return out
