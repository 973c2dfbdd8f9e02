"""OpenAPI 3.0.3 document at ``GET /api/schema/`` (no token), derived from the catalog.

Nothing here is written per resource: component schemas, request schemas and the generic paths
come from :data:`swf_lite.catalog.RESOURCES`; the special endpoints reuse the catalog's field
schemas (and ``counters.COUNTERS`` / ``service.HEARTBEAT_*``) so a new field shows up everywhere.

The document depends only on the catalog, so it is built once and cached (serialized, too); only
``servers`` (the request's own base URL) is added per request.

Naming follows drf-spectacular: ``<Model>`` (the object as returned), ``<Model>Request`` (create
and PUT body), ``Patched<Model>Request`` (PATCH body, nothing required), ``Paginated<Model>List``
(the ``?limit=`` envelope); operation ids ``<resource>_list|create|retrieve|update|partial_update|
destroy``.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import replace
from typing import Any

import bottle

from swf_lite import __version__, counters, events, fields, service
from swf_lite.api.http import dumps
from swf_lite.catalog import BY_NAME, REQUIRED, RESOURCES, F, Filter, Resource
from swf_lite.context import Context

OPENAPI_VERSION = "3.0.3"
TOKEN: list[dict[str, list[str]]] = [{"TokenAuth": []}]
JSON = "application/json"
SSE = "text/event-stream"

# JSON types of each catalog kind (fk: the target key's type, resolved in _value_schema).
KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "format": "int32", "minimum": fields.INT32[0], "maximum": fields.INT32[1]},
    "int64": {"type": "integer", "format": "int64", "minimum": fields.INT64[0], "maximum": fields.INT64[1]},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "text": {"type": "string"},
    # the server's URL check; valid ECMA syntax, stricter without its case-insensitive flag
    "url": {"type": "string", "format": "uri", "pattern": fields._URL.pattern},
    # IPv4 or IPv6 (Django's GenericIPAddressField "both"); stored in compressed form
    "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "datetime": {"type": "string", "format": "date-time"},
    "uuid": {"type": "string", "format": "uuid"},
}
# A non-null JSON field accepts any JSON value but null (OpenAPI 3.0 has no "null" type to negate).
JSON_NOT_NULL = {"anyOf": [{"type": t} for t in ("object", "array", "string", "number", "integer", "boolean")]}
TEXT_KINDS = ("str", "text")
STREAM_FILTERS = {
    "msg_types": "Event names (message_content.msg_type).",
    "agents": "Values of the data's processed_by.",
    "run_ids": 'Run ids, compared as strings (100010 matches "100010").',
    "namespace": "Namespaces.",
}
SUMMARY_ERROR_FIELDS = ("timestamp", "levelname", "message", "module", "funcname", "lineno")
TOKEN_DESCRIPTION = "`Authorization: Token <40 lowercase hex>` (`python -m swf_lite token <user>` prints one)."

DESCRIPTION = """\
swf-lite speaks the SWF Monitor's REST contract (Django REST framework shapes).

* Reads need no token; every write, every counter and the event stream need
  `Authorization: Token <40 hex>`, except `POST /api/logs/` and `POST /api/ai-memory/record/`.
* Lists return a bare JSON array; with `?limit=N[&offset=M]` they return
  `{count, next, previous, results}`. Filters are exact matches combined with AND; a comma list
  (`status=running,pending`) means any of. `?ordering=field,-field` sorts.
* Times are ISO 8601; output is UTC with microseconds and `Z`. Naive input times are read in the
  server's time zone.
