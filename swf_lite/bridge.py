"""The ActiveMQ bridge (``--stomp host:port``, the optional extra ``swf-lite[stomp]``).

One STOMP connection to the broker the agents use, subscribed to their topic (``/topic/epictopic``):

* **Broker -> swf-lite.** Every message an agent sends there is stored as a workflow message the way
  the real monitor's ActiveMQ listener stores it (:func:`message_values`), through
  :meth:`Service.create`: the run-lifecycle transition commits with it and the stored message
  reaches the stream (and every other door) like an HTTP-posted one. A body with ``agent_name`` and
  ``status`` is an agent heartbeat, as in the real listener. Stored by a thread of its own
  (``swf-lite-stomp-store``) fed by a bounded queue from the STOMP receiver.
* **swf-lite -> broker.** Every workflow message created any other way (``POST
  /api/workflow-messages/``, pages, tools) is published to the broker so broker-driven agents see it:
  a :class:`~swf_lite.events.Bus` subscriber (bounded, drop-oldest) feeds the publisher thread, so a
  request never waits for the broker. What a bridge stored from the broker (``message_metadata.source``
  ``activemq``) is never published back; with PostgreSQL a process publishes only its own commits.
* **No echo.** What swf-lite publishes carries the header ``swf_lite_origin`` (this process's
  instance name) and no swf-lite ever stores a message carrying it: the swf-lite that published it
  stored it first.
* **Exactly once with several processes.** Processes sharing one database each receive every
  broker message (a topic). Each stores it in one transaction together with a row keyed by the
  broker's ``message-id`` header in :data:`CLAIM_TABLE` (``INSERT ... ON CONFLICT DO NOTHING``,
  SQLite and PostgreSQL alike): the process whose row goes in stores the message; the others find
  the key taken and skip it. A message without a ``message-id`` (no ActiveMQ/Artemis broker sends
  one) is stored by every process. Keys older than :data:`CLAIM_TTL` are pruned.
* **Reconnects** with capped exponential backoff (plus jitter) whenever the broker goes away; HTTP
  traffic is untouched meanwhile, and messages posted then are published once it is back (up to
  ``--stomp-buffer`` of them; older ones are dropped and counted).

Only the server imports this module, and only with ``--stomp``: stomp.py stays optional.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import peewee as pw
import stomp  # the optional extra: pip install 'swf-lite[stomp]'

from swf_lite import timefmt
from swf_lite.catalog import BY_NAME
from swf_lite.context import Context
from swf_lite.errors import Invalid
from swf_lite.events import MESSAGES as MESSAGES_NAME
from swf_lite.events import Change, Event, Subscriber

log = logging.getLogger("swf_lite.bridge")

MESSAGES = BY_NAME[MESSAGES_NAME]
WORKFLOWS = BY_NAME["workflows"]
ORIGIN = "swf_lite_origin"  # header on every message swf-lite publishes (value: the instance name)
MESSAGE_ID = "swf_lite_message_id"  # header: the stored message's message_id
SOURCE = "activemq"  # message_metadata.source of what a bridge stored from the broker
CLAIM_TABLE = "swf_broker_claim"  # broker message-id -> the process that stored it
CLAIM_TTL = 24 * 3600.0  # seconds a claimed message-id is kept (every process sees a message within this)
PRUNE_EVERY = 3600.0
BACKOFF_FIRST = 0.5  # seconds before the first reconnect attempt; doubles up to BACKOFF_MAX
BACKOFF_MAX = 30.0
CONNECT_TIMEOUT = 10.0  # TCP connect, then CONNECTED, then the subscription's RECEIPT, each
HEARTBEATS = (10000, 10000)  # ms: a broker that stops answering is noticed within ~15 s
INBOX_SIZE = 10000  # frames received but not yet stored (the receiver waits beyond that)
DRAIN = 2.0  # seconds a stop gives the store thread to store what was already received
TEXT_FIELDS = ("sender_agent", "recipient_agent", "namespace", "execution_id", "run_id", "queue_name")
# stored field -> body key, for publishing: what a broker-driven agent reads (swf-common-lib's BaseAgent)
BODY_KEYS = (("msg_type", "message_type"), ("sender", "sender_agent"), ("recipient", "recipient_agent"),
             ("namespace", "namespace"), ("run_id", "run_id"), ("execution_id", "execution_id"))  # fmt: skip


def claim_model(db: pw.Database) -> Any:
    """The claims table's model on ``db`` (built per store, like the resources' models)."""

    class BrokerClaim(pw.Model):
        message_id = pw.CharField(max_length=255, primary_key=True)
        instance = pw.CharField(max_length=255)
        claimed_at = pw.DoubleField(index=True)  # Unix time

        class Meta:
            database = db
            table_name = CLAIM_TABLE

    return BrokerClaim


def destination_of(topic: str) -> str:
    """A STOMP destination: ``/topic/<name>`` for a bare name, an explicit ``/queue/...`` or
    ``/topic/...`` as it is."""
    return topic if topic.startswith("/") else f"/topic/{topic}"


def _text(value: Any, max_length: int | None) -> str | None:
    """A body value for a text column, as Django's CharField takes it: scalars as text (cut to the
    column's size), nothing for null, blank or structured values."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value)
    if not text.strip():
        return None
    return text[:max_length] if max_length else text


