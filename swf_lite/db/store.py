"""The database: opening it, creating/upgrading tables, and the statements the service runs.

Connections come from a bounded pool (``Settings.db_pool``): a request checks one out when it starts
and returns it when it ends (:meth:`Store.connect`, :meth:`Store.release`), so a hundred worker
threads or open streams never mean a hundred connections (PostgreSQL's default limit is 100) or a
hundred SQLite page caches. When every connection stays busy for ``Settings.db_pool_wait`` seconds
the request gets :class:`~swf_lite.errors.Unavailable` (503).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import peewee as pw
from playhouse.pool import MaxConnectionsExceeded

from swf_lite import timefmt
from swf_lite.catalog import RESOURCES, Resource
from swf_lite.db.dialect import Dialect, dialect_for
from swf_lite.db.models import SEQ, Models, build_models
from swf_lite.errors import Unavailable

log = logging.getLogger("swf_lite.store")

# SQL, its parameters (where each comes from: "name", "now", "stale", "exited" or a value; its field), columns read
HeartbeatSql = tuple[str, list[tuple[str, pw.Field]], list[pw.Field]]
SCHEMA_STEPS = 1  # bump when _make_schema learns a new upgrade step: stamped files then run it
START_VALUES = {"last_run_number": 100009, "last_agent_id": 0, "last_workflow_execution_id": 0}


def _client_time(stored: Any) -> str | None:
    """Stored time text (``timefmt.to_db``: ``2026-03-31 12:00:00.000000``) as clients read it
    (``timefmt.iso``: ``2026-03-31T12:00:00.000000Z``), by slicing when it has the fixed form."""
    if isinstance(stored, str) and len(stored) == 26 and stored[10] == " ":
        return f"{stored[:10]}T{stored[11:]}Z"
    parsed = stored if isinstance(stored, dt.datetime) else dt.datetime.fromisoformat(str(stored))
    return timefmt.iso(parsed)


def _client_uuid(stored: Any) -> str:
    """Stored UUID (32 hex digits) in its dashed form."""
    return str(stored if isinstance(stored, uuid.UUID) else uuid.UUID(str(stored)))


class UniqueViolation(Exception):
    """A unique constraint failed; ``columns`` are the constraint's columns."""

    def __init__(self, columns: tuple[str, ...]):
        super().__init__(", ".join(columns))
        self.columns = columns


