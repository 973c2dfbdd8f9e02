"""The per-resource reference (``docs/resources.md``), generated from the declarations.

Every REST resource of :mod:`swf_lite.catalog` (URL, model, key, fields, filters, ordering, who may
write) and the counters of :mod:`swf_lite.counters`, rendered as Markdown. The output is
deterministic (no timestamps), so the committed file can be compared with a fresh rendering; a test
does. After changing the catalog or the counters, regenerate it from the repository root::

    python -m swf_lite.reference > docs/resources.md

The wire rules these resources follow (authentication, errors, lists, time, streams) are written by
hand in ``docs/contract.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from swf_lite.catalog import BY_NAME, REQUIRED, RESOURCES, F, Filter, Resource
from swf_lite.counters import COUNTERS, Counter

COMMAND = "python -m swf_lite.reference > docs/resources.md"

KIND_NAMES = {
    "int": "integer (32-bit)",
    "int64": "integer (64-bit)",
    "float": "number",
    "bool": "boolean",
    "str": "string",
    "text": "text",
    "datetime": "datetime",
    "json": "JSON",
    "uuid": "UUID",
    "ip": "IP address",
    "url": "URL",
}
STRING_KINDS = ("str", "text", "url", "ip")
AUTO_INPUT = {
    "created": "read-only: set on insert",
    "now": "read-only: set on every write",
    "uuid": "read-only: generated on insert",
}
OPERATORS = {
    "eq": "`eq`: equals; a comma list means any of",
    "ge": "`ge`: at least (inclusive)",
    "le": "`le`: at most (inclusive)",
    "search": "`search`: contains the text (case-insensitive)",
}

INTRO = f"""\
<!-- Generated from swf_lite/catalog.py and swf_lite/counters.py: do not edit by hand.
     Regenerate with: {COMMAND} -->

# swf-lite REST resources

Every REST resource swf-lite serves, as declared in `swf_lite/catalog.py` (the declarations the
tables, validation, serialization, filters, the OpenAPI document `GET /api/schema/` and the pages are
built from), followed by the counters. The wire rules every resource follows (tokens, error shapes,
lists, pagination, time, the streams) are in [contract.md](contract.md).

Regenerate this file after changing the catalog or the counters:

```sh
{COMMAND}
```

## How to read it

- **URL**: `/api/<name>/` is the list (GET) and create (POST) endpoint; `/api/<name>/<key>/` is
  retrieve (GET), replace (PUT), update (PATCH) and delete (DELETE). A path without the trailing slash
  is served the same.
- **Fields** are listed in declaration order, which is the key order of every response object: the
  primary key first, then the fields.
- **Type**: `integer (32-bit)` accepts -2147483648 to 2147483647, `integer (64-bit)` up to
  9223372036854775807; `datetime` is ISO 8601 on input (a naive time is read in the server's time
  zone) and UTC with microseconds and `Z` on output; `JSON` is any JSON value, returned unchanged
  (a PATCH replaces the whole value). A **foreign key** (`→ resource`) is written and read as the
  related row's key, or the target field shown, never as a nested object.
- **Input**: *required* fields must be sent on create (and on PUT); *optional* ones take their
  default when absent; *read-only* ones are set by the server and ignored on input. Unknown keys are
  ignored. A string field marked *not blank* refuses `""` and whitespace.
- **Null**: whether `null` is accepted and may be returned.
- **Default**: the value an omitted optional field gets on create.
- **Unique**: a second row with the same value is refused with 400
  `{{"<field>": ["<verbose name> with this <field name> already exists."]}}` (the field name with spaces
  for underscores); *unique together* sets are refused with
  `{{"non_field_errors": ["The fields a, b must make a unique set."]}}`.
- **Filters** are query parameters of the list. `eq` (equals) filters take a comma list meaning "any of"
  (`?status=queued,processing`); several filters combine with AND; an empty value is ignored; a value
  of the wrong type is a 400 naming every bad parameter. A path such as `run.run_number` matches
  through foreign keys: the row's `run` points at a `runs` row whose `run_number` matches.