* Validation errors are `400 {"<field>": ["<message>"], "non_field_errors": [...]}`.
"""


# -- field schemas -------------------------------------------------------------------------------


def _target(f: F) -> Resource:
    """The resource a foreign key points at."""
    assert f.to is not None, f"{f.name} is not a foreign key"
    return BY_NAME[f.to]


def _target_key(f: F) -> F:
    """The field a foreign key's JSON value holds: the target's ``to_field`` or its pk."""
    target = _target(f)
    return target.field(f.to_field) if f.to_field else target.pk


def _value_schema(f: F) -> dict[str, Any]:
    """The type of ``f``'s values (no null, no read-only, no request rules)."""
    if f.kind == "fk":
        key = _target_key(f)
        out = _value_schema(replace(key, choices=None))
        out["description"] = f"Key ({key.name}) of a {_target(f).model}."
        return out
    if f.kind == "json":
        return {}
    out = copy.deepcopy(KIND_SCHEMAS[f.kind])
    if f.max_length and out.get("type") == "string":
        out["maxLength"] = f.max_length
    if f.choices is not None:
        out["enum"] = list(f.choices)
    return out


def field_schema(f: F, *, request: bool = False, enum: bool = True) -> dict[str, Any]:
    """The schema of one catalog field, in a response object or (``request``) in a request body."""
    out = _value_schema(f if enum else replace(f, choices=None))
    if f.kind == "json":
        if not f.null:
            out = copy.deepcopy(JSON_NOT_NULL)
    elif f.null:
        out["nullable"] = True
        if "enum" in out:
            out["enum"].append(None)  # OpenAPI 3.0.3: null must be listed with nullable enums
    if f.choices is not None and not enum:
        out["description"] = "Usually one of: " + ", ".join(map(str, f.choices)) + "; not enforced here."
    if f.read_only:
        out["readOnly"] = True
    if f.kind == "url" and not request:  # stored URLs may be IRIs (non-ASCII hosts, like Django) and
        del out["format"], out["pattern"]  # any case (HTTP://); what clients send is checked strictly
    if request:
        if f.kind in TEXT_KINDS and not f.allow_blank and "enum" not in out:
            out.update(minLength=1, pattern=not_blank_pattern())  # "This field may not be blank."
        if not f.required and f.default not in (None, REQUIRED) and isinstance(f.default, (str, int, float, dict)):
            out["default"] = copy.deepcopy(f.default)
    return out


@functools.lru_cache(maxsize=1)
def not_blank_pattern() -> str:
    """A regex (ECMA and Python alike) for "has a character ``str.strip()`` keeps": the server's
    blank check. Python's whitespace differs from ECMA's ``\\s`` (``\\x1c``-``\\x1f``, ``\\x85``)."""
    spaces = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())
    return f"[^{spaces}]"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _relaxed_choices(r: Resource) -> set[str]:
    """Fields whose stored values may lie outside their choices (the heartbeat skips the check)."""
    if r is service.AGENTS:
        return {*service.HEARTBEAT_DEFAULTS, *service.HEARTBEAT_OPTIONAL}
    return set()


def object_schema(r: Resource) -> dict[str, Any]:
    """The object as returned: every field, pk first, always present."""
    relaxed = _relaxed_choices(r)
    props = {f.name: field_schema(f, enum=f.name not in relaxed) for f in r.all_fields}
    out = {"type": "object", "properties": props, "required": list(props)}
    if r.description:
        out["description"] = r.description
    return out


def request_schema(r: Resource, *, partial: bool = False, with_pk: bool = True) -> dict[str, Any]:
    """A create / PUT / PATCH body. Read-only fields are omitted; unknown keys are ignored."""
    writable = [f for f in (r.all_fields if with_pk else r.fields) if not f.read_only]
    out: dict[str, Any] = {"type": "object", "properties": {f.name: field_schema(f, request=True) for f in writable}}
    required = [f.name for f in writable if f.required]
    if required and not partial:
        out["required"] = required
    return out


def _pk_client_supplied(r: Resource) -> bool:
    return not r.pk.read_only


# -- reusable pieces -----------------------------------------------------------------------------


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