class Store:
    """One database with its models and precompiled statements."""

    def __init__(self, url: str, pool: int = 8, wait: float = 5.0):
        self.url = url
        self.pool = pool
        self.dialect: Dialect = dialect_for(url)
        self.db: pw.Database = self.dialect.open(url, pool, wait)
        self.models: Models = build_models(self.db, self.dialect)
        self._analyzed_at: dict[str, int] = {}  # table size when its statistics were last taken
        self._insert_sql = {r.name: self._compile_insert(r) for r in RESOURCES}
        # Statements built once and reused: peewee's query building costs more than SQLite running them.
        self._select_sql: dict[tuple[str, str], tuple[str, list[pw.Field]]] = {}
        self._update_sql: dict[tuple[str, tuple[str, ...]], tuple[str, list[pw.Field]]] = {}
        self._update_by_sql: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[pw.Field], list[pw.Field]]] = {}
        self._heartbeat_sql: dict[tuple[str, ...], HeartbeatSql] = {}  # by the columns a beat sets
        self._converters: dict[str, list[tuple[str, Any]]] = {}
        # Python's sqlite3 releases the GIL around every row it steps to; 16 threads fetching 1,000-row
        # lists at once then hand the GIL back and forth per row (6x the CPU per list, a fifth of the
        # throughput: bench/bench_list_threads.py). Fetching under one lock keeps that to one thread.
        self._fetch_lock = threading.Lock()
        # Each connection loads planner statistics once; after an ANALYZE on another connection it must
        # reload them, or it keeps planning with the numbers of a nearly empty table.
        self._stats_generation = 0
        self._conn_stats: dict[int, int] = {}  # id(raw connection) -> generation it has loaded

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> Store:
        """Create missing tables, add missing columns and indexes, seed the counters row — unless this
        database says (its schema stamp) that this very schema was made or checked in it before: a
        restart then skips ~100 statements (~20 ms on SQLite)."""
        stamp = self.schema_stamp()
        with self.db.connection_context():
            if self.dialect.schema_stamp(self.db) == stamp:
                return self
            with self.dialect.schema_lock(self.db):
                self._make_schema()
                self.dialect.set_schema_stamp(self.db, stamp)
        return self

    def schema_stamp(self) -> int:
        """A positive 31-bit number that changes with the declared schema (tables, columns, indexes)
        and with :data:`SCHEMA_STEPS`, the version of what :meth:`_make_schema` does to older files."""
        parts = [str(SCHEMA_STEPS)]
        for model in sorted(self.models.values(), key=lambda m: m._meta.table_name):
            meta = model._meta
            parts.append(meta.table_name)
            parts += [f"{f.column_name}:{f.field_type}:{getattr(f, 'max_length', '')}:{f.null}:{f.unique}:"
                      f"{f.index}:{f.primary_key}:{getattr(getattr(f, 'rel_model', None), '__name__', '')}"
                      for f in meta.sorted_fields]  # fmt: skip
            parts += [repr(index) for index in meta.indexes]
        return zlib.crc32("\n".join(parts).encode()) & 0x7FFFFFFF or 1

    def _make_schema(self) -> None:
        have = set(self.db.get_tables())
        for model in pw.sort_models(list(self.models.values())):  # type: ignore[attr-defined]
            table = model._meta.table_name
            if table not in have:
                model.create_table(safe=True)
                continue
            added = self._add_missing_columns(model)
            if SEQ in added:
                self.dialect.backfill_seq(self.db, table)
            model._schema.create_indexes(safe=True)
            self._drop_replaced_indexes(model)
        self.models["_state"].insert(id=1, **START_VALUES).on_conflict_ignore().execute()

    def _drop_replaced_indexes(self, model: Any) -> None:
        """Older versions indexed each filter column alone; now a (filter, sort) index leads with it,
        and the lone one would only slow every write down."""
        columns = {f.column_name: f for f in model._meta.sorted_fields}
        leading = {columns[model._meta.fields[names[0]].column_name] for names, unique in model._meta.indexes
                   if not unique and len(names) > 1}  # fmt: skip
        for index in self.db.get_indexes(model._meta.table_name):
            field = columns.get(index.columns[0]) if len(index.columns) == 1 else None
            if field is not None and not index.unique and field in leading and not field.index:
                log.info("upgrading table %s: index %s replaced by a (filter, sort) index", model._meta.table_name,
                         index.name)  # fmt: skip
                self.db.execute_sql(f'DROP INDEX "{index.name}"')

    def _add_missing_columns(self, model: Any) -> list[str]:
        table = model._meta.table_name
        have = {c.name for c in self.db.get_columns(table)}
        added = []
        for f in model._meta.sorted_fields:
            if f.column_name in have:
                continue
            from playhouse.migrate import SchemaMigrator, migrate  # only to upgrade an older file

            migrator = SchemaMigrator.from_database(self.db)
            log.info("upgrading table %s: adding column %s", table, f.column_name)
            f = f.clone() if hasattr(f, "clone") else f
            f.null = True  # existing rows have no value; never lose them to a NOT NULL
            f.unique = f.index = False  # the indexes are created afterwards, with the others
            migrate(migrator.add_column(table, f.column_name, f))
            added.append(f.column_name)
        return added

    def connect(self) -> None:
        """Make sure this thread holds a connection from the pool (until :meth:`release`), planning
        with the latest statistics."""
        if self.db.is_closed():
            try:
                self.db.connect()
            except MaxConnectionsExceeded:
                raise Unavailable(f"Service temporarily unavailable: all {self.pool} database connections "
                                  "are busy.") from None  # fmt: skip
            if len(self._conn_stats) > 4 * self.pool:  # ids of connections the pool has retired
                self._conn_stats.clear()  # the live ones reload their statistics once more: harmless
        conn = id(self.db.connection())
        if self._conn_stats.get(conn) != self._stats_generation:  # new, or behind an ANALYZE elsewhere
            self._conn_stats[conn] = self._stats_generation
            self.dialect.reload_statistics(self.db)

    def release(self) -> None:
        """Give this thread's connection back to the pool (after a request, before a long stream)."""
        if not self.db.is_closed():
            self.db.close()

    @property
    def open_connections(self) -> int:
        """Connections checked out of the pool now."""
        return len(getattr(self.db, "_in_use", ()))

    def close(self) -> None:
        """Last words (SQLite: fold the WAL into the file), then close every idle pooled connection."""
        try:
            self.connect()
            self.dialect.before_close(self.db)
        except (Unavailable, pw.OperationalError) as exc:  # busy or gone: the next start recovers
            log.warning("closing the database: %s", exc)
        self.release()
        self.db.close_all()  # type: ignore[attr-defined]  # the dialects open pooled databases

    def analyze_if_grown(self, r: Resource) -> None:
        """Fresh planner statistics for ``r``'s table once it has doubled (plus 1,000 rows) since they
        were taken. Without them SQLite may walk the less selective of two indexes:
        ``instance_name=x&levelname=ERROR`` over 100,000 logs took 14 ms instead of 2."""
        rows = self.dialect.row_estimate(self.db, r.table)
        seen = self._analyzed_at.get(r.name)
        if seen is None or rows >= 2 * seen + 1000:
            self._analyzed_at[r.name] = rows
            try:
                self.dialect.analyze(self.db, r.table)
                self._stats_generation += 1
                self._conn_stats[id(self.db.connection())] = self._stats_generation  # this one has them
            except pw.OperationalError as exc:  # read-only or long locked: only an optimisation is lost
                log.warning("could not refresh statistics of %s: %s", r.table, exc)

    def atomic(self) -> Any:
        """A write transaction that takes the write lock up front."""
        return self.dialect.atomic(self.db)

    # -- writes --------------------------------------------------------------------------------

    def model(self, resource: Resource | str) -> Any:
        return self.models[resource if isinstance(resource, str) else resource.name]

    def _compile_insert(self, r: Resource) -> tuple[str, list[pw.Field]]:
        model = self.model(r)
        pk: Any = model._meta.primary_key
        auto = isinstance(pk, pw.AutoField)
        fields = [f for f in model._meta.sorted_fields if f.name != SEQ and not (auto and f is pk)]
        cols = [f'"{f.column_name}"' for f in fields]
        marks = [self.dialect.placeholder] * len(fields)
        returning = [f'"{pk.column_name}"']
        if r.sequenced:
            cols.append(f'"{SEQ}"')
            marks.append(self.dialect.next_seq(r.table))
            returning.append(f'"{SEQ}"')
        sql = (
            f'INSERT INTO "{r.table}" ({", ".join(cols)}) VALUES ({", ".join(marks)}) RETURNING {", ".join(returning)}'
        )
        return sql, fields

    def insert(self, r: Resource, values: dict[str, Any]) -> tuple[Any, int | None]:
        """Insert one row of clean values (one precompiled statement): (primary key, seq or None)."""
        sql, fields = self._insert_sql[r.name]
        params = [f.db_value(values.get(f.name)) for f in fields]
        if r.sequenced:
            self.dialect.lock_sequence(self.db, r.table)
        try:
            with self.dialect.guard(self.db):
                row = self.db.execute_sql(sql, params).fetchall()[0]
        except pw.IntegrityError:
            self._raise_unique(r, values, None)
            raise
        model = self.model(r)
        pk = values[r.pk.name] if r.pk.name in values else model._meta.primary_key.python_value(row[0])
        return pk, (row[1] if r.sequenced else None)

    def update(self, r: Resource, pk: Any, values: dict[str, Any], row: dict[str, Any] | None = None) -> int:
        """Update the row with key ``pk``; ``row`` (its stored values) names the conflict if a unique
        constraint fails. Returns the number of rows changed. One statement per set of columns, built once."""
        if not values:
            return 0
        names = tuple(sorted(values))
        compiled = self._update_sql.get((r.name, names))
        if compiled is None:
            model = self.model(r)
            fields = [model._meta.fields[n] for n in names]
            p = self.dialect.placeholder
            sets = ", ".join(f'"{f.column_name}" = {p}' for f in fields)
            key = model._meta.primary_key
            compiled = (f'UPDATE "{r.table}" SET {sets} WHERE "{key.column_name}" = {p}', [*fields, key])
            self._update_sql[(r.name, names)] = compiled
        sql, columns = compiled
        params = [f.db_value(values[f.name]) for f in columns[:-1]] + [columns[-1].db_value(pk)]
        try:
            with self.dialect.guard(self.db):
                return int(self.db.execute_sql(sql, params).rowcount)
        except pw.IntegrityError:
            self._raise_unique(r, {**(row or {}), **values}, pk)
            raise

    def update_by(self, r: Resource, name: str, value: Any, values: dict[str, Any]) -> dict[str, Any] | None:
        """Update the row whose unique field ``name`` equals ``value`` with ``values`` and return it as
        :meth:`find` would, in one ``UPDATE … RETURNING`` statement instead of a find and an update;
        None (nothing written) if there is no such row. UniqueViolation if ``values`` collide with
        another row's unique fields (nothing written)."""
        if isinstance(value, str) and "\x00" in value:
            return None
        names = tuple(sorted(values))
        compiled = self._update_by_sql.get((r.name, name, names))
        if compiled is None:
            model = self.model(r)
            fields = list(model._meta.sorted_fields)
            params = [model._meta.fields[n] for n in (*names, name)]
            p = self.dialect.placeholder
            sets = ", ".join(f'"{f.column_name}" = {p}' for f in params[:-1])
            cols = ", ".join(f'"{f.column_name}"' for f in fields)
            sql = f'UPDATE "{r.table}" SET {sets} WHERE "{params[-1].column_name}" = {p} RETURNING {cols}'
            compiled = self._update_by_sql[(r.name, name, names)] = (sql, params, fields)
        sql, params, fields = compiled
        args = [f.db_value(values[f.name]) for f in params[:-1]] + [params[-1].db_value(value)]
        try:
            with self.dialect.guard(self.db):
                found = self.db.execute_sql(sql, args).fetchall()
        except pw.IntegrityError:
            row = self.find(r, name, value)  # as it was: the failed statement changed nothing
            if row is not None:
                self._raise_unique(r, {**row, **values}, row[self.model(r)._meta.primary_key.name])
            raise
        return _stored(fields, found[0]) if found else None

    def delete(self, r: Resource, pk: Any) -> int:
        model = self.model(r)
        return model.delete().where(model._meta.primary_key == pk).execute()

    def _raise_unique(self, r: Resource, values: dict[str, Any], pk: Any) -> None:
        """After an integrity error: raise UniqueViolation naming the unique constraint that ``values``
        break (found by asking, not by reading the engine's message); return if none does."""
        columns = self.conflict(r, values, pk)
        if columns:
            raise UniqueViolation(columns) from None

    def conflict(self, r: Resource, values: dict[str, Any], exclude_pk: Any = None) -> tuple[str, ...] | None:
        """The first unique constraint of ``r`` that another stored row shares with ``values``."""
        model = self.model(r)
        key = model._meta.primary_key
        constraints = [(f.name,) for f in r.all_fields if f.unique or (f is r.pk and not f.read_only)]
        for columns in [*constraints, *r.unique_together]:
            if any(values.get(c) is None for c in columns):
                continue  # NULLs never collide
            query = model.select(key)
            for c in columns:
                query = query.where(getattr(model, c) == values[c])
            if exclude_pk is not None:
                query = query.where(key != exclude_pk)
            if query.exists():
                return columns
        return None

    # -- reads ---------------------------------------------------------------------------------

    def client_rows(self, r: Resource, query: Any) -> list[dict[str, Any]]:
        """The rows of ``query`` (a select of ``r``'s model) as clients read them — the same values as
        ``fields.represent`` of each row — converted straight from the stored form: lists are the
        largest responses, and building a datetime or UUID per cell only to print it again cost more
        than the query."""
        converters = self._converters.get(r.name)
        if converters is None:
            converters = self._converters[r.name] = self._client_converters(r)
        names = [name for name, _ in converters]
        funcs = [func for _, func in converters]
        sql, params = query.select(*(getattr(self.model(r), n) for n in names)).sql()
        with self._fetch_lock:  # one thread steps through rows at a time (see __init__)
            fetched = self.db.execute_sql(sql, params).fetchall()
        return [{n: (v if f is None or v is None else f(v)) for n, f, v in zip(names, funcs, row)} for row in fetched]

    def _client_converters(self, r: Resource) -> list[tuple[str, Any]]:
        """(field name, stored value -> client value or None for as-is) in the catalog's field order."""
        model = self.model(r)
        out: list[tuple[str, Any]] = []
        for f in r.all_fields:
            kind = f.kind
            if kind == "fk":
                target = model._meta.fields[f.name].rel_field
                kind = "uuid" if isinstance(target, pw.UUIDField) else "as-is"
            out.append((f.name, {"datetime": _client_time, "uuid": _client_uuid, "bool": bool,
                                 "json": json.loads}.get(kind)))  # fmt: skip
        return out

    def get(self, r: Resource, pk: Any) -> dict[str, Any] | None:
        """The stored row with key ``pk`` (field name -> Python value, ``seq`` included), or None."""
        return self.find(r, self.model(r)._meta.primary_key.name, pk)

    def find(self, r: Resource, name: str, value: Any) -> dict[str, Any] | None:
        """The first stored row (by key) whose field ``name`` equals ``value``, or None."""
        compiled = self._select_sql.get((r.name, name))
        if compiled is None:
            model = self.model(r)
            fields = list(model._meta.sorted_fields)
            cols = ", ".join(f'"{f.column_name}"' for f in fields)
            where = model._meta.fields[name]
            key = model._meta.primary_key.column_name
            sql = (f'SELECT {cols} FROM "{r.table}" WHERE "{where.column_name}" = {self.dialect.placeholder} '
                   f'ORDER BY "{key}" LIMIT 1')  # fmt: skip
            compiled = self._select_sql[(r.name, name)] = (sql, [*fields, where])
        sql, fields = compiled
        if isinstance(value, str) and "\x00" in value:
            return None  # no stored text holds NUL (validation refuses it; PostgreSQL cannot store it)
        found = self.db.execute_sql(sql, (fields[-1].db_value(value),)).fetchone()
        return _stored(fields, found) if found is not None else None

    def per_minute(self, query: Any, time: Any, group: Any = None) -> list[tuple[dt.datetime, Any, int]]:
        """(minute, group value, rows) over the rows of ``query`` (which may be ordered and limited):
        counted by the database, so a chart of thousands of rows moves a few hundred tuples."""
        inner, params = query.select(time.alias("t"), *([group.alias("g")] if group is not None else [])).sql()
        sql = (f"SELECT {self.dialect.minute('q.t')}, {'q.g' if group is not None else 'NULL'}, COUNT(*) "
               f"FROM ({inner}) AS q WHERE q.t IS NOT NULL GROUP BY 1, 2")  # fmt: skip
        return [(dt.datetime.fromisoformat(m), g, n) for m, g, n in self.db.execute_sql(sql, params).fetchall()]

    @staticmethod
    def count_by(query: Any, column: Any) -> list[tuple[Any, int]]:
        """(value, rows) of ``column`` over a query's rows, most frequent first."""
        n = pw.fn.COUNT(pw.SQL("*"))
        return list(query.select(column, n).group_by(column).order_by(n.desc(), column).tuples())

    def newest_seq(self, r: Resource) -> int:
        """The highest storage-order number of a sequenced resource (0 when empty)."""
        return int(self.db.execute_sql(f'SELECT COALESCE(MAX("{SEQ}"), 0) FROM "{r.table}"').fetchone()[0])

    def after_seq(self, r: Resource, seq: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` rows of a sequenced resource stored after ``seq``, oldest first; each
        row carries its ``seq``."""
        model = self.model(r)
        column = getattr(model, SEQ)
        rows = list(model.select().where(column > seq).order_by(column.desc()).limit(limit).dicts())
        return rows[::-1]

    def log_counts(self) -> Iterator[tuple[str, str, str, int]]:
        """(app_name, instance_name, levelname, rows) for every combination, sorted."""
        cursor = self.db.execute_sql(
            'SELECT app_name, instance_name, levelname, COUNT(*) FROM "logs" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3'
        )
        yield from cursor.fetchall()

    def recent_errors(self, per_instance: int) -> list[dict[str, Any]]:
        """The newest ERROR/CRITICAL logs of every (app, instance), at most ``per_instance`` each."""
        p = self.dialect.placeholder
        cursor = self.db.execute_sql(
            "SELECT app_name, instance_name, timestamp, levelname, message, module, funcname, lineno FROM ("
            " SELECT *, ROW_NUMBER() OVER (PARTITION BY app_name, instance_name ORDER BY timestamp DESC, id DESC)"
            f" AS n FROM \"logs\" WHERE levelname IN ('ERROR', 'CRITICAL')) AS ranked WHERE n <= {p}"
            " ORDER BY 1, 2, n",
            (per_instance,),
        )
        stamp = self.model("logs").timestamp
        names = ("app_name", "instance_name", "timestamp", "levelname", "message", "module", "funcname", "lineno")
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        for row in rows:
            row["timestamp"] = stamp.python_value(row["timestamp"])
        return rows

    # -- counters ------------------------------------------------------------------------------

    def next_counter(self, column: str, time_column: str, maximum: int) -> int | None:
        """Add one to a counter column of the state row and return the new value: one statement,
        atomic across threads and processes, no read-then-write window. None once the counter has
        reached ``maximum`` (it is left there: nothing wraps, nothing overflows into a float)."""
        p = self.dialect.placeholder
        sql = (f'UPDATE "swf_state" SET "{column}" = "{column}" + 1, "{time_column}" = {p} '
               f'WHERE "id" = 1 AND "{column}" < {p} RETURNING "{column}"')  # fmt: skip
        rows = self.db.execute_sql(sql, (timefmt.to_db(timefmt.utcnow()), maximum)).fetchall()  # consume it
        return int(rows[0][0]) if rows else None

    def heartbeat(self, agents: Resource, name: str, values: dict[str, Any], stale: dt.datetime,
                  now: dt.datetime) -> tuple[dict[str, Any] | None, int]:  # fmt: skip
        """A heartbeat's one write: agent ``name`` (its ``instance_name``) takes ``values``, and every other
        agent whose last heartbeat is before ``stale`` and not yet EXITED becomes EXITED; all of them get
        ``updated_at`` = ``now``. One ``UPDATE … RETURNING`` and one commit, where an update and a sweep
        were two. Returns (the agent as :meth:`find` would, or None if there is none yet; how many others
        became EXITED)."""
        if "\x00" in name:
            return None, 0
        names = tuple(sorted(n for n in values if n != "instance_name"))
        compiled = self._heartbeat_sql.get(names)
        if compiled is None:
            compiled = self._heartbeat_sql[names] = self._compile_heartbeat(agents, names)
        sql, params, fields = compiled
        given = {"name": name, "now": now, "stale": stale, "exited": "EXITED", **values}
        rows = self.db.execute_sql(sql, [f.db_value(given[source]) for source, f in params]).fetchall()
        mine = next((row for row in rows if row[0] == name), None)
        return (_stored(fields, mine) if mine is not None else None), len(rows) - (mine is not None)

    def _compile_heartbeat(self, agents: Resource, names: tuple[str, ...]) -> HeartbeatSql:
        meta = self.model(agents)._meta
        p = self.dialect.placeholder
        key = meta.fields["instance_name"]
        fields = [key, *(f for f in meta.sorted_fields if f is not key)]  # the agent's name first in every row
        swept = ("status", "operational_state")
        sets, params = [f'"{meta.fields["updated_at"].column_name}" = {p}'], [("now", meta.fields["updated_at"])]
        for name in sorted({*names, *swept} - {"updated_at"}):
            f = meta.fields[name]
            column = f'"{f.column_name}"'
            mine, other = (p if name in names else column), (p if name in swept else column)
            sets.append(f'{column} = CASE WHEN "{key.column_name}" = {p} THEN {mine} ELSE {other} END')
            params += [
                ("name", key),
                *([(name, f)] if name in names else []),
                *([("exited", f)] if name in swept else []),
            ]
        status, beat = meta.fields["status"], meta.fields["last_heartbeat"]
        where = f'"{key.column_name}" = {p} OR ("{beat.column_name}" < {p} AND "{status.column_name}" != {p})'
        params += [("name", key), ("stale", beat), ("exited", status)]
        cols = ", ".join(f'"{f.column_name}"' for f in fields)
        return f'UPDATE "{agents.table}" SET {", ".join(sets)} WHERE {where} RETURNING {cols}', params, fields

    def user_by_token_hash(self, digest: str) -> tuple[str, str] | None:
        """(username, token) of the user whose token hashes to ``digest`` (every API call asks)."""
        p = self.dialect.placeholder
        table = self.models["_user"]._meta.table_name
        found = self.db.execute_sql(f'SELECT "username", "token" FROM "{table}" WHERE "token_hash" = {p}',
                                    (digest,)).fetchone()  # fmt: skip
        return (str(found[0]), str(found[1])) if found else None

    def state(self) -> dict[str, Any]:
        """The counters row (last values handed out and when)."""
        State = self.models["_state"]
        row = State.select().where(State.id == 1).dicts().first() or {}
        row.pop("id", None)
        return row

    def set_state(self, values: dict[str, Any]) -> None:
        State = self.models["_state"]
        State.update(**values).where(State.id == 1).execute()

    # -- reset ---------------------------------------------------------------------------------

    def reset(self, tables: Iterable[Resource] = RESOURCES) -> None:
        """Delete every row of every resource and put the counters back to their start (call inside
        a transaction)."""
        self._analyzed_at.clear()
        self.dialect.clear(self.db, [r.table for r in reversed(list(tables))])
        self.set_state({"last_run_start_time": None, "last_agent_registration_time": None,
                        "last_workflow_execution_time": None, **START_VALUES})  # fmt: skip


def _stored(fields: list[pw.Field], values: Any) -> dict[str, Any]:
    """A fetched row of ``fields`` as field name -> Python value (what :meth:`Store.find` returns)."""
    return {f.name: f.python_value(v) for f, v in zip(fields, values)}
