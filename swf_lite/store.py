"""The database: opening it safely, creating/upgrading tables, and the write paths.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a crashed process loses nothing it committed
(only a power loss can drop the last commits). Each worker thread keeps its own connection
(peewee's thread-local state); writes that read first run inside ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import peewee as pw
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from swf_lite.catalog import RESOURCES, Resource
from swf_lite.models import build_models

log = logging.getLogger("swf_lite.store")

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 15000,
    "cache_size": -16000,
    "analysis_limit": 400,  # ANALYZE samples at most this many rows per index: milliseconds, not seconds
}

START_VALUES = {"last_run_number": 100009, "last_agent_id": 0, "last_workflow_execution_id": 0}


class UniqueViolation(Exception):
    """A unique constraint failed; ``columns`` names the columns involved."""

    def __init__(self, columns: tuple[str, ...]):
        super().__init__(", ".join(columns))
        self.columns = columns


class Store:
    """One database with its models and precompiled statements."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._prepare_sqlite_file(url)
            self.db = connect(url, pragmas=SQLITE_PRAGMAS)
        else:
            self.db = connect(url)
        self.models = build_models(self.db)
        self._analyzed_at: dict[str, int] = {}  # table size when its statistics were last taken
        self._insert_sql = {r.name: self._compile_insert(r) for r in RESOURCES}

    # -- lifecycle -----------------------------------------------------------------------------

    @staticmethod
    def _prepare_sqlite_file(url: str) -> None:
        path = url.split("sqlite:///", 1)[-1]
        if not path or path == ":memory:":
            raise ValueError("swf-lite needs a SQLite file (its servers are threaded), not :memory:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)  # never world-readable, not even briefly
        os.close(fd)
        os.chmod(path, 0o600)

    def open(self) -> Store:
        """Create missing tables, add missing columns and indexes, seed the counters row."""
        with self.db.connection_context():
            tables = list(self.models.values())
            self.db.create_tables(tables, safe=True)
            self._add_missing_columns(tables)
            self.models["_state"].insert(id=1, **START_VALUES).on_conflict_ignore().execute()
        return self

    def _add_missing_columns(self, tables: Iterable[type[pw.Model]]) -> None:
        migrator = SchemaMigrator.from_database(self.db)
        for model in tables:
            have = {c.name for c in self.db.get_columns(model._meta.table_name)}
            for f in model._meta.sorted_fields:
                if f.column_name in have:
                    continue
                log.info("upgrading table %s: adding column %s", model._meta.table_name, f.column_name)
                f = f.clone() if hasattr(f, "clone") else f
                f.null = True  # existing rows have no value; never lose them to a NOT NULL
                migrate(migrator.add_column(model._meta.table_name, f.column_name, f))

    def connect(self) -> None:
        """Make sure this thread has its connection (kept open for the thread's life)."""
        self.db.connect(reuse_if_open=True)

    def close(self) -> None:
        if not self.db.is_closed():
            if self.is_sqlite:
                self.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()

    def analyze_if_grown(self, r: Resource) -> None:
        """Fresh planner statistics for ``r``'s table once it has doubled (plus 1,000 rows) since they
        were taken. Without them SQLite may walk the less selective of two indexes:
        ``instance_name=x&levelname=ERROR`` over 100,000 logs took 14 ms instead of 2.
        ``analysis_limit`` keeps each ANALYZE to a few milliseconds."""
        if not self.is_sqlite:
            return
        rows = self.db.execute_sql(f'SELECT max(rowid) FROM "{r.table}"').fetchone()[0] or 0
        seen = self._analyzed_at.get(r.name)
        if seen is None or rows >= 2 * seen + 1000:
            self._analyzed_at[r.name] = rows
            try:
                self.db.execute_sql(f'ANALYZE "{r.table}"')
            except pw.OperationalError as exc:  # read-only or long locked: only an optimisation is lost
                log.warning("could not refresh statistics of %s: %s", r.table, exc)

    def atomic(self):
        """A write transaction that takes the lock up front (no read-then-upgrade deadlocks)."""
        return self.db.atomic("IMMEDIATE") if self.is_sqlite else self.db.atomic()

    # -- generic writes ------------------------------------------------------------------------

    def model(self, resource: Resource | str) -> type[pw.Model]:
        return self.models[resource if isinstance(resource, str) else resource.name]

    def _compile_insert(self, r: Resource) -> tuple[str, list[pw.Field], bool]:
        model = self.model(r)
        fields = [f for f in model._meta.sorted_fields if not (f.primary_key and isinstance(f, pw.AutoField))]
        auto_pk = len(fields) != len(model._meta.sorted_fields)
        cols = ", ".join(f'"{f.column_name}"' for f in fields)
        marks = ", ".join("?" if self.is_sqlite else "%s" for _ in fields)
        return f'INSERT INTO "{r.table}" ({cols}) VALUES ({marks})', fields, auto_pk

    def insert(self, r: Resource, values: dict[str, Any]) -> tuple[Any, int]:
        """Insert one row from clean values (one precompiled statement): (primary key, rowid)."""
        sql, fields, auto_pk = self._insert_sql[r.name]
        params = [f.db_value(values.get(f.name)) for f in fields]
        try:
            cursor = self.db.execute_sql(sql, params)
        except pw.IntegrityError as exc:
            raise self._translate(exc) from None
        return (cursor.lastrowid if auto_pk else values[r.pk.name]), cursor.lastrowid

    def update(self, r: Resource, pk: Any, values: dict[str, Any]) -> None:
        if not values:
            return
        model = self.model(r)
        try:
            model.update(**values).where(model._meta.primary_key == pk).execute()
        except pw.IntegrityError as exc:
            raise self._translate(exc) from None

    @staticmethod
    def _translate(exc: pw.IntegrityError) -> Exception:
        match = re.search(r"UNIQUE constraint failed: (.+)", str(exc))
        if match:
            return UniqueViolation(tuple(c.split(".")[-1].strip() for c in match.group(1).split(",")))
        return exc

    # -- reads ---------------------------------------------------------------------------------

    def get(self, r: Resource, pk: Any) -> dict[str, Any] | None:
        model = self.model(r)
        return model.select().where(model._meta.primary_key == pk).dicts().first()

    def reset(self) -> None:
        """Delete every row of every resource and put the counters back to their start."""
        self._analyzed_at.clear()
        with self.atomic():
            if self.is_sqlite:
                self.db.execute_sql("PRAGMA defer_foreign_keys = ON")
            for r in reversed(RESOURCES):
                self.model(r).delete().execute()
            if self.is_sqlite:
                self.db.execute_sql("DELETE FROM sqlite_sequence")
            self.models["_state"].update(
                last_run_start_time=None, last_agent_registration_time=None,
                last_workflow_execution_time=None, **START_VALUES,
            ).execute()  # fmt: skip