RESPONSES: dict[str, dict[str, Any]] = {
    "ValidationError": _json(_ref("ValidationError"), "Invalid input: `{field: [messages]}` or `{detail}`."),
    "Unauthorized": {
        **_json(_ref("Error"), "Missing, malformed or unknown token."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Token"]}}},
    },
    "NotFound": _json(_ref("Error"), "No such object (or a key of the wrong type)."),
}


def _resp(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _common_schemas() -> dict[str, Any]:
    return {
        "Error": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
        "ValidationError": {
            "type": "object",
            "description": "Field name (or `non_field_errors`) -> messages; some errors are `{detail}`.",
            "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
        },
        "StatusError": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "status": {"type": "string", "enum": ["error"]}},
            "required": ["error", "status"],
        },
    }


# -- generic resource paths ----------------------------------------------------------------------


def _filter_field(r: Resource, flt: Filter) -> F:
    """The catalog field a filter path ends at (following foreign keys)."""
    resource, f = r, None
    for part in flt.path.split("."):
        f = resource.field(part)
        if f.kind == "fk":
            resource = _target(f)
            f = _target_key(f)
    assert f is not None, f"filter {flt.param} has an empty path"  # str.split gives at least one part
    return f


def param(name: str, schema: dict[str, Any], description: str, where: str = "query") -> dict[str, Any]:
    """One parameter; an array schema is a comma list (``style: form``, ``explode: false``)."""
    out = {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}
    if schema.get("type") == "array":
        out.update(style="form", explode=False)
    return out


COUNT = {"type": "integer", "minimum": 0}


def filter_parameters(r: Resource, *, lists: bool = True) -> list[dict[str, Any]]:
    """Query parameters of ``r``'s filters; exact-match ones take comma lists (``lists``)."""
    params = []
    for flt in r.filters:
        if flt.op == "search":
            params.append(param(flt.param, {"type": "string"}, f"Substring of any of: {flt.path.replace(',', ', ')}."))
            continue
        value = _value_schema(replace(_filter_field(r, flt), choices=None))
        value.pop("description", None)
        value.pop("maxLength", None)
        if flt.op == "eq" and lists:
            params.append(
                param(flt.param, {"type": "array", "items": value}, f"{flt.path} equals (a comma list: any).")
            )
        else:
            word = {"eq": "equals", "ge": "at least", "le": "at most"}[flt.op]
            params.append(param(flt.param, value, f"{flt.path} {word}."))
    return params


def list_parameters(r: Resource) -> list[dict[str, Any]]:
    orderable = [p + f.name for f in r.all_fields for p in ("", "-")]
    default = ",".join(r.ordering) or r.pk.name
    searchable = not any(flt.op == "search" for flt in r.filters)
    search = (
        [param("search", {"type": "string"}, "A substring of any text field (swf-lite's own).")] if searchable else []
    )
    return [
        *filter_parameters(r),
        *search,
        param("ordering", {"type": "array", "items": {"type": "string", "enum": orderable}},
              f"Sort by these fields (`-` for descending); default `{default}`."),
        param("limit", COUNT, "Page size; given, the response is the pagination envelope."),
        param("offset", COUNT, "Rows to skip (with `limit`)."),
    ]  # fmt: skip


def _pk_parameter(r: Resource) -> dict[str, Any]:
    return param("pk", _value_schema(replace(r.pk, choices=None)), f"The {r.model}'s `{r.pk.name}`.", "path")


def _anonymous(r: Resource, creating: bool) -> bool:
    """``anonymous_write`` lets anyone create rows; changing or deleting them needs a token."""
    return r.anonymous_write and creating


def _write_security(r: Resource, creating: bool = False) -> dict[str, Any]:
    return {} if _anonymous(r, creating) else {"security": TOKEN}


def _write_errors(r: Resource, creating: bool = False) -> dict[str, Any]:
    out = {"400": _resp("ValidationError")}
    if not _anonymous(r, creating):
        out["401"] = _resp("Unauthorized")
    return out


