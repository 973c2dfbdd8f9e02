"""Request and response plumbing shared by every API handler: one JSON error shape (DRF's),
body parsing with DRF's wording, and the token check."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import bottle
import peewee as pw

from swf_lite import auth
from swf_lite.db import Store
from swf_lite.errors import Invalid, NotFound, Unavailable

log = logging.getLogger("swf_lite.api")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, not ASCII-escaped (DRF's renderer output)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    body = dumps(obj)
    # nosniff: a browser never takes JSON (which may echo input) for HTML or script
    hdrs = {"Content-Type": "application/json", "Content-Length": str(len(body)), "X-Content-Type-Options": "nosniff"}
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
        return _form_fields(request.forms)
    if not raw.strip():
        return {}
    if ctype != "application/json" and not ctype.endswith("+json") and ctype:
        raise ApiError(415, f'Unsupported media type "{ctype}" in request.')
    try:
        # strictly UTF-8 (like DRF): json.loads(bytes) would also guess UTF-16/32 and skip a BOM
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "JSON parse error - nesting too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ApiError(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {got}."]})
    if not _SURROGATE_ESCAPE.search(text):
        return data  # valid UTF-8 text can hold a lone surrogate only as a \uD800-style escape
    for key, value in data.items():  # "\ud800" parses, but no UTF-8 database can store it
        if not _storable(key):
            raise ApiError(400, "JSON parse error - a key holds a lone surrogate, which is not valid Unicode")
        if not _storable(value):
            raise ApiError(400, {key: ["Contains a lone surrogate (such as \\ud800), which is not valid Unicode."]})
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _storable(value: Any) -> bool:
    """Whether every string in ``value`` (nested JSON too) is valid Unicode (no lone surrogates).
    Iterative: nesting depth is bounded by the JSON parser, but a stack costs nothing here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _form_fields(forms: bottle.FormsDict) -> dict[str, Any]:
    """A form body's fields decoded strictly as UTF-8: an undecodable value is a 400, never a null."""
    fields: dict[str, Any] = {}
    for raw_key in forms:
        try:
            key = raw_key.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise ApiError(400, "Form parse error - a field name is not valid UTF-8") from None
        value = forms.get(raw_key)
        try:
            fields[key] = value.encode("latin-1").decode("utf-8") if isinstance(value, str) else value
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise ApiError(400, {key: ["The value is not valid UTF-8."]}) from None
    return fields


def _reject_constant(name: str) -> Any:
    """DRF's strict JSON: NaN and Infinity are not JSON."""
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def require_token(store: Store) -> str:
    """The authenticated username, or a 401 like DRF's TokenAuthentication."""
    try:
        return auth.authenticate(store, bottle.request.get_header("Authorization"))
    except auth.AuthFailed as exc:
        raise ApiError(401, exc.detail, {"WWW-Authenticate": "Token"}) from None


_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "database or disk is full",
                "database is closed")  # fmt: skip


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing to serve now (not a bug in a statement)."""
    if not isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError, pw.OperationalError, pw.InterfaceError)):
        return False
    return any(marker in str(exc).lower() for marker in _UNAVAILABLE)


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
            if store_unavailable(exc):  # locked, gone, unreadable: the client may retry
                log.warning("database unavailable in %s %s: %s", bottle.request.method, bottle.request.path, exc)
                return json_response({"detail": "Service temporarily unavailable: the database cannot be used now."},
                                     503, {"Retry-After": "1"})  # fmt: skip
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