- **Ordering**: the default sort of the list; the primary key always breaks ties. `?ordering=a,-b`
  sorts by any of the resource's fields (`-` for descending).
- Lists of resources without a `search` filter of their own also take `?search=`: a substring of any
  string field (swf-lite's own addition).
- Reads (GET) never need a token. Writes need `Authorization: Token <token>` unless the resource says
  otherwise.
"""


def render() -> str:
    """The whole reference as Markdown (ends with one newline)."""
    parts = [INTRO, _index()]
    parts += [_resource(r) for r in RESOURCES]
    parts.append(_counters(COUNTERS))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def main() -> None:
    """Print the reference: ``python -m swf_lite.reference > docs/resources.md``."""
    sys.stdout.write(render())


# -- pieces ----------------------------------------------------------------------------------------


def _index() -> str:
    rows = [
        (f"[`{r.name}`](#{_anchor(r.name)})", f"`/api/{r.name}/`", f"`{r.model}`", f"`{r.pk.name}`", _access(r))
        for r in RESOURCES
    ]
    return "## Resources\n\n" + _table(("resource", "URL", "model", "key", "access"), rows)


def _resource(r: Resource) -> str:
    lines = [f"## {r.name}", "", f"`/api/{r.name}/` · model `{r.model}`", ""]
    if r.description:
        lines += [r.description, ""]
    lines += [f"- **Primary key**: {_key(r)}", f"- **Access**: {_access_detail(r)}"]
    lines.append(f"- **Default ordering**: {_ordering(r.ordering or (r.pk.name,))}")
    for param, ordering in r.filter_ordering:
        lines.append(f"- **Ordering with `?{param}=`**: {_ordering(ordering)} (an explicit `?ordering=` still wins)")
    if r.unique_together:
        sets = "; ".join("(" + ", ".join(f"`{n}`" for n in names) + ")" for names in r.unique_together)
        lines.append(f"- **Unique together**: {sets}")
    lines.append(f"- **Names in messages**: 404 `No {r.model} matches the given query.`; verbose name `{r.label}`")
    if r.sequenced:
        lines.append(
            "- **Sequenced**: every row carries a storage-order number, used as the live stream's event `id:` "
            "and as the position a reconnecting stream replays from"
        )
    lines += ["", "### Fields", "", _fields(r), "### Filters", ""]
    lines.append(_filters(r) if r.filters else "None declared.\n")
    return "\n".join(lines)


def _key(r: Resource) -> str:
    f = r.pk
    kind = KIND_NAMES.get(f.kind, f.kind)
    if f.read_only:
        who = "generated by the server on insert" if f.auto == "uuid" else "assigned by the database, never reused"
        return f"`{f.name}`, {kind}, {who} (read-only)"
    return f"`{f.name}`, {kind}, supplied by the client on create (required, unique)"


def _access(r: Resource) -> str:
    if not r.generic:
        return "special endpoints only"
    if not r.writable:
        return "read-only"
    return "read, write (no token to create)" if r.anonymous_write else "read, write"


def _access_detail(r: Resource) -> str:
    if not r.generic:
        return "no generic routes: only its [special endpoints](contract.md#special-endpoints) serve it" + (
            "; they need no token" if r.anonymous_write else ""
        )
    ops = "list and retrieve"
    if not r.writable:
        return f"{ops} only (no token); no generic writes (POST, PUT, PATCH and DELETE answer 405)"
    ops = "list, retrieve (no token); create, PUT, PATCH, DELETE"
    if r.anonymous_write:
        return f"{ops}; creating needs no token, PUT, PATCH and DELETE need a token"
    return f"{ops}; every write needs a token"


def _ordering(names: Iterable[str]) -> str:
    return ", then ".join(f"`{n[1:]}` descending" if n.startswith("-") else f"`{n}`" for n in names)


def _fields(r: Resource) -> str:
    header = ("field", "type", "input", "null", "default", "max length", "choices", "unique")
    return _table(header, [_field_row(r, f) for f in r.all_fields])


def _field_row(r: Resource, f: F) -> tuple[str, ...]:
    is_pk = f is r.pk
    return (
        f"`{f.name}`",
        _type(f),
        _input(f, is_pk),
        "yes" if f.null else "no",
        _default(f),
        str(f.max_length) if f.max_length else "",
        ", ".join(f"`{c}`" for c in f.choices) if f.choices else "",
        "key" if is_pk else ("yes" if f.unique else ""),
    )


def _type(f: F) -> str:
    if f.kind != "fk":
        return KIND_NAMES.get(f.kind, f.kind)
    key = _target_key(f)
    return f"foreign key → `{_target(f).name}`, by `{key.name}`: {KIND_NAMES.get(key.kind, key.kind)}"


def _input(f: F, is_pk: bool) -> str:
    if f.read_only:
        if is_pk and f.auto is None:
            return "read-only: assigned by the database"
        return AUTO_INPUT.get(f.auto or "", "read-only")
    word = "required" if f.required else "optional"
    if f.kind in STRING_KINDS:
        if not f.allow_blank:
            word += ", not blank"
        elif f.required:
            word += ", may be blank"
    return word


def _default(f: F) -> str:
    if f.read_only or f.default is REQUIRED:
        return ""
    return f"`{json.dumps(f.default, sort_keys=True)}`"


def _filters(r: Resource) -> str:
    header = ("parameter", "matches", "operator", "value")
    return _table(header, [_filter_row(r, flt) for flt in r.filters])


def _filter_row(r: Resource, flt: Filter) -> tuple[str, ...]:
    if flt.op == "search":
        names = ", ".join(f"`{n}`" for n in flt.path.split(","))
        return f"`{flt.param}`", f"any of {names}", OPERATORS["search"], "text"
    steps, resource, end = _walk(r, flt.path)
    matches = f"`{flt.path}`"
    if steps:
        matches += f": `{resource.name}`.`{end.name}`, through " + ", then ".join(steps)
    return f"`{flt.param}`", matches, OPERATORS.get(flt.op, flt.op), KIND_NAMES.get(end.kind, end.kind)


def _walk(r: Resource, path: str) -> tuple[list[str], Resource, F]:
    """A filter path's foreign-key steps (``run`` → ``runs``), the resource it ends in and the field it
    compares (a path ending at a foreign key compares the key, or the target field, the JSON shows)."""
    steps: list[str] = []
    resource, f = r, r.pk
    for part in path.split("."):
        f = resource.field(part)
        if f.kind == "fk":
            resource = _target(f)
            f = _target_key(f)
            steps.append(f"`{part}` → `{resource.name}`")
    return steps, resource, f


def _counters(counters: Iterable[Counter]) -> str:
    rows = [
        (f"`POST /api/state/{c.endpoint}/`", f"`{c.response_key}`", f"`{c.key}`", _maximum(c.maximum)) for c in counters
    ]
    text = (
        "## Counters\n\n"
        "Each counter is one global sequence handed out by `POST` (token required; the body is ignored). "
        'The answer is `{"<response key>": <value>, "status": "success"}`. A counter never repeats a value, '
        "never wraps and never exceeds its maximum: past it the endpoint answers 500 "
        '`{"error": "...", "status": "error"}`. Seed files and the test-control API name a counter by its '
        "seed name (what it hands out next). First values and the rest of the rules are in "
        "[contract.md](contract.md#counters).\n\n"
    )
    return text + _table(("endpoint", "response key", "seed name", "maximum"), rows)


def _maximum(value: int) -> str:
    exponent = (value + 1).bit_length() - 1
    power = f" (2^{exponent} − 1)" if value + 1 == 2**exponent else ""
    return f"{value:,}{power}"


# -- helpers ---------------------------------------------------------------------------------------


def _target(f: F) -> Resource:
    if f.to is None:
        raise ValueError(f"foreign key {f.name} names no target resource")
    return BY_NAME[f.to]


def _target_key(f: F) -> F:
    target = _target(f)
    return target.field(f.to_field) if f.to_field else target.pk


def _anchor(title: str) -> str:
    """GitHub's heading anchor for a resource name (lower case; letters, digits, ``-`` and ``_`` kept)."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
