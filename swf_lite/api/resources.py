"""Generic list / create / retrieve / update / delete routes, derived from the catalog.

One set of handlers serves every resource; nothing here is written per resource.
"""

from __future__ import annotations

import contextlib
import urllib.parse
import uuid
from typing import Any

import bottle
import peewee as pw

from swf_lite import fields
from swf_lite.api.http import ApiError, json_response, not_found, read_json, require_token
from swf_lite.catalog import BY_NAME, RESOURCES, F, Filter, Resource
from swf_lite.store import UniqueViolation
from swf_lite.timefmt import utcnow

FILTER_MESSAGES = {"int": "Enter a whole number.", "int64": "Enter a whole number.", "uuid": "Enter a valid UUID.",
                   "datetime": "Enter a valid date/time.", "float": "Enter a number."}  # fmt: skip


class ResourceAPI:
    """Handlers for the catalog's resources over one store."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.store

    # -- routing -------------------------------------------------------------------------------

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
    def _bind(method, r: Resource, **kw):
        def handler(**args):
            return method(r, **args, **kw)

        handler.__name__ = f"{method.__name__}_{r.table}"
        return handler

    def _authorize_write(self, r: Resource, creating: bool = False) -> None:
        """Every write needs a token, except creating rows of an ``anonymous_write`` resource."""
        if not (r.anonymous_write and creating):
            require_token(self.store)

    # -- reads ---------------------------------------------------------------------------------

    def list(self, r: Resource):
        self.store.analyze_if_grown(r)
        model = self.store.model(r)
        query = model.select()
        params = bottle.request.query
        for flt in r.filters:
            raw = params.getunicode(flt.param)
            if raw is not None and raw != "":
                query = query.where(self._filter_expression(r, flt, raw))
        query = query.order_by(*self._ordering(r, model, params.getunicode("ordering")))
        limit = params.getunicode("limit")
        if limit is None:
            return json_response([fields.represent(r, row) for row in query.dicts()])
        return json_response(self._page(r, query, limit, params.getunicode("offset")))

    def _page(self, r: Resource, query: pw.ModelSelect, limit: str, offset: str | None) -> dict[str, Any]:
        """DRF LimitOffsetPagination's envelope."""
        limit_n = _non_negative(limit, default=100) or 100
        offset_n = _non_negative(offset, default=0)
        count = query.count()
        rows = [fields.represent(r, row) for row in query.limit(limit_n).offset(offset_n).dicts()]
        url = bottle.request.url
        nxt = _with_query(url, limit=limit_n, offset=offset_n + limit_n) if offset_n + limit_n < count else None
        prev = None
        if offset_n > 0:  # like DRF: the first page's link carries no offset
            prev = _with_query(url, limit=limit_n, offset=offset_n - limit_n if offset_n > limit_n else None)
        return {"count": count, "next": nxt, "previous": prev, "results": rows}

    def _ordering(self, r: Resource, model: type[pw.Model], requested: str | None) -> list:
        names = [n.strip() for n in (requested or "").split(",") if n.strip()]
        known = {f.name for f in r.all_fields}
        names = [n for n in names if n.lstrip("-") in known] or list(r.ordering)
        order = [getattr(model, n.lstrip("-")).desc() if n.startswith("-") else getattr(model, n.lstrip("-"))
                 for n in names]  # fmt: skip
        order.append(model._meta.primary_key)
        return order

    def _filter_expression(self, r: Resource, flt: Filter, raw: str):
        model = self.store.model(r)
        if flt.op == "search":
            expr = None
            for name in flt.path.split(","):
                term = getattr(model, name).contains(raw)
                expr = term if expr is None else expr | term
            return expr
        target = self._target_field(r, flt)
        values = [self._filter_value(flt, target, v) for v in (raw.split(",") if flt.op == "eq" else [raw])]
        return self._match(r, flt.path, flt.op, values)

    def _match(self, r: Resource, path: str, op: str, values: list):
        """``path`` compared with ``values``; a foreign-key step becomes ``fk IN (SELECT key ...)``."""
        head, _, rest = path.partition(".")
        column = getattr(self.store.model(r), head)
        if not rest:
            return _compare(column, op, values)
        f = r.field(head)
        parent = BY_NAME[f.to]
        parent_model = self.store.model(parent)
        key = getattr(parent_model, f.to_field or parent.pk.name)
        return column.in_(parent_model.select(key).where(self._match(parent, rest, op, values)))

    def _target_field(self, r: Resource, flt: Filter) -> F:
        """The catalog field a filter path ends at (following foreign keys)."""
        resource, f = r, None
        for part in flt.path.split("."):
            f = resource.field(part)
            if f.kind == "fk":
                resource = BY_NAME[f.to]
                f = resource.field(f.to_field) if f.to_field else resource.pk
        return f

    def _filter_value(self, flt: Filter, f: F, raw: str) -> Any:
        raw = raw.strip()
        if f.kind == "bool":
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ApiError(400, {flt.param: [f"Select a valid choice. {raw} is not one of the available choices."]})
        if f.kind in ("str", "text", "json", "url", "ip"):
            return raw
        try:
            if f.kind in ("int", "int64") and not raw.lstrip("-").isdigit():
                raise fields.FieldError(raw)
            return fields.convert(f, raw, self.ctx.settings.zone)
        except fields.FieldError:
            raise ApiError(400, {flt.param: [FILTER_MESSAGES.get(f.kind, "Enter a valid value.")]}) from None

    def _lookup(self, r: Resource, pk: str) -> dict[str, Any]:
        key = _pk_value(r.pk, pk)
        row = self.store.get(r, key) if key is not None else None
        if row is None:
            raise not_found(r.model)
        return row

    def retrieve(self, r: Resource, pk: str):
        return json_response(fields.represent(r, self._lookup(r, pk)))

    # -- writes --------------------------------------------------------------------------------

    def clean(self, r: Resource, data: dict, *, creating: bool, partial: bool = False, **kw) -> dict[str, Any]:
        return fields.clean(r, data, zone=self.ctx.settings.zone, resolve_fk=self._resolve_fk,
                            creating=creating, partial=partial, **kw)  # fmt: skip

    def _resolve_fk(self, f: F, raw: Any) -> Any:
        """The key a foreign-key input points at, or DRF's error for a missing/mistyped one."""
        target = BY_NAME[f.to]
        if f.to_field:
            if isinstance(raw, (dict, list, bool)):
                raise fields.FieldError("Invalid value.")
            value = str(raw)
            key_field = getattr(self.store.model(target), f.to_field)
            if not self.store.model(target).select().where(key_field == value).exists():
                raise fields.FieldError(f"Object with {f.to_field}={value} does not exist.")
            return value
        if isinstance(raw, (dict, list, bool)) or (target.pk.kind == "int" and isinstance(raw, float)):
            raise fields.FieldError(f"Incorrect type. Expected pk value, received {type(raw).__name__}.")
        try:
            key = fields.convert(target.pk, raw, self.ctx.settings.zone)
        except fields.FieldError:
            if target.pk.kind in ("int", "int64"):
                raise fields.FieldError(f"Incorrect type. Expected pk value, received {type(raw).__name__}.") from None
            raise fields.FieldError(f'Invalid pk "{raw}" - object does not exist.') from None
        if self.store.get(target, key) is None:
            raise fields.FieldError(f'Invalid pk "{raw}" - object does not exist.')
        return key

    def save_new(self, r: Resource, values: dict[str, Any]) -> dict[str, Any]:
        """Insert clean values (server fields filled in); returns the stored representation."""
        now = utcnow()
        for f in r.all_fields:
            if f.auto == "uuid":
                values[f.name] = uuid.uuid4()
            elif f.auto in ("created", "now"):
                values.setdefault(f.name, now)  # seed data may carry recorded times
        try:
            pk, rowid = self.store.insert(r, values)
        except UniqueViolation as exc:
            raise ApiError(400, self._unique_errors(r, exc)) from None
        values[r.pk.name] = pk
        out = fields.represent(r, values)
        self.ctx.created(r, out, rowid)
        return out

    def create(self, r: Resource):
        self._authorize_write(r, creating=True)
        values = self.clean(r, read_json(), creating=True)
        # One INSERT commits by itself. Rows with create hooks (messages -> stream) are published
        # inside the write lock, so the stream's order is the rowid order that replay relies on.
        with self.store.atomic() if self.ctx.on_create.get(r.name) else contextlib.nullcontext():
            out = self.save_new(r, values)
        return json_response(out, 201)

    def update(self, r: Resource, pk: str, partial: bool):
        self._authorize_write(r)
        data = read_json()
        with self.store.atomic():
            row = self._lookup(r, pk)
            values = self.clean(r, data, creating=False, partial=partial)
            for f in r.fields:
                if f.auto == "now":
                    values[f.name] = utcnow()
            try:
                self.store.update(r, row[r.pk.name], values)
            except UniqueViolation as exc:
                raise ApiError(400, self._unique_errors(r, exc)) from None
        row.update(values)
        return json_response(fields.represent(r, row))

    def delete(self, r: Resource, pk: str):
        self._authorize_write(r)
        model = self.store.model(r)
        with self.store.atomic():
            row = self._lookup(r, pk)
            model.delete().where(model._meta.primary_key == row[r.pk.name]).execute()
        return bottle.HTTPResponse(status=204)

    @staticmethod
    def _unique_errors(r: Resource, exc: UniqueViolation) -> dict[str, list[str]]:
        if len(exc.columns) > 1:
            return {"non_field_errors": [f"The fields {', '.join(exc.columns)} must make a unique set."]}
        name = exc.columns[0]
        return {name: [f"{r.label} with this {name.replace('_', ' ')} already exists."]}


def _compare(column, op: str, values: list):
    if op == "ge":
        return column >= values[0]
    if op == "le":
        return column <= values[0]
    return column == values[0] if len(values) == 1 else column.in_(values)


def _pk_value(f: F, raw: str) -> Any:
    """A URL key converted to the pk's type; the wrong type is a plain 'Not found.'."""
    try:
        if f.kind in ("int", "int64"):
            if not raw.lstrip("-").isdigit():
                raise ValueError(raw)
            number = int(raw)
            return number if fields.INT64[0] <= number <= fields.INT64[1] else None  # None: no row has it
        if f.kind == "uuid":
            return uuid.UUID(raw)
    except ValueError:
        raise not_found() from None
    return raw  # already percent-decoded by the server


def _non_negative(raw: str | None, default: int) -> int:
    """A limit/offset parameter: bad values take the default, huge ones stop at SQL's 64-bit range."""
    try:
        return min(max(int(raw), 0), 2**62) if raw not in (None, "") else default
    except ValueError:
        return default


def _with_query(url: str, **updates: Any) -> str:
    """``url`` with the given query parameters replaced (a None value removes the parameter)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in updates.items() if v is not None})
    for k in [k for k, v in updates.items() if v is None]:
        query.pop(k, None)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
