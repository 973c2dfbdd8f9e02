"""The live streams, both consumers of the change feed (:mod:`swf_lite.events`):

- ``GET /api/messages/stream/``: workflow messages, in the real monitor's format (filters
  ``msg_types``, ``agents``, ``run_ids``, ``namespace``; replay after ``Last-Event-ID``), and its
  status ``GET /api/messages/stream/status/``;
- ``GET /api/changes/stream/``: every committed write as ``event: change`` with data
  ``{op, resource, pk, row}`` (filter ``resources=runs,stf-files``, ``ops=create``), for live pages.
  No token: like every read under ``/api/``, it carries only what any reader may list.

Each stream holds one cheroot worker thread running a generator that moves frames from its bounded
queue to the socket; cheroot writes and flushes every yielded chunk at once. The database is used
only at connect (the subscriber row, the bounded replay query) and at disconnect (closing the row);
while a stream runs its thread holds no database connection.

Authentication of the message stream (the real monitor's contract): ``Authorization: Token``, or a
browser session cookie (an ``EventSource`` cannot send an Authorization header).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import bottle

from swf_lite import events, fields
from swf_lite.api.http import ApiError, json_response, require_token_or_session
from swf_lite.catalog import BY_NAME
from swf_lite.config import HOLD_WORKER, PEER_CLOSED, PLAIN_SOCKET
from swf_lite.context import Context
from swf_lite.db.models import SEQ
from swf_lite.timefmt import iso, utcnow

log = logging.getLogger("swf_lite.sse")

STREAM_PATH = "/api/messages/stream/"
STATUS_PATH = "/api/messages/stream/status/"
CHANGES_PATH = "/api/changes/stream/"
MESSAGES = BY_NAME[events.MESSAGES]
SUBSCRIBERS = BY_NAME["subscribers"]
BURST = 63  # events queued meanwhile that go out with the one a stream woke for (one write)
POLL = 0.25  # longest a stream waits without looking at ctx.stopping and whether its client hung up
PAGE_HEARTBEAT = 5.0  # live pages: a proxy in between may hide a hang-up until a write fails
RETRY_AFTER = "5"  # seconds, for the 503 when every stream slot is taken

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def mount(app: bottle.Bottle, ctx: Context) -> None:
    """Register the stream routes and the reset hook; close rows a previous process left open."""
    stream = Stream(ctx)
    app.route(STREAM_PATH, "GET", stream.open)
    app.route(STATUS_PATH, "GET", stream.status)
    app.route(CHANGES_PATH, "GET", stream.open_changes)
    ctx.on_reset.append(stream.after_reset)
    try:
        ctx.service.deactivate_stream_subscribers()
    except Exception:  # noqa: BLE001 - bookkeeping only
        log.exception("could not close stale stream subscriber rows")


class Stream:
    """Handlers and hooks of the live streams over the context's bus."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.bus = ctx.bus
        self.settings = ctx.settings
        self.store = ctx.store
        self.service = ctx.service

    # -- opening -------------------------------------------------------------------------------

    def _subscribe(self, client_id: str, anonymous: bool = False, **kw: Any) -> events.Subscriber:
        if not anonymous:
            require_token_or_session(self.store)
        if self.ctx.stopping.is_set():
            raise ApiError(503, "The server is shutting down.", {"Retry-After": RETRY_AFTER})
        try:
            return self.bus.subscribe(client_id, **kw)  # first: nothing published from now on is missed
        except events.BusFull:
            limit = self.bus.limits.get(kw.get("kind", "messages"), self.bus.max_clients)
            raise ApiError(503, f"Too many stream clients (at most {limit}); retry later.",
                           {"Retry-After": RETRY_AFTER}) from None  # fmt: skip

    def open(self) -> Iterator[bytes]:
        request = bottle.request
        filters = events.Filters.from_query(request.query.getunicode)
        last_id = _event_id(request.get_header("Last-Event-ID"))
        if last_id is None:
            last_id = _event_id(request.query.getunicode("last_event_id"))
        client_id = str(uuid.uuid4())
        sub = self._subscribe(client_id, filters=filters)
        try:
            if last_id is None:
                # The bus publishes a moment after commit (its own thread; with several processes, after
                # LISTEN hears it): a message stored before this connect may still be on its way. Every
                # message published from now on is queued, and those stored by now have numbers <= this.
                sub.set_skip_upto(self._newest_seq())
            replay = self._replay(last_id, filters) if last_id is not None else []
            if last_id is not None:  # the live queue may hold some of these too
                sub.set_skip_upto(max([last_id, *(e.id for e in replay)]))
            self._add_row(sub, request.environ)
        except BaseException:
            self.bus.unsubscribe(sub)
            raise
        log.info("stream client %s connected (filters %s, last id %s, %d replayed)",
                 client_id, filters.public(), last_id, len(replay))  # fmt: skip
        return self._respond(sub, replay, on_close=self._close_row)

    def open_changes(self) -> Iterator[bytes]:
        query = bottle.request.query
        resources = events.split_list(query.getunicode("resources"))
        ops = events.split_list(query.getunicode("ops"))
        unknown = sorted((resources or set()) - {*BY_NAME, "persistent-state"})
        if unknown:
            raise ApiError(400, {"resources": [f"Unknown resource: {', '.join(unknown)}."]})
        client_id = str(uuid.uuid4())
        # Anonymous like every GET under /api/: it carries rows any reader may list (pages use it)
        sub = self._subscribe(client_id, anonymous=True, view=events.change_view(resources, ops), kind="changes")
        sub.info["resources"] = sorted(resources or ())
        log.info("change stream client %s connected (resources %s)", client_id, sub.info["resources"])
        return self._respond(sub, [], on_close=None, heartbeat=min(PAGE_HEARTBEAT, self.settings.sse_heartbeat))

    def _respond(self, sub: events.Subscriber, replay: list[events.Event], on_close: Any,
                 heartbeat: float | None = None) -> Iterator[bytes]:  # fmt: skip
        for name, value in HEADERS.items():
            bottle.response.set_header(name, value)
        self.store.release()  # a stream holds no database connection while it runs
        gone = bottle.request.environ.get(PEER_CLOSED) or _never  # the server's hang-up check
        hold = bottle.request.environ.get(HOLD_WORKER) or _ignore  # the pool keeps --threads free for requests
        direct = DirectWriter.for_environ(bottle.request.environ)
        return self._frames(sub, replay, on_close, heartbeat or self.settings.sse_heartbeat, gone, hold, direct)

    def _frames(self, sub: events.Subscriber, replay: list[events.Event], on_close: Any,
                heartbeat: float, gone: Callable[[], bool], hold: Callable[[bool], None],
                direct: DirectWriter | None = None) -> Iterator[bytes]:  # fmt: skip
        """The response body. Bottle takes the first frame at once; cheroot flushes every chunk."""
        stopping = self.ctx.stopping
        hold(True)  # this worker is the stream's until it ends
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
                live = sub.get(min(POLL, heartbeat - idle), direct.send if direct else None)
                rest = sub.carry()
                if rest and direct:  # the end of an event the publisher began to write: raw, before anything else
                    direct.send_all(rest)
                    last_write = time.monotonic()
                if live is not None:
                    burst = sub.ready(BURST)
                    yield live.frame + b"".join(e.frame for e in burst) if burst else live.frame
                    sub.sent += 1 + len(burst)
                    last_write = time.monotonic()
                elif gone():  # asked when idle: while events flow, writing to a gone client fails
                    break
        finally:
            # The client hung up (seen within POLL), GeneratorExit, a failed write, or shutdown.
            hold(False)
            self.bus.unsubscribe(sub)
            if on_close is not None:
                on_close(sub)
            log.info("stream client %s disconnected (sent %d, dropped %d)", sub.client_id, sub.sent, sub.dropped)

    def _newest_seq(self) -> int:
        self.store.connect()
        return self.store.newest_seq(MESSAGES)

    def _replay(self, last_id: int, filters: events.Filters) -> list[events.Event]:
        """Stored messages after ``last_id`` (the newest ``sse_replay`` of them) that pass the filters.

        We subscribed first and the service publishes only after commit, so every message published
        before our subscription is committed (and visible here), and every later one is queued (with
        several processes: every message not heard before the subscription is queued once heard)."""
        limit = self.settings.sse_replay
        self.store.connect()
        rows = self.store.after_seq(MESSAGES, last_id, limit)
        if len(rows) == limit:
            log.warning("replay after id %s truncated to the newest %d messages", last_id, len(rows))
        return events.replay_events(((row[SEQ], fields.represent(MESSAGES, row)) for row in rows), filters)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> bottle.HTTPResponse:
        require_token_or_session(self.store)
        stats = self.bus.stats()
        stats["heartbeat_seconds"] = self.settings.sse_heartbeat
        stats["replay_limit"] = self.settings.sse_replay
        stats["change_stream_clients"] = self.bus.stats("changes")["connected_clients"]
        return json_response(stats)

    # -- subscriber rows (connect, disconnect, reset) ------------------------------------------

    def _add_row(self, sub: events.Subscriber, environ: dict[str, Any] | None = None) -> None:
        """The subscriber row ``sse_<8>`` of a new client (reused environ facts after a reset)."""
        if environ is not None:
            ip = _client_ip(environ)
            sub.info.update(client_ip=ip, client_location=_location(ip, environ))
        ip = sub.info.get("client_ip")
        data = {
            "subscriber_name": f"sse_{sub.client_id[:8]}",
            "description": f"SSE client from {ip or 'unknown address'}",
            "delivery_type": "sse",
            "is_active": True,
            "client_ip": ip,
            "client_location": sub.info.get("client_location", ""),
            "connected_at": iso(sub.connected_at),
            "last_activity": iso(utcnow()),
            "message_filters": sub.filters.public(),
        }
        try:
            out = self.service.create(SUBSCRIBERS, data)
        except Exception:  # noqa: BLE001 - the row is bookkeeping; the stream works without it
            log.exception("could not record stream client %s as a subscriber", sub.client_id)
            return
        sub.info.update(subscriber_name=out["subscriber_name"], subscriber_id=out["subscriber_id"])

    def _close_row(self, sub: events.Subscriber) -> None:
        pk = sub.info.get("subscriber_id")
        if pk is None:
            return
        now = iso(utcnow())
        data = {"is_active": False, "disconnected_at": now, "last_activity": now, "messages_sent": sub.sent,
                "messages_dropped": sub.dropped, "messages_received": sub.queued}  # fmt: skip
        try:
            self.service.update(SUBSCRIBERS, pk, data, partial=True)
        except Exception:  # noqa: BLE001
            log.exception("could not record the disconnect of stream client %s", sub.client_id)
        finally:
            self.store.release()  # this thread streamed; it reconnects for its next request

    def after_reset(self) -> None:
        """Reset hook: re-create the subscriber rows of message-stream clients still connected (the
        reset deleted them; the reset change already emptied every stream buffer)."""
        for sub in self.bus.subscribers:
            if sub.info.pop("subscriber_id", None) is not None:
                self._add_row(sub)


