"""The domain layer: every operation on the testbed's records, whatever door asked for it.

The HTTP API, the pages, the control API, the seed loader and the stream's subscriber rows all call
:class:`Service`; it takes plain Python values, validates them against the catalog (DRF's wording),
reads and writes through the :class:`~swf_lite.db.Store`, raises :mod:`swf_lite.errors`, and
publishes one :class:`~swf_lite.events.Change` per write on the bus after the write commits.

Ordering guarantee: writes commit and hand their changes to the bus under one process-wide lock, so
changes reach the bus in commit order; the message stream's order is therefore storage order, which
replay relies on. The bus publishes them from its own thread (:meth:`~swf_lite.events.Bus.publish_later`):
a writer never waits for stream clients' sockets, and never while it holds that lock.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import functools
import operator
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swf_lite import counters, fields, rules, timefmt
from swf_lite.catalog import BY_NAME, RESOURCES, F, Filter, Resource
from swf_lite.counters import Counter
from swf_lite.db import Store, UniqueViolation
from swf_lite.db.models import SEQ
from swf_lite.errors import Exhausted, Invalid, NotFound
from swf_lite.events import Bus, Change

STATE = "persistent-state"  # the counters' name on the change feed (and their page)
AGENTS = BY_NAME["systemagents"]
NAMESPACES = BY_NAME["namespaces"]
MEMORY = BY_NAME["ai-memory"]
SUBSCRIBERS = BY_NAME["subscribers"]
SLICES = BY_NAME["tf-slices"]
FASTMON = BY_NAME["fastmon-files"]
RUN_STATES = BY_NAME["run-states"]
MESSAGES = BY_NAME["workflow-messages"]
# The heartbeat upsert: keys always set (body value or this default) and keys set only when sent.
HEARTBEAT_DEFAULTS = {"agent_type": "other", "description": "", "status": "OK", "agent_url": None, "namespace": None}
HEARTBEAT_OPTIONAL = ("workflow_enabled", "operational_state", "pid", "hostname", "metadata",
                      "current_stf_count", "total_stf_processed")  # fmt: skip
RECENT_ERRORS = 5  # per (app, instance) in the log summary
# django-filter's wording (its NumberFilter says "Enter a number." for integers too)
FILTER_MESSAGES = {"int": "Enter a number.", "int64": "Enter a number.", "uuid": "Enter a valid UUID.",
                   "datetime": "Enter a valid date/time.", "float": "Enter a number."}  # fmt: skip
MAX_OFFSET = 2**62  # beyond SQL's 64-bit range a LIMIT/OFFSET fails
TEXT_KINDS = ("str", "text", "url", "ip")


Count = tuple[dt.datetime, Any, int]  # (minute, group value, rows)


@dataclass
class Page:
    """Rows of a list as clients read them; ``count`` (all matching rows) only for a paged list."""

    rows: list[dict[str, Any]]
    count: int | None = None


class Service:
    """Operations over one store, publishing changes on one bus."""

    def __init__(self, store: Store, bus: Bus, *, zone: dt.tzinfo, stale_agent_seconds: float = 180):
        self.store = store
        self.bus = bus
        self.zone = zone
        self.stale_agent_seconds = stale_agent_seconds
        self._commit = threading.Lock()  # commit + hand to the bus, in order
        self.feed: Any = None  # swf_lite.feed.Feed when processes share the database: it publishes instead
        self._local = threading.local()  # changes of this thread's open transaction

    # -- transactions and the change feed ------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, atomic: bool = True) -> Iterator[None]:
        """A write: its changes are published after it commits, none if it fails. Nested calls join
        the outer write (as a savepoint). ``atomic=False`` is for a single self-committing statement."""
        pending: list[Change] | None = getattr(self._local, "pending", None)
        if pending is not None:
            mark = len(pending)
            try:
                with self.store.db.atomic() if atomic else contextlib.nullcontext():
                    yield
            except BaseException:
                del pending[mark:]
                raise
            return
        self.store.connect()
        changes: list[Change] = []
        self._local.pending = changes
        try:
            with self._commit:
                with self.store.atomic() if atomic else contextlib.nullcontext():
                    yield
                    if self.feed is not None and atomic and changes:
                        self.feed.notify(self.store.db, changes)  # delivered at commit, in commit order
                if self.feed is None:
                    self.bus.publish_later(changes)  # in commit order; the sockets are the bus thread's
                elif not atomic and changes:  # the statement has committed by itself
                    self.feed.notify(self.store.db, changes)
        finally:
            self._local.pending = None

    def _emit(self, change: Change) -> None:
        pending = getattr(self._local, "pending", None)
        if pending is None:
            raise RuntimeError("a change outside a transaction would never be published")
        pending.append(change)

    # -- validation ----------------------------------------------------------------------------

    def clean(self, r: Resource, data: Mapping[str, Any], *, creating: bool, partial: bool = False,
              strict_choices: bool = True) -> dict[str, Any]:  # fmt: skip
        """Validated values of ``data`` for ``r`` (``fields.clean`` with this store's foreign keys)."""
        return fields.clean(r, dict(data), zone=self.zone, resolve_fk=self._resolve_fk, creating=creating,
                            partial=partial, strict_choices=strict_choices)  # fmt: skip

    def _clean_write(self, r: Resource, data: Mapping[str, Any], *, creating: bool, partial: bool = False,
                     strict_choices: bool = True) -> dict[str, Any]:  # fmt: skip
        """``clean`` plus the resource's own input rules (a tf-slice takes its flat names from its parent)."""
        if r is not SLICES or partial:
            return self.clean(r, data, creating=creating, partial=partial, strict_choices=strict_choices)
        parent = data.get("fastmon_file")
        parent_row = self._find(FASTMON, "tf_filename", parent) if isinstance(parent, (str, int)) else None
        try:
            return self.clean(r, rules.slice_defaults(data, parent_row), creating=creating,
                              strict_choices=strict_choices)  # fmt: skip
        except Invalid as exc:
            if "fastmon_file" in exc.errors:  # an unknown parent: its error, not the names it would give
                for name in ("tf_filename", "stf_filename"):
                    if exc.errors.get(name) == ["This field is required."]:
                        del exc.errors[name]
            raise

    def _find(self, r: Resource, name: str, value: Any) -> dict[str, Any] | None:
        """The first stored row of ``r`` whose field ``name`` equals ``value`` (raw), or None."""
        self.store.connect()
        return self.store.find(r, name, value)

    def _derive_slice_parent(self, values: dict[str, Any], row: Mapping[str, Any] | None,
                             data: Mapping[str, Any]) -> None:  # fmt: skip
        """Without an explicit ``fastmon_file``, a slice written with a (new) flat name, or one that has
        no parent yet, gets the fast-monitoring file its name points at (or none)."""
        if "fastmon_file" in data:
            return
        if row is not None and row.get("fastmon_file") is not None and "tf_filename" not in values:
            return
        name = values.get("tf_filename", row.get("tf_filename") if row is not None else None)
        if not isinstance(name, str):
            return
        values["fastmon_file"] = next(
            (n for n in rules.parent_names(name) if self._find(FASTMON, "tf_filename", n) is not None), None
        )

    def _resolve_fk(self, f: F, raw: Any) -> Any:
        """The key a foreign-key input points at, or DRF's error for a missing/mistyped one."""
        target = BY_NAME[str(f.to)]
        model = self.store.model(target)
        if f.to_field:
            if isinstance(raw, (dict, list, bool)):
                raise fields.FieldError("Invalid value.")
            value = str(raw)
            if not model.select().where(getattr(model, f.to_field) == value).exists():
                raise fields.FieldError(f"Object with {f.to_field}={value} does not exist.")
            return value
        if isinstance(raw, (dict, list, bool)) or (target.pk.kind == "int" and isinstance(raw, float)):
            raise fields.FieldError(f"Incorrect type. Expected pk value, received {type(raw).__name__}.")
        try:
            key = fields.convert(target.pk, raw, self.zone)
        except fields.FieldError:
            if target.pk.kind in ("int", "int64"):
                raise fields.FieldError(f"Incorrect type. Expected pk value, received {type(raw).__name__}.") from None
            raise fields.FieldError(f'Invalid pk "{raw}" - object does not exist.') from None
        if self.store.get(target, key) is None:
            raise fields.FieldError(f'Invalid pk "{raw}" - object does not exist.')
        return key

    @staticmethod
    def key(r: Resource, raw: Any) -> Any:
        """A key as given in a URL or by a caller, converted to the key's type (NotFound if it cannot
        be one: DRF's plain "Not found.")."""
        f = r.pk
        text = str(raw)
        if f.kind in ("int", "int64"):
            if isinstance(raw, bool) or not text.lstrip("-").isdigit():
                raise NotFound()
            number = int(text)
            if not fields.INT64[0] <= number <= fields.INT64[1]:
                raise NotFound(r.model)  # well-formed, but no row can have it
            return number
        if f.kind == "uuid":
            try:
                return raw if isinstance(raw, uuid.UUID) else uuid.UUID(text)
            except ValueError:
                raise NotFound() from None
        return text

    # -- reads ---------------------------------------------------------------------------------

    def list(self, r: Resource, params: Mapping[str, str] | None = None, *, ordering: str | Sequence[str] = (),
             limit: int | None = None, offset: int = 0, search: str = "") -> Page:  # fmt: skip
        """Rows of ``r`` matching the catalog filters in ``params`` (raw query values; an empty value
        is no filter; comma lists mean any of) and the text ``search``, sorted by ``ordering``
        (``"a,-b"`` or names, default the catalog's), all of them or the page ``limit``/``offset``
        with the total count."""
        self.store.connect()
        self.store.analyze_if_grown(r)
        query = self.query(r, params or {}, search).order_by(*self._ordering(r, ordering, params or {}))
        if limit is None:
            return Page(self.store.client_rows(r, query))
        offset = min(max(offset, 0), MAX_OFFSET)
        limit = min(max(limit, 0), MAX_OFFSET)
        rows = self.store.client_rows(r, query.limit(limit).offset(offset))
        return Page(rows, query.order_by().count())

    def query(self, r: Resource, params: Mapping[str, str], search: str = "") -> Any:
        """The filtered query (Invalid naming every bad filter value at once). ``search`` matches a
        substring of any text column (case-insensitive for ASCII)."""
        model = self.store.model(r)
        query = model.select()
        try:
            fields.refuse_null(search)
        except fields.FieldError as exc:
            raise Invalid({"search": [str(exc)]}) from None
        if search.strip():
            texts = [getattr(model, f.name).contains(search.strip()) for f in r.all_fields if f.kind in TEXT_KINDS]
            if texts:
                query = query.where(functools.reduce(operator.or_, texts))
        errors: dict[str, list[str]] = {}
        for flt in r.filters:
            raw = params.get(flt.param)
            if raw is None or raw == "":
                continue
            try:
                query = query.where(self._filter_expression(r, flt, raw))
            except fields.FieldError as exc:
                errors[flt.param] = [str(exc)]
        if errors:
            raise Invalid(errors)
        return query

    def count(self, r: Resource, params: Mapping[str, str] | None = None, search: str = "") -> int:
        """How many rows match (the filters as in :meth:`list`)."""
        self.store.connect()
        n: int = self.query(r, params or {}, search).count()
        return n

    def value_counts(self, r: Resource, name: str, params: Mapping[str, str] | None = None,
                     search: str = "") -> builtins.list[tuple[Any, int]]:  # fmt: skip
        """Rows per value of field ``name`` among the rows the other filters select (a filter on
        ``name`` itself is left out, so every value stays offered), most frequent first."""
        self.store.connect()
        others = {k: v for k, v in (params or {}).items() if k != name}
        column = getattr(self.store.model(r), name)
        counts = self.store.count_by(self.query(r, others, search), column)
        return [(fields.represent(r, {name: value})[name], n) for value, n in counts]

    def per_minute(self, r: Resource, time: str, params: Mapping[str, str] | None = None, *, group: str = "",
                   limit: int = 1000) -> builtins.list[Count]:  # fmt: skip
        """Rows per minute of field ``time`` (and per value of ``group``) among the newest ``limit``
        matching rows by ``time``: what a rate chart draws, counted by the database (read straight
        off the time index: no sort, and no key tie-break, which would not change a chart)."""
        self.store.connect()
        column = getattr(self.store.model(r), time)
        query = self.query(r, params or {}).order_by(column.desc()).limit(min(max(limit, 0), MAX_OFFSET))
        return self.store.per_minute(query, column, getattr(self.store.model(r), group) if group else None)

    def get(self, r: Resource, key: Any) -> dict[str, Any]:
        """One row as clients read it (NotFound)."""
        return fields.represent(r, self._row(r, self.key(r, key)))

    def _row(self, r: Resource, pk: Any) -> dict[str, Any]:
        self.store.connect()
        row = self.store.get(r, pk)
        if row is None:
            raise NotFound(r.model)
        return row

    def _ordering(self, r: Resource, requested: str | Sequence[str],
                  params: Mapping[str, str] | None = None) -> builtins.list[Any]:  # fmt: skip
        """The requested sort, else the one the applied filters ask for, else the catalog's; ties by
        storage order (sequenced resources), then the key."""
        model = self.store.model(r)
        names = requested.split(",") if isinstance(requested, str) else list(requested)
        known = {f.name for f in r.all_fields}
        by_filter = [order for param, order in r.filter_ordering if (params or {}).get(param)]
        names = [n.strip() for n in names if n.strip().lstrip("-") in known] or list(
            by_filter[0] if by_filter else r.ordering
        )
        order = [getattr(model, n.lstrip("-")).desc() if n.startswith("-") else getattr(model, n) for n in names]
        if r.sequenced:
            seq = getattr(model, SEQ)
            order.append(seq.desc() if names and names[0].startswith("-") else seq)
        if not names or names[-1].lstrip("-") != model._meta.primary_key.name:  # not a tie-break twice
            order.append(model._meta.primary_key)
        return order

    def _filter_expression(self, r: Resource, flt: Filter, raw: str) -> Any:
        model = self.store.model(r)
        if flt.op == "search":
            fields.refuse_null(raw)
            expr = None
            for name in flt.path.split(","):
                term = getattr(model, name).contains(raw)
                expr = term if expr is None else expr | term
            return expr
        target = self._target_field(r, flt)
        values = [self._filter_value(flt, target, v) for v in (raw.split(",") if flt.op == "eq" else [raw])]
        return self._match(r, flt.path, flt.op, values)

    def _match(self, r: Resource, path: str, op: str, values: builtins.list[Any]) -> Any:
        """``path`` compared with ``values``; a foreign-key step becomes ``fk IN (SELECT key ...)``."""
        head, _, rest = path.partition(".")
        column = getattr(self.store.model(r), head)
        if not rest:
            if op == "ge":
                return column >= values[0]
            if op == "le":
                return column <= values[0]
            return column == values[0] if len(values) == 1 else column.in_(values)
        f = r.field(head)
        parent = BY_NAME[str(f.to)]
        parent_model = self.store.model(parent)
        key = getattr(parent_model, f.to_field or parent.pk.name)
        return column.in_(parent_model.select(key).where(self._match(parent, rest, op, values)))

    @staticmethod
    def _target_field(r: Resource, flt: Filter) -> F:
        """The catalog field a filter path ends at (following foreign keys)."""
        resource, f = r, r.pk
        for part in flt.path.split("."):
            f = resource.field(part)
            if f.kind == "fk":
                resource = BY_NAME[str(f.to)]
                f = resource.field(f.to_field) if f.to_field else resource.pk
        return f

    def _filter_value(self, flt: Filter, f: F, raw: str) -> Any:
        raw = raw.strip()
        if f.kind == "bool":
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise fields.FieldError(f"Select a valid choice. {raw} is not one of the available choices.")
        if f.kind in ("str", "text", "json", "url", "ip"):
            return fields.refuse_null(raw)
        try:
            if f.kind in ("int", "int64") and not raw.lstrip("-").isdigit():
                raise fields.FieldError(raw)
            return fields.convert(f, raw, self.zone)
        except fields.FieldError:
            raise fields.FieldError(FILTER_MESSAGES.get(f.kind, "Enter a valid value.")) from None

    # -- generic writes ------------------------------------------------------------------------

    def create(self, r: Resource, data: Mapping[str, Any], *, lenient: bool = False,
               keep_times: bool = False) -> dict[str, Any]:  # fmt: skip
        """Validate and store a new row; returns it as clients read it. ``lenient``: choices are not
        enforced (heartbeat-style and seed data); ``keep_times``: recorded ``created_at``-style times
        in ``data`` win over now (seed data)."""
        values = self._clean_write(r, data, creating=True, strict_choices=not lenient)
        if r is SLICES:
            self._derive_slice_parent(values, None, data)
        if keep_times:
            for f in r.all_fields:
                if f.read_only and f.kind == "datetime" and data.get(f.name):
                    try:
                        values[f.name] = fields.convert(f, data[f.name], self.zone)
                    except fields.FieldError as exc:
                        raise Invalid({f.name: [str(exc)]}) from None
        if r is MESSAGES and (rules.lifecycle_run(values) is not None or not self.store.dialect.numbers_alone):
            with self.transaction():  # the message and the run state it moves commit together
                out = self._insert(r, values)
                self._apply_lifecycle(out)
                return out
        with self.transaction(atomic=False):  # one self-committing INSERT (a message too, if it moves no run)
            return self._insert(r, values)

    def _apply_lifecycle(self, message: dict[str, Any]) -> None:
        """A run lifecycle message moves its run's RunState (created first if the run has none)."""
        number = rules.lifecycle_run(message)
        if number is None:
            return
        row = self.store.get(RUN_STATES, number)
        values = rules.lifecycle_values(message, row, timefmt.utcnow())
        if row is None:
            self._insert(RUN_STATES, values)
        else:
            self._update(RUN_STATES, row, values)

    def _insert(self, r: Resource, values: dict[str, Any], op: str = "create") -> dict[str, Any]:
        now = timefmt.utcnow()
        for f in r.all_fields:
            if f.auto == "uuid":
                values[f.name] = uuid.uuid4()
            elif f.auto in ("created", "now"):
                values.setdefault(f.name, now)
        try:
            pk, seq = self.store.insert(r, values)
        except UniqueViolation as exc:
            raise Invalid(unique_errors(r, exc)) from None
        values[r.pk.name] = pk
        out = fields.represent(r, values)
        self._emit(Change(op, r.name, out[r.pk.name], out, seq))
        return out

    def update(self, r: Resource, key: Any, data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        """PUT (``partial=False``: every required field) or PATCH one row; returns it. One self-committing
        ``UPDATE … RETURNING`` (a tf-slice, whose new values depend on its stored ones, reads it first)."""
        pk = self.key(r, key)
        if r is SLICES:
            with self.transaction():
                row = self._row(r, pk)
                values = self._clean_write(r, data, creating=False, partial=partial)
                self._derive_slice_parent(values, row, data)
                return self._update(r, row, values)
        self.store.connect()
        try:
            values = self._clean_write(r, data, creating=False, partial=partial)
        except Invalid:
            self._row(r, pk)  # a missing row is a 404 before its data's 400 (DRF looks the row up first)
            raise
        self._stamp(r, values)
        with self.transaction(atomic=False):
            try:
                stored = self.store.update_by(r, r.pk.name, pk, values) if values else self.store.get(r, pk)
            except UniqueViolation as exc:
                raise Invalid(unique_errors(r, exc)) from None
            if stored is None:
                raise NotFound(r.model)
            out = fields.represent(r, stored)
            self._emit(Change("update", r.name, out[r.pk.name], out, stored.get(SEQ)))
            return out

    def _update(self, r: Resource, row: dict[str, Any], values: dict[str, Any], op: str = "update") -> dict[str, Any]:
        self._stamp(r, values)
        try:
            self.store.update(r, row[r.pk.name], values, row)
        except UniqueViolation as exc:
            raise Invalid(unique_errors(r, exc)) from None
        row.update(values)
        out = fields.represent(r, row)
        self._emit(Change(op, r.name, out[r.pk.name], out, row.get(SEQ)))
        return out

    @staticmethod
    def _stamp(r: Resource, values: dict[str, Any]) -> None:
        """The fields the server sets on every write (``updated_at``)."""
        for f in r.fields:
            if f.auto == "now":
                values[f.name] = timefmt.utcnow()

    def delete(self, r: Resource, key: Any) -> dict[str, Any]:
        """Delete one row; returns it as it was."""
        pk = self.key(r, key)
        with self.transaction():
            row = self._row(r, pk)
            self.store.delete(r, pk)
            out = fields.represent(r, row)
            self._emit(Change("delete", r.name, out[r.pk.name], out, row.get(SEQ)))
        return out

    # -- special operations --------------------------------------------------------------------

    def heartbeat(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Upsert an agent by ``instance_name`` (no choice validation: clients send their own agent
        types) and mark agents silent for ``stale_agent_seconds`` EXITED — a known agent's heartbeat
        is one statement doing both. Returns (agent, created)."""
        name = data.get("instance_name")
        if not isinstance(name, (str, int)) or not str(name).strip():
            raise Invalid({"instance_name": ["This field is required."]})
        body: dict[str, Any] = {"instance_name": name}
        body.update({k: data.get(k) if data.get(k) is not None else v for k, v in HEARTBEAT_DEFAULTS.items()})
        body.update({k: data[k] for k in HEARTBEAT_OPTIONAL if k in data})
        values = self.clean(AGENTS, body, creating=False, partial=True, strict_choices=False)
        values["instance_name"] = str(name)
        now = timefmt.utcnow()
        values["last_heartbeat"] = values["updated_at"] = now
        stale = now - dt.timedelta(seconds=self.stale_agent_seconds)
        with self.transaction(atomic=False):  # a known agent and the sweep: one self-committing UPDATE … RETURNING
            row, swept = self.store.heartbeat(AGENTS, values["instance_name"], values, stale, now)
            out = self._agent_changed(row)
            if swept:
                self._emit(Change("update", AGENTS.name, None, None))  # several rows: readers reload
        created = out is None
        if out is None:
            with self.transaction():  # a new one: asked again, then inserted, under the write lock
                out = self._heartbeat_known(values)
                created = out is None
                if out is None:
                    full = self.clean(AGENTS, {"instance_name": name, "agent_type": "other"}, creating=True,
                                      strict_choices=False)  # fmt: skip
                    full.update(values)
                    out = self._insert(AGENTS, full, op="upsert")
        return out, created

    def _heartbeat_known(self, values: dict[str, Any]) -> dict[str, Any] | None:
        return self._agent_changed(self.store.update_by(AGENTS, "instance_name", values["instance_name"], values))

    def _agent_changed(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out = fields.represent(AGENTS, row)
        self._emit(Change("upsert", AGENTS.name, out[AGENTS.pk.name], out))
        return out

    def ensure_namespace(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The namespace ``data["name"]``, created from ``data`` if missing. Returns (row, created)."""
        missing = {k: ["This field is required."] for k in ("name", "owner") if not str(data.get(k) or "").strip()}
        if missing:
            raise Invalid(missing)
        with self.transaction():
            row = self.store.get(NAMESPACES, str(data["name"]))
            if row is not None:
                return fields.represent(NAMESPACES, row), False
            return self._insert(NAMESPACES, self.clean(NAMESPACES, data, creating=True)), True

    def log_summary(self) -> dict[str, Any]:
        """``{app: {instance: {"error_counts": {levelname: n}, "recent_errors": [...]}}}``."""
        self.store.connect()
        out: dict[str, Any] = {}
        for app_name, instance, levelname, n in self.store.log_counts():
            entry = out.setdefault(app_name, {}).setdefault(instance, {"error_counts": {}, "recent_errors": []})
            entry["error_counts"][levelname] = n
        for row in self.store.recent_errors(RECENT_ERRORS):
            app_name, instance = row.pop("app_name"), row.pop("instance_name")
            row["timestamp"] = timefmt.iso(row["timestamp"])
            out[app_name][instance]["recent_errors"].append(row)
        return out

    def recent_memory(self, params: Mapping[str, str], turns: int) -> builtins.list[dict[str, Any]]:
        """The last ``turns`` AI-memory turns matching ``params``, oldest first."""
        return self.list(MEMORY, params, limit=turns).rows[::-1]

    # -- counters ------------------------------------------------------------------------------

    def next_value(self, counter: Counter) -> int:
        """Hand out the next number of ``counter`` (never the same twice, across processes too)."""
        with self.transaction(atomic=False):  # one self-committing UPDATE ... RETURNING
            value = self.store.next_counter(counter.column, counter.time_column, counter.maximum)
            if value is None:
                raise Exhausted(f"{counter.endpoint} has handed out its last value ({counter.maximum})")
            self._emit(Change("update", STATE, counter.endpoint, {counter.response_key: value}))
        return value

    def counters(self) -> dict[str, Any]:
        """The last values handed out and when (times as clients read them)."""
        self.store.connect()
        return {k: timefmt.iso(v) if k.endswith("_time") else v for k, v in self.store.state().items()}

    def next_values(self) -> dict[str, int]:
        """What each counter hands out next, keyed like seed files (``next_run_number``...)."""
        state = self.counters()
        return {c.key: int(state[c.column]) + 1 for c in counters.COUNTERS}

    def set_counters(self, next_values: Mapping[str, int]) -> None:
        """Make counters hand out the given numbers next (``{"next-run-number": 200000}``)."""
        with self.transaction():
            self.store.set_state({counters.BY_ENDPOINT[e].column: int(v) - 1 for e, v in next_values.items()})
            self._emit(Change("update", STATE, None, self.next_values()))

    # -- whole-store operations ----------------------------------------------------------------

    def reset(self, next_values: Mapping[str, int] | None = None) -> None:
        """Empty every table and restart the counters (or set them); one ``reset`` change."""
        with self.transaction():
            self.store.reset(RESOURCES)
            if next_values:
                self.store.set_state({counters.BY_ENDPOINT[e].column: int(v) - 1 for e, v in next_values.items()})
            self._emit(Change("reset", "*", None, None))

    def is_empty(self) -> bool:
        """True when no resource table has a row (users and the counters row do not count)."""
        self.store.connect()
        return not any(self.store.model(r).select().exists() for r in RESOURCES)

    def deactivate_stream_subscribers(self) -> int:
        """Close the stream subscriber rows a previous process left active (none of its streams is
        open any more). Returns how many."""
        model = self.store.model(SUBSCRIBERS)
        with self.transaction():
            n: int = (
                model.update(is_active=False, disconnected_at=timefmt.utcnow())
                .where((model.delivery_type == "sse") & (model.is_active == True))  # noqa: E712 - peewee expression
                .execute()
            )
            if n:
                self._emit(Change("update", SUBSCRIBERS.name, None, None))
        return n


def unique_errors(r: Resource, exc: UniqueViolation) -> dict[str, list[str]]:
    """DRF's wording for a unique constraint (one field, or a set of fields)."""
    if len(exc.columns) > 1:
        return {"non_field_errors": [f"The fields {', '.join(exc.columns)} must make a unique set."]}
    name = exc.columns[0]
    return {name: [f"{r.label} with this {name.replace('_', ' ')} already exists."]}
