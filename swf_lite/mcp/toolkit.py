"""How an MCP tool is declared and called: its parameters (JSON Schema, typed from the catalog where
the tool mirrors a resource), the checking of a ``tools/call``'s arguments, and the per-call
:class:`Call` a tool runs with. No HTTP and no JSON-RPC here: :mod:`swf_lite.mcp.protocol` frames
what :meth:`Tool.run` returns or raises.

Arguments failing their schema (missing, wrong type, an unparseable time, an unknown name) raise
:class:`ToolError`, which the protocol answers as a tool result with ``isError`` — the model reads
the message and corrects its call. An empty string for an optional argument counts as absent.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swf_lite import fields, timefmt
from swf_lite.catalog import BY_NAME, F
from swf_lite.errors import Invalid, NotFound
from swf_lite.pages.site import BY_RESOURCE
from swf_lite.service import Service

# JSON Schema of each catalog kind (fk: the kind of the key it holds).
KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": fields.INT32[0], "maximum": fields.INT32[1]},
    "int64": {"type": "integer", "minimum": fields.INT64[0], "maximum": fields.INT64[1]},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "text": {"type": "string"},
    "url": {"type": "string"},
    "ip": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
    "uuid": {"type": "string", "format": "uuid"},
    "json": {"type": "object"},
}
TIME_HINT = "ISO 8601, e.g. 2026-03-31T12:00:00Z; a time without zone is UTC"
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


class ToolError(Exception):
    """The tool cannot do what was asked; the message says what went wrong and how to fix it."""


@dataclass(frozen=True)
class Param:
    """One argument of a tool: its JSON Schema (``schema``: type and constraints), what it means, and
    whether it must be given."""

    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False
    default: Any = None

    @property
    def type(self) -> str:
        return str(self.schema["type"])

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.schema, "description": self.description}
        if self.default is not None:
            out["default"] = self.default
        return out


def catalog_field(resource: str, name: str) -> F:
    """The catalog field ``resource.name``; a foreign key resolves to the field its values hold."""
    f = BY_NAME[resource].field(name)
    if f.kind == "fk":
        target = BY_NAME[str(f.to)]
        f = target.field(f.to_field) if f.to_field else target.pk
    return f


def mirror(resource: str, name: str, description: str, *, param: str = "", required: bool = False,
           default: Any = None) -> Param:  # fmt: skip
    """A parameter standing for the catalog field ``resource.name`` (typed like it; choices are named in
    the description, not enforced: the tools match them without regard to case)."""
    f = catalog_field(resource, name)
    schema = dict(KIND_SCHEMAS[f.kind])
    if f.max_length and schema["type"] == "string":
        schema["maxLength"] = f.max_length
    if f.choices:
        description += " One of: " + ", ".join(map(str, f.choices)) + "."
    return Param(param or name, schema, description, required=required, default=default)


def text(name: str, description: str, *, required: bool = False, default: str | None = None) -> Param:
    return Param(name, {"type": "string"}, description, required=required, default=default)


def integer(name: str, description: str, *, required: bool = False, default: int | None = None,
            minimum: int = fields.INT32[0], maximum: int = fields.INT32[1]) -> Param:  # fmt: skip
    return Param(name, {"type": "integer", "minimum": minimum, "maximum": maximum}, description, required=required,
                 default=default)  # fmt: skip


def number(name: str, description: str) -> Param:
    return Param(name, {"type": "number"}, description)


def boolean(name: str, description: str, *, default: bool | None = None) -> Param:
    return Param(name, {"type": "boolean"}, description, default=default)


def obj(name: str, description: str) -> Param:
    return Param(name, {"type": "object"}, description)


def time(name: str, description: str) -> Param:
    return Param(name, {"type": "string", "format": "date-time"}, f"{description} ({TIME_HINT}).")


@dataclass
class Call:
    """One ``tools/call``: the service, the token's user (the default ``username``), the base URL the
    client reached (for links to the pages), the environment (the testbed config), whether messages
    reach a broker, and now (UTC)."""

    service: Service
    username: str
    base_url: str
    environ: Mapping[str, str]
    broker_connected: Callable[[], bool] = lambda: False  # whether a STOMP bridge forwards messages now
    now: dt.datetime = field(default_factory=timefmt.utcnow)

    def page(self, title: str, resource: str, **params: Any) -> dict[str, str]:
        """A link to ``resource``'s list page, carrying the filters that page understands."""
        r = BY_NAME[resource]
        known = {flt.param for flt in r.filters if flt.op != "search"} | {"q"}
        query = [(k, _query_text(v)) for k, v in params.items() if k in known and v not in (None, "")]
        path = f"/{BY_RESOURCE[resource].slug}/"
        return {"title": title, "url": self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")}

    def detail(self, title: str, resource: str, key: Any) -> dict[str, str]:
        """A link to one row's detail page."""
        slug = BY_RESOURCE[resource].slug
        return {"title": title, "url": f"{self.base_url}/{slug}/{urllib.parse.quote(str(key), safe='')}/"}


def _query_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return timefmt.iso(value) or ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Handler = Callable[[Call, dict[str, Any]], Any]


@dataclass(frozen=True)
class Tool:
    """A tool: what a model reads in ``tools/list`` and the handler ``tools/call`` runs. ``text``: the
    handler returns plain text (else a JSON value). ``read_only``/``destructive`` become the MCP
    annotations a client shows before it lets a model call a tool."""

    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    handler: Handler
    read_only: bool = True
    destructive: bool = False
    text: bool = False

    def declaration(self) -> dict[str, Any]:
        """The ``tools/list`` entry."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
            "additionalProperties": False,
        }
        required = [p.name for p in self.params if p.required]
        if required:
            schema["required"] = required
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": self.destructive,
                "openWorldHint": False,
            },  # fmt: skip
        }

    def run(self, call: Call, arguments: Mapping[str, Any]) -> Any:
        """The handler's value for checked ``arguments``. A bad filter value the service refuses is a
        :class:`ToolError` naming the argument; a lookup that finds nothing is ``{"error": ...}``."""
        values = self.check(arguments)
        try:
            return self.handler(call, values)
        except Invalid as exc:
            problems = "; ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in exc.errors.items())
            raise ToolError(f"Invalid arguments for {self.name}: {problems}") from None
        except NotFound as exc:
            return {"error": exc.detail}

    def check(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments converted to their types (defaults filled in), or ToolError naming every bad one."""
        by_name = {p.name: p for p in self.params}
        problems = [f"unknown argument {name!r}" for name in arguments if name not in by_name]
        values: dict[str, Any] = {}
        for p in self.params:
            raw = arguments.get(p.name)
            if raw is None or (raw == "" and not p.required):
                if p.required:
                    problems.append(f"{p.name} is required ({p.description})")
                values[p.name] = p.default
                continue
            try:
                values[p.name] = convert(p, raw)
            except ValueError as exc:
                problems.append(f"{p.name}: {exc}")
        if problems:
            takes = ", ".join(p.name for p in self.params) or "no arguments"
            raise ToolError(f"Invalid arguments for {self.name}: {'; '.join(problems)}. It takes: {takes}.")
        return values


def convert(p: Param, raw: Any) -> Any:
    """One argument as its Python value (lenient where a model's JSON often is: ``"100010"`` for an
    integer, ``"true"`` for a boolean); ValueError says what was expected."""
    kind = p.type
    shown = _shown(raw)
    if kind == "string":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"expected a string, got {shown}")
        value = str(raw)
        if p.schema.get("format") == "date-time":
            try:
                return timefmt.parse(value, timefmt.UTC)
            except (ValueError, OverflowError):
                raise ValueError(f"not a time: {shown} ({TIME_HINT})") from None
        limit = p.schema.get("maxLength")
        if isinstance(limit, int) and len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        return value
    if kind == "integer":
        if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())
                                         or (isinstance(raw, str) and _INTEGER.match(raw))):  # fmt: skip
            raise ValueError(f"expected an integer, got {shown}")
        number = int(raw)
        low, high = p.schema.get("minimum"), p.schema.get("maximum")
        if (isinstance(low, int) and number < low) or (isinstance(high, int) and number > high):
            raise ValueError(f"must be between {low} and {high}, got {number}")
        return number
    if kind == "number":
        try:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise ValueError
            value_f = float(raw)
        except (ValueError, OverflowError):
            raise ValueError(f"expected a number, got {shown}") from None
        if value_f != value_f or value_f in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {shown}")
        return value_f
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError(f"expected true or false, got {shown}")
    if kind == "object":
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {shown}")
        return raw
    raise AssertionError(f"parameter type {kind} has no converter")  # pragma: no cover - declarations


def _shown(raw: Any) -> str:
    text_ = repr(raw)
    return text_ if len(text_) <= 60 else text_[:57] + "..."
