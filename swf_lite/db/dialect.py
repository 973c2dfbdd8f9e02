"""Every fact about one SQL engine, in one place: how to open it (a bounded pool of connections), its
placeholders, its auto-increment key, how rows get their storage-order number, how a reset empties
the tables, and its maintenance statements.

SQLite (a file; one process or several on one machine) and PostgreSQL (the real testbed's engine;
several processes on several machines). Nothing outside this package knows which one is in use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee as pw
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

STALE_SECONDS = 600  # a pooled connection older than this is closed at check-in (server restarts, leaks)


class AutoIncrementField(pw.AutoField):
    """SQLite's ``INTEGER PRIMARY KEY AUTOINCREMENT`` (as ``playhouse.sqlite_ext`` has it; importing
    that module loads a dozen more, ~10 ms of every start)."""

    def ddl(self, ctx: Any) -> Any:
        return pw.NodeList((super().ddl(ctx), pw.SQL("AUTOINCREMENT")))


class Dialect:
    """What the store asks of an engine."""

    name = "sql"
    placeholder = "%s"
    notifies = False  # every process learns of every committed change from the engine (LISTEN/NOTIFY)
    numbers_alone = False  # a sequenced INSERT committing by itself still numbers rows in commit order

    def open(self, url: str, pool: int, wait: float) -> pw.Database:
        """The database behind a pool of at most ``pool`` connections; a caller waits up to ``wait``
        seconds for a free one (then peewee raises MaxConnectionsExceeded)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def schema_lock(self, db: pw.Database) -> Iterator[None]:
        """Held while the schema is created or upgraded (two processes starting at once)."""
        yield

    def schema_stamp(self, db: pw.Database) -> int | None:
        """What :meth:`set_schema_stamp` left in the database, or None where the engine keeps no stamp
        (then every start checks the whole schema)."""
        return None

    def set_schema_stamp(self, db: pw.Database, stamp: int) -> None:
        """Inside the schema transaction, after the schema was made or checked: remember ``stamp``."""

    def lock_sequence(self, db: pw.Database, table: str) -> None:
        """Inside a write transaction, before a sequenced row's INSERT: from here to the commit no other
        writer numbers a row of ``table``, so ``seq`` order is commit order (replay relies on it)."""

    def guard(self, db: pw.Database) -> Any:
        """Wraps a statement that may fail on a constraint: after the failure the transaction must still
        answer the question which constraint it was."""
        return contextlib.nullcontext()

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

    def clear(self, db: pw.Database, tables: list[str]) -> None:
        """Inside the reset transaction: empty ``tables`` (children before parents) and restart their
        key sequences."""
        raise NotImplementedError

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
    numbers_alone = True  # one writer at a time: the INSERT's MAX(seq) + 1 and its commit are one step
    PRAGMAS = {
        "journal_mode": "wal",
        "synchronous": "normal",
        "foreign_keys": 1,
        "busy_timeout": 15000,
        "cache_size": -16000,
        "analysis_limit": 400,  # ANALYZE samples at most this many rows per index: milliseconds, not seconds
        "mmap_size": 256 * 1024 * 1024,  # readers share the OS page cache instead of warming a cache per thread
    }

    @contextlib.contextmanager
    def schema_lock(self, db: pw.Database) -> Iterator[None]:
        """One write transaction: a second process starting at once waits for it (busy_timeout), and
        the ~100 statements of a new schema are one commit, not one each (~25 ms of a first start)."""
        with db.atomic("IMMEDIATE"):
            yield

    def schema_stamp(self, db: pw.Database) -> int | None:
        return int(db.execute_sql("PRAGMA user_version").fetchone()[0])  # in the file's header: no table read

    def set_schema_stamp(self, db: pw.Database, stamp: int) -> None:
        db.execute_sql(f"PRAGMA user_version = {int(stamp)}")  # transactional, like the schema it vouches for

    def open(self, url: str, pool: int, wait: float) -> pw.Database:
        path = url.split("sqlite:///", 1)[-1]
        if not path or path == ":memory:":
            raise ValueError("swf-lite needs a SQLite file (its servers are threaded), not :memory:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)  # never world-readable, not even briefly
        os.close(fd)
        os.chmod(path, 0o600)
        return PooledSqliteDatabase(path, pragmas=self.PRAGMAS, max_connections=pool, timeout=wait,
                                    stale_timeout=STALE_SECONDS, check_same_thread=False)  # fmt: skip

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

    def clear(self, db: pw.Database, tables: list[str]) -> None:
        db.execute_sql("PRAGMA defer_foreign_keys = ON")
        for table in tables:
            db.execute_sql(f'DELETE FROM "{table}"')
        db.execute_sql("DELETE FROM sqlite_sequence")

    def before_close(self, db: pw.Database) -> None:
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def atomic(self, db: pw.Database) -> Any:
        return db.atomic("IMMEDIATE")


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 (the ``[postgres]`` extra). Several swf-lite processes may share
    one database: counters are single ``UPDATE ... RETURNING`` statements, sequenced rows are numbered
    under a transaction-scoped advisory lock, and every process hears every commit by LISTEN/NOTIFY
    (``swf_lite.db.notify``)."""

    name = "postgresql"
    placeholder = "%s"
    notifies = True
    LOCK_SCHEMA = 0x5357464C  # advisory lock keys ("SWFL" and "SWFL"+1): any constant unique to swf-lite
    LOCK_SEQUENCE = 0x5357464D

    def open(self, url: str, pool: int, wait: float) -> pw.Database:
        try:
            import psycopg  # noqa: F401 - checked here for a clear message
        except ImportError:
            raise ValueError("PostgreSQL needs psycopg 3: pip install 'swf-lite[postgres]'") from None
        from playhouse.db_url import parse  # it imports peewee's every extension: only for this

        params = parse(url)
        database = params.pop("database", None)
        if not database:
            raise ValueError(f"{url.split('@')[-1]}: name the database (postgresql://user:pass@host:port/NAME)")
        return PooledPostgresqlDatabase(database, max_connections=pool, timeout=wait, stale_timeout=STALE_SECONDS,
                                        prefer_psycopg3=True, **params)  # fmt: skip

    @contextlib.contextmanager
    def schema_lock(self, db: pw.Database) -> Iterator[None]:
        db.execute_sql("SELECT pg_advisory_lock(%s)", (self.LOCK_SCHEMA,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (self.LOCK_SCHEMA,))

    def lock_sequence(self, db: pw.Database, table: str) -> None:
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_SEQUENCE,))

    def guard(self, db: pw.Database) -> Any:
        return db.atomic()  # a savepoint inside a transaction: a failed statement aborts only it

    def next_seq(self, table: str) -> str:
        return f'(SELECT COALESCE(MAX("seq"), 0) + 1 FROM "{table}")'

    def backfill_seq(self, db: pw.Database, table: str) -> None:
        db.execute_sql(f'UPDATE "{table}" AS t SET "seq" = n.n FROM (SELECT ctid, ROW_NUMBER() OVER (ORDER BY ctid) '
                       f'AS n FROM "{table}") AS n WHERE t.ctid = n.ctid AND t."seq" IS NULL')  # fmt: skip

    def minute(self, expr: str) -> str:
        return f"to_char({expr}, 'YYYY-MM-DD HH24:MI')"

    def clear(self, db: pw.Database, tables: list[str]) -> None:
        quoted = ", ".join(f'"{t}"' for t in tables)
        db.execute_sql(f"TRUNCATE {quoted} RESTART IDENTITY")  # one statement: foreign keys need no order


def dialect_for(url: str) -> Dialect:
    """The dialect of a database URL, or a ValueError that says what is supported."""
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return SQLiteDialect()
    if scheme in ("postgresql", "postgres"):
        return PostgresDialect()
    raise ValueError(f"unsupported database {scheme!r}: swf-lite runs on SQLite (sqlite:///PATH) or PostgreSQL "
                     "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)")  # fmt: skip