def resource_paths(r: Resource) -> dict[str, Any]:
    op = r.table
    model = r.model
    item = _ref(model)
    tags = [r.name]
    collection: dict[str, Any] = {
        "get": {
            "operationId": f"{op}_list",
            "tags": tags,
            "summary": f"List {r.label}s.",
            "description": r.description,
            "parameters": list_parameters(r),
            "responses": {
                "200": _json(
                    {"oneOf": [{"type": "array", "items": item}, _ref(f"Paginated{model}List")]},
                    "A bare array; with `limit`, the pagination envelope.",
                ),
                "400": _resp("ValidationError"),
            },
        },
    }
    detail: dict[str, Any] = {
        "parameters": [_pk_parameter(r)],
        "get": {
            "operationId": f"{op}_retrieve",
            "tags": tags,
            "summary": f"One {r.label}.",
            "responses": {"200": _json(item, f"The {r.label}."), "404": _resp("NotFound")},
        },
    }
    if r.writable:
        put_body = f"{model}UpdateRequest" if _pk_client_supplied(r) else f"{model}Request"
        collection["post"] = {
            "operationId": f"{op}_create",
            "tags": tags,
            "summary": f"Create a {r.label}.",
            "requestBody": _body(_ref(f"{model}Request")),
            **_write_security(r, creating=True),
            "responses": {"201": _json(item, f"The stored {r.label}."), **_write_errors(r, creating=True)},
        }
        detail["put"] = {
            "operationId": f"{op}_update",
            "tags": tags,
            "summary": f"Replace a {r.label} (never creates).",
            "requestBody": _body(_ref(put_body)),
            **_write_security(r),
            "responses": {"200": _json(item, f"The stored {r.label}."), **_write_errors(r), "404": _resp("NotFound")},
        }
        detail["patch"] = {
            "operationId": f"{op}_partial_update",
            "tags": tags,
            "summary": f"Update some fields of a {r.label}.",
            "requestBody": _body(_ref(f"Patched{model}Request")),
            **_write_security(r),
            "responses": {"200": _json(item, f"The stored {r.label}."), **_write_errors(r), "404": _resp("NotFound")},
        }
        detail["delete"] = {
            "operationId": f"{op}_destroy",
            "tags": tags,
            "summary": f"Delete a {r.label}.",
            **_write_security(r),
            "responses": {"204": {"description": "Deleted."}, "401": _resp("Unauthorized"), "404": _resp("NotFound")},
        }
    return {f"/api/{r.name}/": collection, f"/api/{r.name}/{{pk}}/": detail}


def resource_schemas(r: Resource) -> dict[str, Any]:
    model = r.model
    out = {model: object_schema(r), f"{model}Request": request_schema(r)}
    if r.generic and r.writable:
        if _pk_client_supplied(r):
            out[f"{model}UpdateRequest"] = request_schema(r, with_pk=False)
        out[f"Patched{model}Request"] = request_schema(r, partial=True, with_pk=False)
    if r.generic:
        out[f"Paginated{model}List"] = {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": {"type": "array", "items": _ref(model)},
            },
        }
    return out


# -- special endpoints ---------------------------------------------------------------------------


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("_", "-").split("-"))


def _counter_paths(schemas: dict[str, Any]) -> dict[str, Any]:
    paths = {}
    for c in counters.COUNTERS:
        name = f"{_camel(c.endpoint)}Response"
        schemas[name] = {
            "type": "object",
            "required": [c.response_key, "status"],
            "properties": {
                c.response_key: {"type": "integer", "format": "int64"},
                "status": {"type": "string", "enum": ["success"]},
            },
        }
        paths[f"/api/state/{c.endpoint}/"] = {
            "post": {
                "operationId": f"state_{c.endpoint.replace('-', '_')}",
                "tags": ["state"],
                "summary": f"Hand out the next {c.response_key} (one global, persistent, atomic sequence).",
                "requestBody": _body({"type": "object", "description": "Accepted and ignored."}, required=False),
                "security": TOKEN,
                "responses": {
                    "200": _json(_ref(name), "The new value."),
                    "401": _resp("Unauthorized"),
                    "500": _json(_ref("StatusError"), "The counter could not be advanced."),
                },
            },
        }
    return paths


