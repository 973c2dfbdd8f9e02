"""Every fact about one SQL engine, in one place: how to open it, its placeholders, its auto-increment
key, how rows get their storage-order number, and its maintenance statements.

SQLite is the only engine so far. Another engine (PostgreSQL) is a second :class:`Dialect` subclass
here plus its entry in :func:`dialect_for`; nothing outside this package needs to change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import peewee as pw
from playhouse.db_url import connect
from playhouse.sqlite_ext import AutoIncrementField


class Dialect:
    """What the store asks of an engine."""

    name = "sql"
    placeholder = "%s"

    def open(self, url: str) -> pw.Database:
        return connect(url)

    def auto_pk(self) -> pw.Field:
        """An integer key the database assigns and never reuses."""
        return pw.AutoField()

    def next_seq(self, table: str) -> str:
        """SQL for the next storage-order number of ``table`` (its ``seq`` column), evaluated inside
        the INSERT while the writer holds the table's write lock."""
        raise NotImplementedError

    def backfill_seq(self, db: pw.Database, table: str) -> None:
        """Number rows stored before the table had a ``seq`` column, in their storage order."""
        raise NotImplementedError

    def minute(self, expr: str) -> str:
        """SQL truncating a stored time to its minute, as text ``YYYY-MM-DD HH:MM``."""
        raise NotImplementedError

    def row_estimate(self, db: pw.Database, table: str) -> int:
        """A cheap upper bound of the table's size (for deciding when to refresh statistics)."""
        return 0

    def analyze(self, db: pw.Database, table: str) -> None:
        """Refresh the planner's statistics of ``table``."""

    def reload_statistics(self, db: pw.Database) -> None:
        """Make this connection's planner use statistics another connection refreshed."""

    def begin_reset(self, db: pw.Database) -> None:
        """Inside the reset transaction, before the tables are emptied."""

    def end_reset(self, db: pw.Database) -> None:
        """Inside the reset transaction, after the tables are emptied (restart key sequences)."""

    def before_close(self, db: pw.Database) -> None:
        """Last words before the process closes its connection."""

    def atomic(self, db: pw.Database) -> Any:
        """A write transaction that takes the write lock up front (no read-then-upgrade deadlock)."""
        return db.atomic()


class SQLiteDialect(Dialect):
    """SQLite in WAL mode with ``synchronous=NORMAL``: a crashed process loses nothing it committed
    (only a power loss can drop the last commits)."""

    name = "sqlite"
    placeholder = "?"
    PRAGMAS = {
        "journal_mode": "wal",
        "synchronous": "normal",
        "foreign_keys": 1,
        "busy_timeout": 15000,
        "cache_size": -16000,
        "analysis_limit": 400,  # ANALYZE samples at most this many rows per index: milliseconds, not seconds
        "mmap_size": 256 * 1024 * 1024,  # readers share the OS page cache instead of warming a cache per thread
    }

    def open(self, url: str) -> pw.Database:
        path = url.split("sqlite:///", 1)[-1]
        if not path or path == ":memory:":
            raise ValueError("swf-lite needs a SQLite file (its servers are threaded), not :memory:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)  # never world-readable, not even briefly
        os.close(fd)
        os.chmod(path, 0o600)
        return connect(url, pragmas=self.PRAGMAS)

    def auto_pk(self) -> pw.Field:
        return AutoIncrementField()  # AUTOINCREMENT: a deleted row's id is never handed out again

    def next_seq(self, table: str) -> str:
        return f'(SELECT COALESCE(MAX("seq"), 0) + 1 FROM "{table}")'

    def backfill_seq(self, db: pw.Database, table: str) -> None:
        db.execute_sql(f'UPDATE "{table}" SET "seq" = rowid WHERE "seq" IS NULL')

    def minute(self, expr: str) -> str:
        return f"substr({expr}, 1, 16)"  # times are stored as fixed-width ISO text

    def row_estimate(self, db: pw.Database, table: str) -> int:
        return db.execute_sql(f'SELECT max(rowid) FROM "{table}"').fetchone()[0] or 0

    def analyze(self, db: pw.Database, table: str) -> None:
        db.execute_sql(f'ANALYZE "{table}"')

    def reload_statistics(self, db: pw.Database) -> None:
        db.execute_sql("ANALYZE sqlite_schema")  # reloads sqlite_stat1 without analysing anything

    def begin_reset(self, db: pw.Database) -> None:
        db.execute_sql("PRAGMA defer_foreign_keys = ON")

    def end_reset(self, db: pw.Database) -> None:
        db.execute_sql("DELETE FROM sqlite_sequence")

    def before_close(self, db: pw.Database) -> None:
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def atomic(self, db: pw.Database) -> Any:
        return db.atomic("IMMEDIATE")


def dialect_for(url: str) -> Dialect:
    """The dialect of a database URL, or a ValueError that says what is supported."""
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return SQLiteDialect()
    raise ValueError(f"unsupported database {scheme!r}: swf-lite runs on SQLite (a sqlite:///path URL) so far")
