"""Request and response plumbing shared by every API handler: one JSON error shape (DRF's),
body parsing with DRF's wording, and the token check."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import bottle

from swf_lite import auth
from swf_lite.db import Store
from swf_lite.errors import Invalid, NotFound, Unavailable

log = logging.getLogger("swf_lite.api")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, not ASCII-escaped (DRF's renderer output)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    body = dumps(obj)
    hdrs = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    hdrs.update(headers or {})
    return bottle.HTTPResponse(body=body, status=status, headers=hdrs)


class ApiError(Exception):
    """Raise anywhere in a handler: becomes a JSON response with this status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body if isinstance(body, (dict, list)) else {"detail": body}
        self.headers = headers or {}

    def response(self) -> bottle.HTTPResponse:
        return json_response(self.body, self.status, self.headers)


def read_json() -> dict[str, Any]:
    """The request body as a dict, or ApiError with DRF's status and wording."""
    request = bottle.request
    ctype = (request.content_type or "").split(";")[0].strip().lower()
    raw = request.body.read()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {k: request.forms.getunicode(k) for k in request.forms}
    if not raw.strip():
        return {}
    if ctype != "application/json" and not ctype.endswith("+json") and ctype:
        raise ApiError(415, f'Unsupported media type "{ctype}" in request.')
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "JSON parse error - nesting too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ApiError(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {got}."]})
    return data


def _reject_constant(name: str) -> Any:
    """DRF's strict JSON: NaN and Infinity are not JSON."""
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def require_token(store: Store) -> str:
    """The authenticated username, or a 401 like DRF's TokenAuthentication."""
    try:
        return auth.authenticate(store, bottle.request.get_header("Authorization"))
    except auth.AuthFailed as exc:
        raise ApiError(401, exc.detail, {"WWW-Authenticate": "Token"}) from None


def json_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Bottle plugin: ApiError, the domain errors and unexpected failures become JSON (DRF's shapes);
    nothing leaks as HTML."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except ApiError as exc:
            return exc.response()
        except Invalid as exc:
            return json_response(exc.errors, 400)
        except NotFound as exc:
            return json_response({"detail": exc.detail}, 404)
        except Unavailable as exc:
            return json_response({"detail": str(exc) or "Service temporarily unavailable."}, 503,
                                 {"Retry-After": "1"})  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the last line of defence, logged with traceback
            log.exception("unexpected failure in %s %s", bottle.request.method, bottle.request.path)
            return json_response({"detail": f"Internal server error: {type(exc).__name__}"}, 500)

    return wrapper


def require_token_or_session(store: Store) -> str:
    """Token header, or (for browsers: an EventSource cannot send headers) a session cookie: the
    admin's, or the one ``POST /_swf_lite/session/`` sets. Only the streams and the stream status
    accept cookies."""
    request = bottle.request
    if not request.get_header("Authorization") and request.get_cookie(auth.ADMIN_COOKIE):
        signed_in = auth.session(store, request.get_cookie(auth.ADMIN_COOKIE))
        if signed_in is not None:
            return signed_in[0].username
    if request.get_header("Authorization") or not request.get_cookie(auth.SESSION_COOKIE):
        return require_token(store)
    try:
        return auth.authenticate_session(store, bottle.request.get_cookie(auth.SESSION_COOKIE))
    except auth.AuthFailed as exc:
        raise ApiError(401, exc.detail, {"WWW-Authenticate": "Token"}) from None
