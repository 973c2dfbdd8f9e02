"""Changes across processes: several swf-lite processes on one PostgreSQL database act as one monitor.

Every committed change is announced with ``pg_notify`` inside its own transaction, and every process
— the writer included — publishes to its bus only what it hears on ``LISTEN``. PostgreSQL delivers
notifications at commit, in commit order, to every listener, so all processes see the same changes
in the same order; for workflow messages that is ``seq`` order (they are numbered under a lock held
to the commit), which is what stream replay by ``Last-Event-ID`` relies on, whichever process a
client reconnects to. No home-made channel: the database is the channel.

A payload that would not fit NOTIFY's 8,000 bytes travels without its row; the listener reads the
row back by key. While the listening connection is down (database restart) changes are missed by
this process's streams; clients that reconnect with ``Last-Event-ID`` get the stored messages
replayed. SQLite has no such channel: there a process publishes its own commits directly.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from swf_lite.events import Bus, Change

log = logging.getLogger("swf_lite.feed")

CHANNEL = "swf_lite_changes"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses NOTIFY payloads of 8,000 or more
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # reconnect backoff of the listener


class Feed:
    """Announce committed changes with NOTIFY and publish what LISTEN hears on the local bus."""

    def __init__(self, url: str, bus: Bus, reload: Callable[[str, Any], dict[str, Any] | None],
                 on_remote_reset: Callable[[], None] | None = None):  # fmt: skip
        self.url = url
        self.bus = bus
        self.reload = reload  # (resource, pk) -> the row as clients read it, for payloads sent without it
        self.on_remote_reset = on_remote_reset
        self.origin = uuid.uuid4().hex[:12]  # this process, in every payload it sends
        self.ready = threading.Event()
        self.heard = 0
        self._stop = threading.Event()
        self._syncs: dict[str, threading.Event] = {}
        self._thread: threading.Thread | None = None

    # -- sending (inside the writer's transaction) ----------------------------------------------

    def notify(self, db: Any, changes: Iterable[Change]) -> None:
        for change in changes:
            change.origin = self.origin
            db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, self.payload(change)))

    def payload(self, change: Change) -> str:
        data = {"o": self.origin, "op": change.op, "r": change.resource, "pk": change.pk, "seq": change.seq,
                "row": change.row}  # fmt: skip
        text = json.dumps(data, separators=(",", ":"), default=str)
        if len(text.encode()) > MAX_PAYLOAD:
            data.update(row=None, reload=True)
            text = json.dumps(data, separators=(",", ":"), default=str)
        return text

    # -- hearing ---------------------------------------------------------------------------------

    def sync(self, db: Any, timeout: float = 5.0) -> bool:
        """Wait until this process has heard every change committed before the call (a marker sent
        now arrives after them): e.g. a test reading the bus right after a write."""
        token = uuid.uuid4().hex
        heard = self._syncs[token] = threading.Event()
        try:
            db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({"sync": token})))
            return heard.wait(timeout)
        finally:
            self._syncs.pop(token, None)

    def handle(self, text: str) -> None:
        """Publish one heard payload on the local bus."""
        data = json.loads(text)
        if "sync" in data:
            marker = self._syncs.get(data["sync"])
            if marker is not None:
                marker.set()
            return
        row = data.get("row")
        if data.get("reload") and data["pk"] is not None and data["op"] != "delete":
            row = self.reload(data["r"], data["pk"])
        change = Change(data["op"], data["r"], data["pk"], row, data.get("seq"))
        change.origin = data.get("o") or ""
        self.heard += 1
        self.bus.publish(change)
        if change.op == "reset" and change.origin != self.origin and self.on_remote_reset:
            self.on_remote_reset()

    def start(self, timeout: float = 10.0) -> Feed:
        """Start listening; returns once LISTEN is in place (changes committed later are heard)."""
        self._thread = threading.Thread(target=self._run, name="swf-lite-feed", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError(f"the change feed could not LISTEN within {timeout:g} s")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        log.warning("change feed: listening again")
                    failures = 0
                    self.ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.25):
                            try:
                                self.handle(note.payload)
                            except Exception:  # noqa: BLE001 - one bad payload must not stop the feed
                                log.exception("change feed: cannot publish %.200s", note.payload)
            except psycopg.Error as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("change feed: %s; listening again in %g s", str(exc).strip(), delay)
                self._stop.wait(delay)
