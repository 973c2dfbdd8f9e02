"""The change feed: every committed write becomes one :class:`Change` on the in-memory :class:`Bus`.

The service hands a change to the bus after its transaction commits (in commit order); the bus
publishes it from a thread of its own (:meth:`Bus.publish_later`), so no writer waits for a stream
client's socket, and changes that piled up meanwhile reach each idle stream in one write. Consumers
subscribe with a *view*: a function that turns a change into the :class:`Event` that consumer
streams, or None to skip it. Two views exist: :func:`message_view` (the workflow-message stream,
the real monitor's wire format) and :func:`change_view` (the generic change stream live pages read).

Each :class:`Subscriber` owns a bounded queue: when it is full the oldest event is dropped and
counted, so a slow or stalled client never blocks the writer and never grows memory without bound.
An event is built and encoded once per change (memoized on the change) and shared by every
subscriber. No database access happens here.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from swf_lite import timefmt

log = logging.getLogger("swf_lite.events")

MESSAGES = "workflow-messages"  # the resource whose creations the message stream carries

# Keys of the stored message copied into the event data when message_content lacks them.
MESSAGE_DEFAULTS = ("msg_type", "sender_agent", "recipient_agent", "namespace", "run_id", "execution_id",
                    "queue_name", "sent_at")  # fmt: skip

# Characters JSON leaves unescaped but that line splitters (str.splitlines, which requests'
# iter_lines uses) treat as line ends: one SSE data line must stay one line.
_LINE_BREAKERS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})

FILTER_PARAMS = ("msg_types", "agents", "run_ids", "namespace")
OPS = ("create", "update", "delete", "upsert", "reset")


def one_line_json(obj: Any) -> str:
    """Compact, UTF-8-friendly JSON guaranteed to be a single line for any line splitter."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.translate(_LINE_BREAKERS)