def message_values(data: Mapping[str, Any], destination: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow message the real monitor's listener stores for a broker message with JSON body
    ``data`` received on ``destination``: the body's ``msg_type``, ``sender`` (else ``processed_by``),
    ``recipient``, ``namespace``, ``execution_id``, ``run_id``; the destination as ``queue_name``;
    the whole body as ``message_content``; ``is_successful`` true; sent now."""
    size = {f.name: f.max_length for f in MESSAGES.fields}
    raw = {
        "sender_agent": data.get("sender") if data.get("sender") is not None else data.get("processed_by"),
        "recipient_agent": data.get("recipient"),
        "namespace": data.get("namespace"),
        "execution_id": data.get("execution_id"),
        "run_id": data.get("run_id"),
        "queue_name": destination,
    }
    values: dict[str, Any] = {name: _text(raw[name], size.get(name)) for name in TEXT_FIELDS}
    values.update(message_type=_text(data.get("msg_type"), size.get("message_type")), message_content=dict(data),
                  message_metadata=dict(metadata), is_successful=True)  # fmt: skip
    return values


def from_broker(message: Mapping[str, Any]) -> bool:
    """Whether a stored message is one a bridge took from a broker (never published back)."""
    meta = message.get("message_metadata")
    return isinstance(meta, dict) and meta.get("source") == SOURCE and "bridge" in meta


def broker_body(message: Mapping[str, Any]) -> dict[str, Any]:
    """What swf-lite publishes for a stored message (as clients read it): its ``message_content``
    (an object; anything else under ``message_content``) with ``msg_type``, ``sender``, ``recipient``,
    ``namespace``, ``run_id`` and ``execution_id`` filled in from the message's own fields where the
    content has none: the inverse of :func:`message_values`."""
    content = message.get("message_content")
    body = dict(content) if isinstance(content, dict) else {} if content is None else {"message_content": content}
    for key, name in BODY_KEYS:
        if body.get(key) is None and message.get(name) is not None:
            body[key] = message[name]
    return body


class _Listener(stomp.ConnectionListener):
    """One connection's callbacks (stomp.py's receiver thread) into the bridge."""

    def __init__(self, bridge: Bridge, receipt: str) -> None:
        self.bridge = bridge
        self.receipt = receipt
        self.connected = threading.Event()  # CONNECTED arrived
        self.subscribed = threading.Event()  # the subscription's RECEIPT arrived
        self.closed = threading.Event()  # the connection is gone (or refused us)
        self.error = ""

    def on_connected(self, frame: Any) -> None:
        self.connected.set()

    def on_receipt(self, frame: Any) -> None:
        if frame.headers.get("receipt-id") == self.receipt:
            self.subscribed.set()

    def on_error(self, frame: Any) -> None:
        self.error = str(frame.headers.get("message") or frame.body or "ERROR frame")[:500]
        log.warning("broker error: %s", self.error)

    def on_disconnected(self) -> None:
        self.closed.set()

    def on_heartbeat_timeout(self) -> None:
        self.error = "broker heartbeat timed out"
        self.closed.set()

    def on_message(self, frame: Any) -> None:
        self.bridge.receive(frame)


class Bridge:
    """The bridge of one swf-lite process: :meth:`start` returns at once (after at most ``wait``
    seconds for the first connection); :meth:`stop` ends its three threads within a few seconds."""

    def __init__(self, ctx: Context) -> None:
        s = ctx.settings
        address = s.stomp_address
        if address is None:
            raise ValueError("the bridge needs --stomp HOST:PORT")
        self.ctx = ctx
        self.host, self.port = address
        self.destination = destination_of(s.stomp_topic)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claims = claim_model(ctx.store.db)
        self._stop = threading.Event()
        self._drain_until = 0.0  # set by stop()
        self._attempts = 0
        self._up = threading.Event()  # connected and subscribed
        self._tried = threading.Event()  # the first connection attempt has finished (either way)
        self._conn: Any = None
        self._lock = threading.Lock()  # guards _conn
        self._inbox: queue.Queue[Any] = queue.Queue(INBOX_SIZE)
        self._threads: list[threading.Thread] = []
        self._sub: Subscriber | None = None
        self.counts = {"received": 0, "stored": 0, "heartbeats": 0, "duplicates": 0, "own": 0, "ignored": 0,
                       "rejected": 0, "published": 0, "connections": 0}  # fmt: skip
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, wait: float = 5.0) -> Bridge:
        """Create the claims table, subscribe to the bus, start the threads; wait up to ``wait``
        seconds for the first connection attempt (a broker that is down is retried in the background)."""
        store = self.ctx.store
        with store.db.connection_context(), store.dialect.schema_lock(store.db):  # two processes starting at once
            self.claims.create_table(safe=True)
        self._sub = self.ctx.bus.subscribe(f"stomp-bridge-{self.instance}", view=self._view, kind="bridge")
        self._sub.maxlen = self.ctx.settings.stomp_buffer
        self._threads = [threading.Thread(target=target, name=name, daemon=True) for target, name in (
            (self._connection_loop, "swf-lite-stomp"), (self._store_loop, "swf-lite-stomp-store"),
            (self._publish_loop, "swf-lite-stomp-publish"))]  # fmt: skip
        for t in self._threads:
            t.start()
        self._tried.wait(wait)
        if self._up.is_set():
            log.info("bridging %s on %s:%s (instance %s)", self.destination, self.host, self.port, self.instance)
        else:
            log.warning("broker %s:%s not reachable yet (%s); retrying in the background", self.host, self.port,
                        self.last_error or "no answer")  # fmt: skip
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Disconnect, store what was already received, stop publishing; bounded by ``timeout``."""
        self._drain_until = time.monotonic() + min(DRAIN, timeout)
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if self._sub is not None:
            self.ctx.bus.unsubscribe(self._sub)
        self._close(self._current())

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def status(self) -> dict[str, Any]:
        sub = self._sub
        return {"broker": f"{self.host}:{self.port}", "destination": self.destination, "instance": self.instance,
                "connected": self.connected, **self.counts, "publish_pending": sub.depth if sub else 0,
                "publish_dropped": sub.dropped if sub else 0, "last_error": self.last_error}  # fmt: skip

    # -- the connection ------------------------------------------------------------------------

    def _current(self) -> Any:
        with self._lock:
            return self._conn

    def _connection_loop(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            listener = None
            try:
                listener = self._connect()
                if self.counts["connections"] > 1:
                    log.info("reconnected to the broker %s:%s", self.host, self.port)
                delay = BACKOFF_FIRST
                self._tried.set()
                while not self._stop.is_set() and not listener.closed.wait(0.25):
                    pass
                if not self._stop.is_set():
                    self.last_error = listener.error or "connection lost"
                    log.warning("lost the broker %s:%s (%s); reconnecting", self.host, self.port, self.last_error)
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                self.last_error = (listener.error if listener and listener.error else "") or str(exc) or repr(exc)
                log.debug("connecting to %s:%s failed: %s", self.host, self.port, self.last_error)
            finally:
                self._up.clear()
                with self._lock:
                    conn, self._conn = self._conn, None
                self._close(conn)
                self._tried.set()
            if self._stop.wait(delay * random.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, BACKOFF_MAX)

    def _connect(self) -> _Listener:
        s = self.ctx.settings
        conn = stomp.Connection([(self.host, self.port)], heartbeats=HEARTBEATS, reconnect_attempts_max=1,
                                timeout=CONNECT_TIMEOUT, try_loopback_connect=False, vhost=self.host,
                                auto_content_length=False)  # fmt: skip  # as the agents connect
        if s.stomp_ssl:
            conn.transport.set_ssl(for_hosts=[(self.host, self.port)], ca_certs=str(s.stomp_ca_certs or "") or None,
                                   cert_file=str(s.stomp_cert_file or "") or None,
                                   key_file=str(s.stomp_key_file or "") or None,
                                   ssl_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
        receipt = f"swf-lite-subscribed-{uuid.uuid4().hex[:8]}"
        listener = _Listener(self, receipt)
        conn.set_listener("swf-lite", listener)
        with self._lock:
            self._conn = conn
        self._attempts += 1
        client_id = f"swf-lite-{self.instance}-{self._attempts}"  # ActiveMQ refuses a client-id still in use
        conn.connect(s.stomp_user, s.stomp_password, wait=False, headers={"client-id": client_id})
        self._await(listener, listener.connected, "CONNECTED")
        conn.subscribe(destination=self.destination, id="swf-lite", ack="auto", headers={"receipt": receipt})
        self._await(listener, listener.subscribed, "the subscription receipt")
        self.last_error = ""
        self.counts["connections"] += 1
        self._up.set()
        return listener

    def _await(self, listener: _Listener, event: threading.Event, what: str) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not event.wait(0.05):
            if listener.closed.is_set() or listener.error:
                raise ConnectionError(listener.error or "the broker closed the connection")
            if self._stop.is_set():
                raise ConnectionError("stopping")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {CONNECT_TIMEOUT:g} s")

    @staticmethod
    def _close(conn: Any) -> None:
        """Leave politely, then make sure the socket and stomp.py's receiver thread are gone."""
        if conn is None:
            return
        try:
            if conn.is_connected():
                conn.disconnect()
        except Exception:  # noqa: BLE001 - the socket is being closed anyway
            log.debug("DISCONNECT failed", exc_info=True)
        try:
            conn.transport.disconnect_socket()
        except Exception:  # noqa: BLE001
            log.debug("closing the broker socket failed", exc_info=True)

    # -- broker -> swf-lite --------------------------------------------------------------------

    def receive(self, frame: Any) -> None:
        """A MESSAGE frame (stomp.py's receiver thread): queued for the store thread; when the queue
        is full the receiver waits (the broker holds further messages) rather than drop one."""
        self.counts["received"] += 1
        while not self._stop.is_set():
            try:
                self._inbox.put(frame, timeout=0.25)
                return
            except queue.Full:
                continue

    def _store_loop(self) -> None:
        pruned = time.monotonic()
        try:
            while True:
                if self._stop.is_set() and time.monotonic() > self._drain_until:
                    if self._inbox.qsize():
                        log.warning("stopping: %d broker messages received but not stored", self._inbox.qsize())
                    return
                try:
                    frame = self._inbox.get(timeout=0.25)
                except queue.Empty:
                    self.ctx.store.release()  # idle: the connection goes back to the pool
                    if self._stop.is_set():
                        return  # everything received before the stop is stored
                    if time.monotonic() - pruned > PRUNE_EVERY:
                        pruned = time.monotonic()
                        self._prune()
                    continue
                try:
                    self.store(frame)
                except Exception:  # noqa: BLE001 - one bad message must not end the bridge
                    self.counts["rejected"] += 1
                    log.exception("storing a broker message failed")
        finally:
            self.ctx.store.release()

    def store(self, frame: Any) -> None:
        """Store one broker message (see the module's rules); counts what happened to it."""
        headers: Mapping[str, str] = frame.headers
        broker_id = headers.get("message-id")
        if ORIGIN in headers:
            self.counts["own"] += 1  # published by an swf-lite, which stored it before
            return
        try:
            data = json.loads(frame.body)
        except (TypeError, ValueError):
            data = None
        if not isinstance(data, dict):
            self.counts["ignored"] += 1
            log.warning("broker message %s is not a JSON object; not stored", broker_id)
            return
        heartbeat = "agent_name" in data and "status" in data  # the real listener's test, in its order
        if not heartbeat and not _text(data.get("msg_type"), None):
            self.counts["ignored"] += 1
            log.debug("broker message %s has no msg_type; not stored", broker_id)
            return
        service = self.ctx.service
        try:
            with service.transaction():
                if broker_id and not self._claim(broker_id):
                    self.counts["duplicates"] += 1  # another process sharing the database stored it
                    return
                if heartbeat:
                    service.heartbeat({"instance_name": data["agent_name"], "status": data["status"] or "UNKNOWN",
                                       "workflow_enabled": True})  # fmt: skip
                    self.counts["heartbeats"] += 1
                    return
                destination = headers.get("destination") or self.destination
                metadata = {"source": SOURCE, "destination": destination, "broker_message_id": broker_id,
                            "bridge": self.instance, "process_pid": os.getpid(),
                            "processed_at": timefmt.iso(timefmt.utcnow())}  # fmt: skip
                values = message_values(data, destination, metadata)
                workflow = self._workflow(values["run_id"], data.get("filename"))
                if workflow is not None:
                    values["workflow"] = workflow
                service.create(MESSAGES, values, lenient=True)
                self.counts["stored"] += 1
        except Invalid as exc:
            self.counts["rejected"] += 1
            log.warning("broker message %s not stored: %s", broker_id, exc.errors)

    def _claim(self, broker_id: str) -> bool:
        """Insert the claim of ``broker_id`` (inside the storing transaction); False if it was taken."""
        query = self.claims.insert(message_id=broker_id[:255], instance=self.instance, claimed_at=time.time())
        return int(self.ctx.store.db.execute(query.on_conflict_ignore()).rowcount) == 1

    def _prune(self) -> None:
        try:
            with self.ctx.service.transaction():
                self.claims.delete().where(self.claims.claimed_at < time.time() - CLAIM_TTL).execute()
        except pw.DatabaseError as exc:
            log.warning("pruning old broker claims failed: %s", exc)

    def _workflow(self, run_id: str | None, filename: Any) -> str | None:
        """The STF workflow the real listener links: the run's workflow of that file, else the run's first."""
        if not run_id:
            return None
        model = self.ctx.store.model(WORKFLOWS)
        query = model.select(model.workflow_id).where(model.run_id == run_id).order_by(model.workflow_id)
        row = query.where(model.filename == str(filename)).first() if filename else None
        row = row or query.first()
        return str(row.workflow_id) if row is not None else None

    # -- swf-lite -> broker --------------------------------------------------------------------

    def _view(self, change: Change) -> Event | None:
        """Workflow messages this process committed, except those a bridge took from a broker (their
        metadata says so). Processes sharing a PostgreSQL database hear each other's commits
        (:mod:`swf_lite.feed`; ``Change.origin`` names the committing process): those are the other
        process's to publish."""
        row = change.row
        if change.resource != MESSAGES_NAME or change.op != "create" or row is None:
            return None
        feed = getattr(self.ctx, "feed", None)
        if change.origin and (feed is None or change.origin != feed.origin):
            return None
        if from_broker(row):
            return None
        return Event(change.number or 1, "publish", dict(row), b"")

    def _publish_loop(self) -> None:
        sub = self._sub
        assert sub is not None, "start() subscribes before it starts the threads"
        pending: Event | None = None
        while not self._stop.is_set():
            if pending is None:
                pending = sub.get(0.25)
                if pending is None:
                    continue
            if not self._up.wait(0.25):
                continue
            conn = self._current()
            if conn is None:
                continue
            message = pending.data
            queue_name = str(message.get("queue_name") or "")
            destination = queue_name if queue_name.startswith(("/topic/", "/queue/")) else self.destination
            headers = {ORIGIN: self.instance, MESSAGE_ID: str(message.get("message_id") or "")}
            try:
                conn.send(destination=destination, body=json.dumps(broker_body(message), default=str),
                          headers=headers)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - kept and sent again once reconnected
                log.debug("publishing to the broker failed: %s", exc)
                self._stop.wait(0.25)
                continue
            self.counts["published"] += 1
            log.debug("published message %s to %s", headers[MESSAGE_ID], destination)
            pending = None