def heartbeat_request_schema() -> dict[str, Any]:
    """``instance_name`` required; the rest optional, unchecked against choices; defaulted ones
    also take null (= the default)."""
    agents = service.AGENTS
    name = field_schema(agents.field("instance_name"), request=True)
    name.pop("enum", None)
    props = {"instance_name": name}
    for key, default in service.HEARTBEAT_DEFAULTS.items():
        s = field_schema(agents.field(key), request=True, enum=False)
        s.pop("default", None)
        s["nullable"] = True
        note = f"Default (when missing or null): {json.dumps(default)}."
        s["description"] = f"{note} {s['description']}" if "description" in s else note
        props[key] = s
    for key in service.HEARTBEAT_OPTIONAL:
        props[key] = field_schema(agents.field(key), request=True, enum=False)
        props[key].pop("default", None)  # an existing agent keeps its value
    return {
        "type": "object",
        "required": ["instance_name"],
        "properties": props,
        "description": "Other keys (`mq_connected`, ...) are ignored.",
    }


def _special_paths(schemas: dict[str, Any]) -> dict[str, Any]:
    agents, namespaces, logs, memory = (BY_NAME[n] for n in ("systemagents", "namespaces", "logs", "ai-memory"))
    paths = _counter_paths(schemas)

    schemas["HeartbeatRequest"] = heartbeat_request_schema()
    paths["/api/systemagents/heartbeat/"] = {
        "post": {
            "operationId": "systemagents_heartbeat",
            "tags": [agents.name],
            "summary": "Upsert an agent by instance_name and mark stale agents EXITED.",
            "requestBody": _body(_ref("HeartbeatRequest")),
            "security": TOKEN,
            "responses": {
                "200": _json(_ref(agents.model), "Updated."),
                "201": _json(_ref(agents.model), "Created."),
                "400": _resp("ValidationError"),
                "401": _resp("Unauthorized"),
            },
        },
    }

    ensured = {k: field_schema(namespaces.field(k)) for k in ("name", "owner", "description")}
    schemas["NamespaceEnsureResponse"] = {
        "type": "object",
        "required": [*ensured, "created", "status"],
        "properties": {**ensured, "created": {"type": "boolean"}, "status": {"type": "string", "enum": ["success"]}},
    }
    paths["/api/namespaces/ensure/"] = {
        "post": {
            "operationId": "namespaces_ensure",
            "tags": [namespaces.name],
            "summary": "Create the namespace unless it exists (an existing one is returned unchanged).",
            "requestBody": _body(_ref(f"{namespaces.model}Request")),
            "security": TOKEN,
            "responses": {
                "200": _json(_ref("NamespaceEnsureResponse"), "The namespace; `created` tells whether it is new."),
                "400": _json(
                    {"anyOf": [_ref("StatusError"), _ref("ValidationError")]},
                    '`{error: "name is required"}` / `owner is required`, or field errors.',
                ),
                "401": _resp("Unauthorized"),
            },
        },
    }

    recent = {k: field_schema(logs.field(k)) for k in SUMMARY_ERROR_FIELDS}
    schemas["LogSummary"] = {
        "type": "object",
        "description": "app_name -> instance_name -> error counts per levelname and the 5 newest ERROR/CRITICAL.",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["error_counts", "recent_errors"],
                "properties": {
                    "error_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "recent_errors": {
                        "type": "array",
                        "maxItems": 5,
                        "items": {"type": "object", "required": list(recent), "properties": recent},
                    },
                },
            },
        },
    }
    paths["/api/logs/summary/"] = {
        "get": {
            "operationId": "logs_summary",
            "tags": [logs.name],
            "summary": "Log counts and recent errors.",
            "responses": {"200": _json(_ref("LogSummary"), "The summary.")},
        },
    }

    schemas[f"{memory.model}List"] = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref(memory.model), "description": "Oldest first."}},
    }
    turns = param("turns", {**COUNT, "default": 20}, "The newest N turns.")
    paths[f"/api/{memory.name}/"] = {
        "get": {
            "operationId": "ai_memory_list",
            "tags": [memory.name],
            "summary": "Recent dialogue turns.",
            "parameters": [*filter_parameters(memory, lists=False), turns],
            "responses": {"200": _json(_ref(f"{memory.model}List"), "The turns."), "400": _resp("ValidationError")},
        },
    }
    paths[f"/api/{memory.name}/record/"] = {
        "post": {
            "operationId": "ai_memory_record",
            "tags": [memory.name],
            "summary": "Record one dialogue turn.",
            "requestBody": _body(_ref(f"{memory.model}Request")),
            **_write_security(memory, creating=True),
            "responses": {"200": _json(_ref(memory.model), "The stored turn."), **_write_errors(memory, creating=True)},
        },
    }

    strings = {"type": "array", "items": {"type": "string"}}
    stream_filters = [param(n, strings, STREAM_FILTERS.get(n, "Comma list.")) for n in events.FILTER_PARAMS]
    stream_filters += [
        param("last_event_id", COUNT, "Replay stored messages after this event id (as `Last-Event-ID` does)."),
        param("Last-Event-ID", COUNT, "Sent by EventSource on reconnect: replay stored messages after it.", "header"),
    ]
    paths["/api/messages/stream/"] = {
        "get": {
            "operationId": "messages_stream",
            "tags": ["messages"],
            "summary": "Live stream of workflow messages (Server-Sent Events).",
            "description": (
                "Frames are `event: <name>\\nid: <n>\\ndata: <one-line JSON>\\n\\n`: first `connected` "
                "(`{client_id, status}`), then one per message (the name is message_content.msg_type), "
                "and `heartbeat` (`{timestamp}`) after 30 s without traffic. All filters must pass."
            ),
            "parameters": stream_filters,
            "security": TOKEN,
            "responses": {
                "200": {"description": "The event stream.", "content": {SSE: {"schema": _ref("ServerSentEvent")}}},
                "401": _resp("Unauthorized"),
                "503": _json(_ref("Error"), "Every stream slot is taken, or the server is stopping (Retry-After)."),
            },
        },
    }
    paths["/api/changes/stream/"] = {
        "get": {
            "operationId": "changes_stream",
            "tags": ["messages"],
            "summary": "Live stream of every committed write (Server-Sent Events), for live pages.",
            "description": (
                "Frames are `id: <n>\\nevent: change\\ndata: {op, resource, pk, row}\\n\\n` after a first "
                "`connected`; `op` is create, update, delete, upsert or reset (resource `*`). Counters appear as "
                "resource `persistent-state`. A change with a null `pk` touched several rows. No token: it carries "
                "only what any reader may list."
            ),
            "parameters": [
                param("resources", strings, "Resource names (comma list); default every resource."),
                param("ops", strings, "Operations (comma list); default every operation."),
            ],
            "responses": {
                "200": {"description": "The event stream.", "content": {SSE: {"schema": _ref("ServerSentEvent")}}},
                "400": _resp("ValidationError"),
                "503": _json(_ref("Error"), "Every stream slot is taken, or the server is stopping (Retry-After)."),
            },
        },
    }
    schemas["ServerSentEvent"] = {  # one event of a text/event-stream (what OpenAPI 3.2 calls itemSchema)
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "description": "connected, heartbeat, the message type, change or reset."},
            "data": {"type": "string", "description": "One line of JSON."},
            "id": {"type": "string", "description": "Sequence number, for Last-Event-ID (messages only)."},
            "retry": {"type": "integer"},
        },
    }
    schemas["StreamStatus"] = {
        "type": "object",
        "required": ["connected_clients", "client_ids", "client_filters"],
        "properties": {
            "connected_clients": {"type": "integer"},
            "client_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
            "client_filters": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    }
    paths["/api/messages/stream/status/"] = {
        "get": {
            "operationId": "messages_stream_status",
            "tags": ["messages"],
            "summary": "Connected stream clients.",
            "security": TOKEN,
            "responses": {"200": _json(_ref("StreamStatus"), "The clients."), "401": _resp("Unauthorized")},
        },
    }

    schemas["Health"] = {
        "type": "object",
        "required": ["status", "version"],
        "properties": {k: {"type": "string"} for k in ("status", "version", "python", "sqlite", "peewee", "bottle")},
    }
    paths["/health/"] = {
        "get": {
            "operationId": "health",
            "tags": ["service"],
            "summary": "Liveness and versions.",
            "responses": {"200": _json(_ref("Health"), "Up.")},
        },
    }
    generic = [r.name for r in RESOURCES if r.generic]
    paths["/api/"] = {
        "get": {
            "operationId": "api_root",
            "tags": ["service"],
            "summary": "Resource name -> list URL.",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": generic,
                        "properties": {n: {"type": "string", "format": "uri"} for n in generic},
                    },
                    "The index.",
                )
            },
        },
    }
    paths["/api/schema/"] = {
        "get": {
            "operationId": "schema",
            "tags": ["service"],
            "summary": "This OpenAPI document.",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0.3, JSON.")},
        },
    }
    return paths