def frame(name: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE frame: optional ``id:``, ``event:``, one ``data:`` line, blank line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {one_line_json(data)}\n\n".encode()


class Change:
    """One committed write: ``op`` (create, update, delete, upsert, reset) of ``resource`` row ``pk``;
    ``row`` is the row as clients read it (for a delete: as it was). ``seq`` is the storage-order
    number of sequenced resources; ``number`` is the bus's running count, set when published."""

    __slots__ = ("op", "resource", "pk", "row", "seq", "number", "origin", "_memo")

    def __init__(self, op: str, resource: str, pk: Any, row: Mapping[str, Any] | None, seq: int | None = None):
        self.op = op
        self.resource = resource
        self.pk = pk
        self.row = row
        self.seq = seq
        self.number = 0
        self.origin = ""  # the process that committed it, when several share a database (swf_lite.feed)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per change and key (publishing is serialized, so no lock is needed)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def public(self) -> dict[str, Any]:
        return {"op": self.op, "resource": self.resource, "pk": self.pk, "row": self.row}

    def __repr__(self) -> str:
        return f"Change({self.op!r}, {self.resource!r}, {self.pk!r}, seq={self.seq})"


@dataclass(frozen=True)
class Event:
    """What a stream sends for a change: its id, event name, data and encoded frame."""

    id: int
    name: str
    data: dict[str, Any]
    frame: bytes


View = Callable[[Change], Optional[Event]]  # evaluated at run time: no "X | None" on Python 3.9


def message_event(message: Mapping[str, Any], seq: int) -> Event:
    """The stream event for a stored workflow message (as returned to clients) with sequence ``seq``.

    data = ``message_content`` with the message's own fields filled in where the content has no
    (or a null) value; the event name is ``data.msg_type``, else ``message_type``, else ``message``.
    """
    content = message.get("message_content")
    if isinstance(content, dict):
        data = dict(content)
    elif content is None:
        data = {}
    else:
        data = {"message_content": content}
    for key in MESSAGE_DEFAULTS:
        if data.get(key) is None:
            data[key] = message.get("message_type" if key == "msg_type" else key)
    name = data.get("msg_type")
    name = str(name) if name not in (None, "") else "message"
    name = " ".join(name.splitlines()) or "message"  # an event name is one line too
    return Event(seq, name, data, frame(name, data, seq))


def split_list(raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    items = frozenset(part.strip() for part in raw.split(",") if part.strip())
    return items or None


@dataclass(frozen=True)
class Filters:
    """Message-stream filters; each given one must pass. ``None`` = not filtered."""

    msg_types: frozenset[str] | None = None
    agents: frozenset[str] | None = None
    run_ids: frozenset[str] | None = None
    namespace: frozenset[str] | None = None

    @classmethod
    def from_query(cls, get: Callable[[str], str | None]) -> Filters:
        """From query parameters (comma lists); ``get(name)`` returns the raw value or None."""
        return cls(**{name: split_list(get(name)) for name in FILTER_PARAMS})

    def matches(self, event: Event) -> bool:
        if self.msg_types is not None and event.name not in self.msg_types:
            return False
        data = event.data
        if self.agents is not None and not _in(data.get("processed_by"), self.agents):
            return False
        if self.run_ids is not None and not _in(data.get("run_id"), self.run_ids):
            return False
        if self.namespace is not None and not _in(data.get("namespace"), self.namespace):
            return False
        return True

    def public(self) -> dict[str, list[str]]:
        """The filters as the status endpoint shows them (only those given)."""
        return {name: sorted(v) for name in FILTER_PARAMS if (v := getattr(self, name)) is not None}


def _in(value: Any, allowed: frozenset[str]) -> bool:
    """Compared as strings, so run_id 100010 matches "100010"."""
    return value is not None and str(value) in allowed


def message_view(filters: Filters) -> View:
    """Creations of workflow messages, as the real monitor's stream sends them, filtered."""

    def view(change: Change) -> Event | None:
        if change.resource != MESSAGES or change.op != "create" or change.row is None:
            return None
        event: Event = change.memo("message", lambda: message_event(change.row or {}, change.seq or 0))
        return event if filters.matches(event) else None

    return view


def change_event(change: Change) -> Event:
    """The generic change stream's event: ``event: change``, data ``{op, resource, pk, row}``."""
    data = change.public()
    return Event(change.number, "change", data, frame("change", data, change.number))


def change_view(resources: frozenset[str] | None = None, ops: frozenset[str] | None = None) -> View:
    """Every change (or those of the given resources and ops), for live pages."""

    def view(change: Change) -> Event | None:
        if resources is not None and change.resource not in resources and change.op != "reset":
            return None
        if ops is not None and change.op not in ops:
            return None
        event: Event = change.memo("change", lambda: change_event(change))
        return event

    return view


# A stream's way to write an event frame straight to its client from the publishing thread, used only
# while the stream's own thread waits (so the two never write at once): sends what the socket takes
# without blocking and returns the rest of the wire bytes (b"" when all went), or None when nothing
# could be sent; raises OSError when the client is gone. Waking a stream thread per event cost
# ~0.2 ms of CPU per client (GIL hand-offs); the write itself is ~20 us.
Direct = Callable[[bytes], Optional[bytes]]


class Subscriber:
    """One stream client's bounded queue and counters (all guarded by its condition)."""

    def __init__(self, client_id: str, view: View, maxlen: int, kind: str = "messages",
                 filters: Filters | None = None):  # fmt: skip
        self.client_id = client_id
        self.view = view
        self.kind = kind  # "messages" or "changes": which stream it feeds
        self.filters = filters or Filters()
        self.maxlen = maxlen
        self.connected_at = timefmt.utcnow()
        self._queue: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self.queued = 0  # events accepted by the view and queued
        self.dropped = 0  # events pushed out of a full queue (oldest first)
        self.sent = 0  # frames written to the client (maintained by the stream)
        self.skip_upto = 0  # live events with id <= this were already sent by the replay
        self.info: dict[str, Any] = {}  # free-form facts for the status (subscriber row, address)
        self.sent_directly = 0  # of ``sent``: written by offer() itself (see Direct)
        self._direct: Direct | None = None  # set while the stream's thread waits in get()
        self._carry = b""  # the unsent end of a direct write: the stream's thread sends it next

    def offer(self, event: Event) -> None:
        """Queue ``event`` (or write it at once: see :meth:`offer_many`)."""
        self.offer_many([event])

    def offer_many(self, batch: list[Event]) -> None:
        """Queue the events of ``batch`` — or, while the stream waits idle with a :data:`Direct` sender,
        write them to the client at once, in one write; never blocks beyond the queue's own short lock."""
        with self._cond:
            direct = self._direct
            if direct is not None and not self._queue:
                fresh = [e for e in batch if e.id > self.skip_upto]  # the others were replayed already
                if not fresh:
                    return
                data = fresh[0].frame if len(fresh) == 1 else b"".join(e.frame for e in fresh)
                try:
                    rest = direct(data)
                except OSError:  # the client is gone: the stream's own write will find out
                    rest = None
                if rest is not None:
                    self.queued += len(fresh)
                    self.sent += len(fresh)
                    self.sent_directly += len(fresh)
                    if rest:  # the socket took part of it: the rest goes before anything else
                        self._carry = rest
                        self._direct = None
                        self._cond.notify()
                    return
                self._direct = None  # not writable now: queued, for the stream's thread
            for event in batch:
                if len(self._queue) >= self.maxlen:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(event)
            self.queued += len(batch)
            self._cond.notify()

    def get(self, timeout: float, direct: Direct | None = None) -> Event | None:
        """The next event, waiting at most ``timeout`` seconds; None if there is none (or a direct
        write left a :meth:`carry`). While it waits, events go out through ``direct`` if given."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._queue:
                    event = self._queue.popleft()
                    if event.id > self.skip_upto:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._carry:
                    return None
                self._direct = direct
                try:
                    self._cond.wait(remaining)
                finally:
                    self._direct = None

    def carry(self) -> bytes:
        """The unsent end of a direct write (taken: the caller sends it, raw), or b""."""
        with self._cond:
            rest, self._carry = self._carry, b""
        return rest

    def ready(self, limit: int) -> list[Event]:
        """Up to ``limit`` more events already queued, without waiting (written with the one just got:
        one socket write for a burst instead of one per event)."""
        out: list[Event] = []
        with self._cond:
            while self._queue and len(out) < limit:
                event = self._queue.popleft()
                if event.id > self.skip_upto:
                    out.append(event)
        return out

    def set_skip_upto(self, event_id: int) -> None:
        with self._cond:
            self.skip_upto = max(self.skip_upto, event_id)

    def clear(self) -> None:
        """Forget queued events and the replay watermark (after a reset sequence numbers restart)."""
        with self._cond:
            self._queue.clear()
            self.skip_upto = 0

    @property
    def depth(self) -> int:
        return len(self._queue)

    def stats(self) -> dict[str, Any]:
        return {"queue_depth": len(self._queue), "queue_size": self.maxlen, "queued": self.queued,
                "sent": self.sent, "dropped": self.dropped, "connected_at": timefmt.iso(self.connected_at),
                "filters": self.filters.public(), **self.info}  # fmt: skip


class BusFull(Exception):
    """Raised by :meth:`Bus.subscribe` when ``max_clients`` subscribers are connected."""


class Bus:
    """Publish/subscribe of changes over bounded per-subscriber queues.

    The subscriber set is copy-on-write: ``publish`` iterates an immutable snapshot without
    holding the bus lock, so subscribing and unsubscribing never wait for a publish.
    """

    LATER_LIMIT = 10_000  # changes waiting for the publishing thread before writers wait for it
    LATER_IDLE = 5.0  # seconds the publishing thread waits for more before it ends

    def __init__(self, max_clients: int, queue_size: int, stopping: threading.Event | None = None,
                 limits: Mapping[str, int] | None = None):  # fmt: skip
        self.max_clients = max_clients  # per kind of subscriber ("messages" by default); see limits
        self.limits = dict(limits or {})
        self.queue_size = queue_size
        self.stopping = stopping or threading.Event()
        self._lock = threading.Lock()
        self._subs: tuple[Subscriber, ...] = ()
        self.changes = 0  # changes published (the last change's number)
        self.published: collections.Counter[str] = collections.Counter()  # per resource
        self.delivered = 0  # (change, subscriber) pairs queued
        self.rejected = 0  # subscriptions refused because the bus was full
        self._later: collections.deque[Change] = collections.deque()  # for the publishing thread
        self._later_cond = threading.Condition(threading.Lock())
        self._publishing = False  # the publishing thread holds a batch it has not finished
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return not self.stopping.is_set()

    def subscribe(self, client_id: str, filters: Filters | None = None, view: View | None = None,
                  kind: str = "messages") -> Subscriber:  # fmt: skip
        """A new subscriber; without a view it receives the message stream, filtered."""
        filters = filters or Filters()
        sub = Subscriber(client_id, view or message_view(filters), self.queue_size, kind, filters)
        limit = self.limits.get(kind, self.max_clients)
        with self._lock:
            if sum(1 for s in self._subs if s.kind == kind) >= limit:
                self.rejected += 1
                raise BusFull(f"{limit} {kind} stream clients are already connected")
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, change: Change) -> int:
        """Queue ``change`` for every subscriber whose view accepts it; returns how many. Never blocks."""
        return self.publish_many([change])

    def publish_many(self, changes: Sequence[Change]) -> int:
        """Publish ``changes`` in order; each subscriber gets the events of a run of changes in one
        :meth:`Subscriber.offer_many` (one socket write for an idle stream). Returns the events queued."""
        n = 0
        run: list[Change] = []
        for change in changes:
            if change.op == "reset":  # it empties every queue: what came before goes first, on its own
                n += self._deliver(run) + self._deliver([change])
                run = []
            else:
                run.append(change)
        return n + self._deliver(run)

    def _deliver(self, changes: list[Change]) -> int:
        if not changes:
            return 0
        with self._lock:
            for change in changes:
                self.changes += 1
                change.number = self.changes
                self.published[change.resource] += 1
        if changes[0].op == "reset":
            self.clear()  # sequence numbers restart with the tables: nothing queued before is valid
        n = 0
        for sub in self._subs:
            batch = [event for event in map(sub.view, changes) if event is not None]
            if batch:
                sub.offer_many(batch)
                n += len(batch)
        with self._lock:
            self.delivered += n
        return n

    # -- publishing from the bus's own thread --------------------------------------------------

    def publish_later(self, changes: Sequence[Change]) -> None:
        """Publish ``changes`` from the bus's publishing thread, in the order of calls: a writer (who
        calls this in commit order) then never waits for subscribers' sockets, and changes committed
        meanwhile go to each stream in one write. With nobody subscribed and nothing waiting, at once."""
        if not changes:
            return
        with self._later_cond:
            if not self._subs and not self._later and not self._publishing:
                self.publish_many(changes)  # only counting: the writer need not wake a thread for it
                return
            while len(self._later) >= self.LATER_LIMIT and self._thread is not None:
                self._later_cond.wait(0.1)  # back-pressure: writers outran the publisher by far
            self._later.extend(changes)
            if self._thread is None:
                self._thread = threading.Thread(target=self._publish_loop, name="swf-lite-publisher", daemon=True)
                self._thread.start()
            self._later_cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every change given to :meth:`publish_later` is published; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._later_cond:
            while self._later or self._publishing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._later_cond.wait(remaining)
        return True

    def _publish_loop(self) -> None:
        """Publish batches until idle for ``LATER_IDLE`` seconds (the next write starts a new thread)."""
        while True:
            with self._later_cond:
                self._publishing = False
                self._later_cond.notify_all()  # flush() and writers held back wait for this
                if not self._later:
                    self._later_cond.wait(self.LATER_IDLE)
                if not self._later:
                    self._thread = None
                    return
                batch = list(self._later)
                self._later.clear()
                self._publishing = True
                self._later_cond.notify_all()
            try:
                self.publish_many(batch)
            except Exception:  # noqa: BLE001 - a broken view or subscriber must not stop the feed
                log.exception("could not publish %d changes", len(batch))

    def clear(self) -> None:
        """Empty every subscriber's queue (a reset change does it)."""
        for sub in self._subs:
            sub.clear()

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        return self._subs

    def __len__(self) -> int:
        return len(self._subs)

    def stats(self, kind: str = "messages") -> dict[str, Any]:
        """The message stream's status (``kind="changes"``: the change stream's)."""
        subs = [s for s in self._subs if s.kind == kind]
        return {
            "connected_clients": len(subs),
            "client_ids": [s.client_id for s in subs],
            "client_filters": {s.client_id: s.filters.public() for s in subs},
            "clients": {s.client_id: s.stats() for s in subs},
            "messages_published": self.published[MESSAGES] if kind == "messages" else self.changes,
            "messages_delivered": sum(s.queued for s in subs),
            "messages_dropped": sum(s.dropped for s in subs),
            "rejected_clients": self.rejected,
            "max_clients": self.limits.get(kind, self.max_clients),
            "queue_size": self.queue_size,
            "bus_running": self.running,
        }


def replay_events(rows: Iterable[tuple[int, Mapping[str, Any]]], filters: Filters) -> list[Event]:
    """Events for stored messages ``(seq, message)`` that pass ``filters``, in sequence order."""
    events = (message_event(message, seq) for seq, message in rows)
    return sorted((e for e in events if filters.matches(e)), key=lambda e: e.id)
