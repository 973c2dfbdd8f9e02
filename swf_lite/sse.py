"""The live stream ``GET /api/messages/stream/`` and its status ``GET /api/messages/stream/status/``.

Flow: ``POST /api/workflow-messages/`` stores a row; the create hook registered here turns it
into an :class:`~swf_lite.events.Event` (sequence number = the row's SQLite rowid) and publishes
it on the in-memory :class:`~swf_lite.events.Bus`. Each stream holds one cheroot worker thread
running a generator that moves frames from its bounded queue to the socket; cheroot writes and
flushes every yielded chunk at once (chunked transfer encoding), so each frame leaves immediately.

Database use stays off the streaming path: at connect one subscriber-row insert and, with
``Last-Event-ID``, one bounded replay query; at disconnect one update of that row. Nothing per event.

Authentication: ``Authorization: Token``, or the browser session cookie that
``POST /_swf_lite/session/`` sets (an ``EventSource`` cannot send an Authorization header).
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import bottle
import peewee as pw

from swf_lite import events, fields
from swf_lite.api.http import ApiError, json_response, require_token_or_session
from swf_lite.catalog import BY_NAME
from swf_lite.timefmt import iso, utcnow

log = logging.getLogger("swf_lite.sse")

STREAM_PATH = "/api/messages/stream/"
STATUS_PATH = "/api/messages/stream/status/"
MESSAGES = "workflow-messages"
SUBSCRIBERS = "subscribers"
POLL = 0.25  # longest a stream waits without looking at ctx.stopping
RETRY_AFTER = "5"  # seconds, for the 503 when every stream slot is taken

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def mount(app: bottle.Bottle, ctx) -> None:
    """Create the bus, register the stream routes, the publish hook and the reset hook."""
    bus = events.Bus(ctx.settings.sse_max_clients, ctx.settings.sse_queue, ctx.stopping)
    ctx.bus = bus
    stream = Stream(ctx, bus)
    app.route(STREAM_PATH, "GET", stream.open)
    app.route(STATUS_PATH, "GET", stream.status)
    ctx.on_create.setdefault(MESSAGES, []).append(stream.publish)
    ctx.on_reset.append(stream.after_reset)
    stream.close_stale_rows()


class Stream:
    """Handlers and hooks of the live stream over one bus."""

    def __init__(self, ctx, bus: events.Bus):
        self.ctx = ctx
        self.bus = bus
        self.settings = ctx.settings
        self.store = ctx.store
        self.rows = BY_NAME[SUBSCRIBERS]

    # -- publishing (called inside the POST's write transaction) -------------------------------

    def publish(self, _resource, message: dict[str, Any], rowid: int) -> None:
        """Create hook for workflow messages. Never raises: a broken publish must not undo the POST."""
        try:
            self.bus.publish(events.message_event(message, rowid))
        except Exception:  # noqa: BLE001
            log.exception("publishing message %s to the live stream failed", message.get("message_id"))

    # -- the stream ----------------------------------------------------------------------------

    def open(self):
        require_token_or_session(self.store)
        if self.ctx.stopping.is_set():
            raise ApiError(503, "The server is shutting down.", {"Retry-After": RETRY_AFTER})
        request = bottle.request
        filters = events.Filters.from_query(request.query.getunicode)
        last_id = _event_id(request.get_header("Last-Event-ID"))
        if last_id is None:
            last_id = _event_id(request.query.getunicode("last_event_id"))
        client_id = str(uuid.uuid4())
        try:
            sub = self.bus.subscribe(client_id, filters)  # first: nothing published from now on is missed
        except events.BusFull:
            raise ApiError(503, f"Too many stream clients (at most {self.bus.max_clients}); retry later.",
                           {"Retry-After": RETRY_AFTER}) from None  # fmt: skip
        try:
            replay = self._replay(last_id, filters) if last_id is not None else []
            if replay:
                sub.set_skip_upto(replay[-1].id)  # the live queue may hold some of these too
            self._add_row(sub, request.environ)
        except BaseException:
            self.bus.unsubscribe(sub)
            raise
        log.info("stream client %s connected (filters %s, last id %s, %d replayed)",
                 client_id, filters.public(), last_id, len(replay))  # fmt: skip
        for name, value in HEADERS.items():
            bottle.response.set_header(name, value)
        return self._frames(sub, replay)

    def _frames(self, sub: events.Subscriber, replay: list[events.Event]) -> Iterator[bytes]:
        """The response body. Bottle takes the first frame at once; cheroot flushes every chunk."""
        stopping = self.ctx.stopping
        heartbeat = self.settings.sse_heartbeat
        try:
            yield events.frame("connected", {"client_id": sub.client_id, "status": "connected"})
            for event in replay:
                yield event.frame
                sub.sent += 1
            last_write = time.monotonic()
            while not stopping.is_set():
                idle = time.monotonic() - last_write
                if idle >= heartbeat:
                    yield events.frame("heartbeat", {"timestamp": time.time()})  # a dead client fails here
                    last_write = time.monotonic()
                    continue
                event = sub.get(min(POLL, heartbeat - idle))
                if event is not None:
                    yield event.frame
                    sub.sent += 1
                    last_write = time.monotonic()
        finally:
            # GeneratorExit (client gone, cheroot closed us), a failed write, or shutdown.
            self.bus.unsubscribe(sub)
            self._close_row(sub)
            log.info("stream client %s disconnected (sent %d, dropped %d)", sub.client_id, sub.sent, sub.dropped)

    def _replay(self, last_id: int, filters: events.Filters) -> list[events.Event]:
        """Stored messages after ``last_id`` (the newest ``sse_replay`` of them) that pass the filters.

        Runs in a write transaction: the publish hook runs inside the POST's transaction, so a
        message published just before we subscribed may not be committed yet; BEGIN IMMEDIATE
        waits for that writer, after which every message published before our subscription is
        visible here and every later one is in our queue.
        """
        if not self.store.is_sqlite:
            log.warning("replay needs SQLite rowids; Last-Event-ID ignored on %s", self.store.url.split(":", 1)[0])
            return []
        r = BY_NAME[MESSAGES]
        model = self.store.model(r)
        rowid = pw.SQL("rowid")
        self.store.connect()
        with self.store.atomic():
            rows = list(model.select(rowid.alias("_seq"), *model._meta.sorted_fields).where(rowid > last_id)
                        .order_by(rowid.desc()).limit(self.settings.sse_replay).dicts())  # fmt: skip
        if len(rows) == self.settings.sse_replay:
            log.warning("replay after id %s truncated to the newest %d messages", last_id, len(rows))
        return events.replay_events(((row.pop("_seq"), fields.represent(r, row)) for row in rows), filters)

    # -- status --------------------------------------------------------------------------------

    def status(self):
        require_token_or_session(self.store)
        stats = self.bus.stats()
        stats["heartbeat_seconds"] = self.settings.sse_heartbeat
        stats["replay_limit"] = self.settings.sse_replay
        return json_response(stats)

    # -- subscriber rows (connect, disconnect, reset, start-up) ---------------------------------

    def _add_row(self, sub: events.Subscriber, environ: dict[str, Any] | None = None) -> None:
        """The subscriber row ``sse_<8>`` of a new client (reused environ facts after a reset)."""
        if environ is not None:
            ip = _client_ip(environ)
            sub.info.update(client_ip=ip, client_location=_location(ip, environ))
        ip = sub.info.get("client_ip")
        now = utcnow()
        data = {
            "subscriber_name": f"sse_{sub.client_id[:8]}",
            "description": f"SSE client from {ip or 'unknown address'}",
            "delivery_type": "sse",
            "is_active": True,
            "client_ip": ip,
            "client_location": sub.info.get("client_location", ""),
            "connected_at": iso(sub.connected_at),
            "last_activity": iso(now),
            "message_filters": sub.filters.public(),
        }
        api = self.ctx.resources
        try:
            self.store.connect()
            values = api.clean(self.rows, data, creating=True)
            with self.store.atomic():
                out = api.save_new(self.rows, values)
        except Exception:  # noqa: BLE001 - the row is bookkeeping; the stream works without it
            log.exception("could not record stream client %s as a subscriber", sub.client_id)
            return
        sub.info.update(subscriber_name=out["subscriber_name"], subscriber_id=out["subscriber_id"])

    def _close_row(self, sub: events.Subscriber) -> None:
        pk = sub.info.get("subscriber_id")
        if pk is None:
            return
        now = utcnow()
        values = {"is_active": False, "disconnected_at": now, "last_activity": now, "messages_sent": sub.sent,
                  "messages_dropped": sub.dropped, "messages_received": sub.queued}  # fmt: skip
        values.update({f.name: now for f in self.rows.fields if f.auto == "now"})  # updated_at
        try:
            self.store.connect()
            with self.store.atomic():
                self.store.update(self.rows, pk, values)
        except Exception:  # noqa: BLE001
            log.exception("could not record the disconnect of stream client %s", sub.client_id)

    def after_reset(self) -> None:
        """Reset hook: empty every stream buffer (sequence numbers restart) and re-create the
        subscriber rows of clients still connected (the reset deleted them)."""
        self.bus.clear()
        for sub in self.bus.subscribers:
            if sub.info.pop("subscriber_id", None) is not None:
                self._add_row(sub)

    def close_stale_rows(self) -> None:
        """At start-up no stream is open: rows a previous process left active are closed."""
        model = self.store.model(self.rows)
        try:
            with self.store.db.connection_context(), self.store.atomic():
                model.update(is_active=False, disconnected_at=utcnow()).where(
                    (model.delivery_type == "sse") & (model.is_active == True)  # noqa: E712 - peewee expression
                ).execute()
        except Exception:  # noqa: BLE001
            log.exception("could not close stale stream subscriber rows")


def _event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # a rowid fits SQLite's 64-bit integer
        return None
    return int(raw)


def _client_ip(environ: dict[str, Any]) -> str | None:
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    candidate = forwarded.split(",")[0].strip() if forwarded else environ.get("REMOTE_ADDR")
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def _location(ip: str | None, environ: dict[str, Any]) -> str:
    """What the real monitor records: a client-sent header, else a rough guess from the address."""
    given = environ.get("HTTP_X_CLIENT_LOCATION", "").strip()
    if given:
        return given[:255]
    if not ip:
        return ""
    addr = ipaddress.ip_address(ip)
    if addr.is_loopback:
        return "Local"
    if addr.is_private:
        return "Internal"
    return "Remote"
