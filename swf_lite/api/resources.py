"""Generic list / create / retrieve / update / delete routes, derived from the catalog.

Each handler parses the request, calls the service and shapes the response; nothing here is written
per resource, and no domain rule lives here.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import bottle

from swf_lite.api.http import ApiError, json_response, read_json, require_token
from swf_lite.catalog import RESOURCES, Resource
from swf_lite.context import Context


class ResourceAPI:
    """Handlers for the catalog's resources over one context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.service = ctx.service

    def mount(self, app: bottle.Bottle) -> None:
        for r in RESOURCES:
            if not r.generic:
                continue
            base = f"/api/{r.name}/"
            app.route(base, "GET", self._bind(self.list, r))
            app.route(base + "<pk>/", "GET", self._bind(self.retrieve, r))
            if r.writable:
                app.route(base, "POST", self._bind(self.create, r))
                app.route(base + "<pk>/", "PUT", self._bind(self.update, r, partial=False))
                app.route(base + "<pk>/", "PATCH", self._bind(self.update, r, partial=True))
                app.route(base + "<pk>/", "DELETE", self._bind(self.delete, r))

    @staticmethod
    def _bind(method: Callable[..., Any], r: Resource, **kw: Any) -> Callable[..., Any]:
        def handler(**args: Any) -> Any:
            return method(r, **args, **kw)

        handler.__name__ = f"{method.__name__}_{r.table}"
        return handler

    def _authorize_write(self, r: Resource, creating: bool = False) -> None:
        """Every write needs a token, except creating rows of an ``anonymous_write`` resource."""
        if not (r.anonymous_write and creating):
            require_token(self.ctx.store)

    def list(self, r: Resource) -> bottle.HTTPResponse:
        query = bottle.request.query
        params = {flt.param: query_text(query, flt.param) or "" for flt in r.filters if flt.param in query}
        ordering = query_text(query, "ordering") or ""
        # a text search over every text field where the catalog declares none of its own
        search = "" if any(flt.op == "search" for flt in r.filters) else query_text(query, "search") or ""
        limit = query_text(query, "limit")
        if limit is None:
            return json_response(self.service.list(r, params, ordering=ordering, search=search).rows)
        limit_n = non_negative(limit, default=100) or 100
        offset_n = non_negative(query_text(query, "offset"), default=0)
        page = self.service.list(r, params, ordering=ordering, limit=limit_n, offset=offset_n, search=search)
        count = page.count or 0
        url = bottle.request.url
        nxt = with_query(url, limit=limit_n, offset=offset_n + limit_n) if offset_n + limit_n < count else None
        prev = None
        if offset_n > 0:  # like DRF: the first page's link carries no offset
            prev = with_query(url, limit=limit_n, offset=offset_n - limit_n if offset_n > limit_n else None)
        return json_response({"count": count, "next": nxt, "previous": prev, "results": page.rows})

    def retrieve(self, r: Resource, pk: str) -> bottle.HTTPResponse:
        return json_response(self.service.get(r, pk))

    def create(self, r: Resource) -> bottle.HTTPResponse:
        self._authorize_write(r, creating=True)
        return json_response(self.service.create(r, read_json()), 201)

    def update(self, r: Resource, pk: str, partial: bool) -> bottle.HTTPResponse:
        self._authorize_write(r)
        return json_response(self.service.update(r, pk, read_json(), partial=partial))

    def delete(self, r: Resource, pk: str) -> bottle.HTTPResponse:
        self._authorize_write(r)
        self.service.delete(r, pk)
        return bottle.HTTPResponse(status=204)


MAX_INT = 2**62  # inside SQL's 64-bit range, with room for offset + limit


def query_text(query: bottle.FormsDict, name: str) -> str | None:
    """The last value of query parameter ``name`` (None if absent), decoded strictly as UTF-8: a value
    that is not UTF-8 is a 400, never a silently dropped filter (bottle's ``getunicode`` gives None)."""
    if name not in query:
        return None
    try:
        return str(query.get(name)).encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise ApiError(400, {name: ["The value is not valid UTF-8."]}) from None


def non_negative(raw: str | None, default: int, maximum: int = MAX_INT) -> int:
    """A numeric parameter (limit, offset, turns): bad values take the default, negative ones 0, huge
    ones stop at ``maximum`` — decided from the digits, never by converting a 10,000-digit number."""
    raw = (raw or "").strip()
    if not raw:
        return default
    digits = raw.lstrip("+")
    if digits.startswith("-") and digits[1:].isascii() and digits[1:].isdigit():
        return 0
    if not (digits.isascii() and digits.isdigit()):  # "1.5", "x", "²" (isdigit alone accepts it)
        return default
    digits = digits.lstrip("0") or "0"
    return maximum if len(digits) > len(str(maximum)) else min(int(digits), maximum)


def with_query(url: str, **updates: Any) -> str:
    """``url`` with the given query parameters replaced (a None value removes the parameter)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in updates.items() if v is not None})
    for k in [k for k, v in updates.items() if v is None]:
        query.pop(k, None)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