class DirectWriter:
    """Writes event frames to a plain-HTTP stream's socket from the publishing thread (see
    :data:`swf_lite.events.Direct`), framed as cheroot frames what the stream yields: one HTTP/1.1
    chunk per write (an HTTP/1.0 response is the bytes as they are). The socket is non-blocking at
    the system level (it has a timeout), so ``os.write`` takes what fits and never waits."""

    def __init__(self, sock: socket.socket, chunked: bool):
        self.sock = sock
        self.fd = sock.fileno()
        self.chunked = chunked

    @classmethod
    def for_environ(cls, environ: dict[str, Any]) -> DirectWriter | None:
        sock = environ.get(PLAIN_SOCKET)
        if not isinstance(sock, socket.socket) or sock.gettimeout() in (None, 0.0):
            return None  # TLS (records, not bytes), or a socket whose blocking mode is not the usual one
        return cls(sock, chunked=environ.get("SERVER_PROTOCOL") == "HTTP/1.1")

    def send(self, frame: bytes) -> bytes | None:
        data = b"%X\r\n%s\r\n" % (len(frame), frame) if self.chunked else frame
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            return None
        return data[n:]

    def send_all(self, data: bytes) -> None:
        """Raw bytes, already framed, from the stream's own thread: waits like any write (the timeout)."""
        self.sock.sendall(data)


def _never() -> bool:
    return False


def _ignore(held: bool) -> None:
    """A server without the edge's worker pool (a test calling the app directly) needs no notice."""


def _event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # fits a 64-bit integer
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
        return str(given)[:255]
    if not ip:
        return ""
    addr = ipaddress.ip_address(ip)
    if addr.is_loopback:
        return "Local"
    if addr.is_private:
        return "Internal"
    return "Remote"