# -- the document --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def build_document() -> dict[str, Any]:
    """The document without ``servers`` (cached: it depends only on the catalog). Do not mutate."""
    schemas = _common_schemas()
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        schemas.update(resource_schemas(r))
        if r.generic:
            paths.update(resource_paths(r))
    paths.update(_special_paths(schemas))
    tags = [{"name": r.name, "description": r.description} for r in RESOURCES if r.generic or r.name == "ai-memory"]
    tags += [
        {"name": "state", "description": "Persistent counters."},
        {"name": "messages", "description": "The live message stream."},
        {"name": "service", "description": "Health, index and this document."},
    ]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "swf-lite", "version": __version__, "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": RESPONSES,
            "securitySchemes": {
                "TokenAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": TOKEN_DESCRIPTION,
                },
            },
        },
        "tags": tags,
    }


def document(base_url: str) -> dict[str, Any]:
    """The full document for clients reaching the server at ``base_url`` (a fresh copy)."""
    doc = copy.deepcopy(build_document())
    return {"openapi": doc.pop("openapi"), "info": doc.pop("info"), "servers": [{"url": base_url}], **doc}


@functools.lru_cache(maxsize=1)
def _serialized() -> tuple[bytes, bytes]:
    """The document as JSON split where ``servers`` goes: after openapi and info."""
    doc = build_document()
    head = dumps({"openapi": doc["openapi"], "info": doc["info"]})[:-1]
    tail = dumps({k: v for k, v in doc.items() if k not in ("openapi", "info")})[1:]
    return head, tail


def render(base_url: str) -> bytes:
    head, tail = _serialized()
    return head + b',"servers":' + dumps([{"url": base_url}]) + b"," + tail


def base_url() -> str:
    """The request's own base URL (scheme, host, port and any mount point)."""
    parts = bottle.request.urlparts
    return f"{parts.scheme}://{parts.netloc}{bottle.request.script_name.rstrip('/')}"


def mount(app: bottle.Bottle, ctx: Context) -> None:
    """Register ``GET /api/schema/`` (no token)."""

    @app.get("/api/schema/")
    def openapi_schema() -> bottle.HTTPResponse:
        body = render(base_url())
        return bottle.HTTPResponse(
            body=body, status=200, headers={"Content-Type": JSON, "Content-Length": str(len(body))}
        )
