"""The connection edge: no worker thread is spent on a client until its request is ready to run.

cheroot hands every accepted connection straight to a worker, and its builtin TLS adapter shakes
hands inside the single accept loop (cheroot issue #748; the fix in PR #750 moves the handshake into
a worker, which still lets slow clients hold every worker). So one client that connects and sends
nothing stalls every HTTPS client, and a few dozen slow clients starve the pool. Here cheroot's
selector thread does the waiting instead, without ever blocking:

* accepted sockets are non-blocking; a TLS handshake advances whenever the client's bytes arrive;
* the request head, and a small sized body, are read into a buffer; only a complete request goes to
  a worker, its bytes pre-loaded into cheroot's reader. Idle keep-alive connections pass the same
  gate, so a slow next request holds no worker either;
* a client gets cheroot's ``timeout`` (10 s) for handshake, head and small body together — a
  started request that stalls gets a JSON 408 — and ``MAX_HEAD`` bytes of head (431 beyond);
* a connection closed after a refused request lingers: the edge reads and discards what the client
  still sends (bounded), so the client reads the JSON answer (e.g. 413) instead of a reset;
* cheroot's own protocol errors (malformed request line, bad headers, plain HTTP on the TLS port)
  are JSON like every other error;
* every request's environ carries ``PEER_CLOSED`` (a callable): a long response, such as a stream that
  writes only a heartbeat every 30 s, can ask whether its client has gone without writing to it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from cheroot import connections
from cheroot import server as cheroot_server
from cheroot.makefile import MakeFile
from cheroot.ssl import Adapter
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.workers import threadpool
from cheroot.wsgi import Server

from swf_lite.config import HOLD_WORKER, PEER_CLOSED, PLAIN_SOCKET

log = logging.getLogger("swf_lite.server")

MAX_HEAD = 64 * 1024  # request line + headers
MAX_EARLY_BODY = 64 * 1024  # sized bodies up to this are read before a worker is taken
MAX_PENDING = 1024  # connections waiting at the edge; beyond, new ones are closed at once
DRAIN_BYTES = 64 * 1024 * 1024  # what a lingering close discards at most
READ_SIZE = 64 * 1024

_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d{1,18})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_BODY_ON_DEMAND = re.compile(rb"^(transfer-encoding|expect)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_WAITING = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


def peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its side of ``sock`` (EOF or reset), without waiting and
    without consuming anything it sent: a readable socket is peeked at on the raw (never TLS) level."""
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):  # reset, or already closed here
        return True


def json_response(status: str, detail: str, protocol: str = "HTTP/1.1") -> bytes:
    """A complete JSON error response that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"{protocol} {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def head_verdict(buf: bytes | bytearray) -> str | None:
    """ "ready" when ``buf`` holds a whole request head (plus its body if that is sized and small),
    "too large" when the head exceeds ``MAX_HEAD``, None while more bytes are due."""
    start = len(buf) - len(buf.lstrip(b"\r\n"))  # empty lines before a request line are allowed
    end = _HEAD_END.search(buf, start)
    if end is None:
        return "too large" if len(buf) - start > MAX_HEAD else None
    head = bytes(buf[start : end.end()])
    if len(head) > MAX_HEAD:
        return "too large"
    if _BODY_ON_DEMAND.search(head):  # chunked, or the client waits for "100 Continue"
        return "ready"
    length = _CONTENT_LENGTH.search(head)
    if length is None or int(length.group(1)) > MAX_EARLY_BODY:
        return "ready"
    return "ready" if len(buf) - end.end() >= int(length.group(1)) else None


class Pending:
    """A connection the selector holds while its TLS handshake, its request head or its lingering
    close is in progress, until ``deadline``."""

    __slots__ = ("sock", "addr", "conn", "state", "buf", "env", "drained", "deadline")

    def __init__(self, sock: socket.socket, addr: Any, state: str, deadline: float,
                 conn: cheroot_server.HTTPConnection | None = None):  # fmt: skip
        self.sock = sock
        self.addr = addr
        self.conn = conn
        self.state = state  # "handshake" | "head" | "drain"
        self.buf = bytearray()
        self.env: dict[str, Any] = {}
        self.drained = 0
        self.deadline = deadline

    def close(self) -> None:
        if self.conn is not None:
            self.conn.linger_after_refusal = False  # type: ignore[attr-defined]
            with suppress(OSError):
                self.conn.close()
        else:
            with suppress(OSError):
                self.sock.close()


class EdgeConnections(connections.ConnectionManager):
    """cheroot's connection manager with the edge in front of the workers (see the module doc)."""

    server: EdgeServer
    _selector: Any  # cheroot's thread-safe selector (no type information)

    def __init__(self, srv: EdgeServer, context: ssl.SSLContext | None):
        super().__init__(srv)
        self.context = context

    # -- entry points: a new connection, a kept-alive one, a refused one ---------------------------

    def _from_server_socket(self, server_socket: socket.socket) -> None:
        try:
            sock, addr = server_socket.accept()
        except (socket.timeout, *_WAITING):
            return None
        except OSError as exc:  # e.g. out of file descriptors: say so, keep serving the others
            log.warning("accepting a connection failed: %s", exc)
            time.sleep(0.01)
            return None
        connections.prevent_socket_inheritance(sock)
        if len(self._selector) > MAX_PENDING:
            log.debug("%d connections already waiting; closing %s", MAX_PENDING, addr)
            sock.close()
            return None
        sock.setblocking(False)
        state = "head"
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            state = "handshake"
        self.advance(Pending(sock, addr, state, time.time() + self.server.timeout))
        return None

    def put(self, conn: cheroot_server.HTTPConnection) -> None:
        """A worker is done with a kept-alive connection: its next request passes the gate too
        (bytes the worker's reader already holds count as the start of that request)."""
        rfile: Any = conn.rfile
        addr = (conn.remote_addr, conn.remote_port)
        pending = Pending(conn.socket, addr, "head", time.time() + self.server.timeout, conn)
        pending.buf += rfile._read_buf[rfile._read_pos :]  # _pyio.BufferedReader's buffer (cf. has_data)
        rfile._read_buf, rfile._read_pos = b"", 0
        conn.socket.setblocking(False)
        if pending.buf or (isinstance(conn.socket, ssl.SSLSocket) and conn.socket.pending()):
            self.advance(pending)  # the next request is here already (pipelined)
        else:
            self._wait(pending)  # the usual case: the client is still reading our answer

    def linger(self, conn: cheroot_server.HTTPConnection) -> None:
        """Close ``conn`` after a refusal without resetting it: send FIN, then discard what the client
        still sends (up to ``DRAIN_BYTES`` or the idle timeout), so it reads our answer first."""
        sock = conn.socket
        with suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_WR)  # the raw socket: the answer is already sent
        sock.setblocking(False)
        addr = (conn.remote_addr, conn.remote_port)
        self.advance(Pending(sock, addr, "drain", time.time() + self.server.timeout, conn))

    def _expire(self, threshold: float) -> None:
        """Past its deadline a connection is closed; one that started a request is answered 408 first."""
        now = time.time()
        for fd, p in list(self._selector.connections):
            if isinstance(p, Pending) and p.deadline < now:
                self._selector.unregister(fd)
                if p.state == "head" and p.buf.strip():
                    self._answer(p, "408 Request Timeout", "The request did not arrive in time.")
                else:
                    p.close()
        self.server.requests.keep_up()  # a stream that started after the last request's put()

    # -- the state machine (selector thread, or the worker that hands a connection back) ----------

    def advance(self, p: Pending) -> None:
        """Move ``p`` on as far as its bytes allow, without blocking; then wait, dispatch or close."""
        try:
            if p.state == "handshake" and not self._handshake(p):
                return
            if p.state == "head":
                self._read_head(p)
            elif p.state == "drain":
                self._drain(p)
        except Exception:  # noqa: BLE001 - one broken connection must never stop the selector thread
            log.debug("connection from %s dropped at the edge", p.addr, exc_info=True)
            p.close()

    def _wait(self, p: Pending) -> None:
        self._selector.register(p.sock.fileno(), selectors.EVENT_READ, data=p)

    def _handshake(self, p: Pending) -> bool:
        sock: Any = p.sock
        try:
            sock.do_handshake()
        except _WAITING:
            self._wait(p)
            return False
        except ssl.SSLError as exc:
            if getattr(exc, "reason", "") == "HTTP_REQUEST":
                self._answer(p, "400 Bad Request", "This port speaks HTTPS; the request was plain HTTP.")
            else:
                log.debug("TLS handshake with %s failed: %s", p.addr, exc)
                p.close()
            return False
        except OSError:
            p.close()
            return False
        p.env = self.server.ssl_adapter.get_environ(sock) if self.server.ssl_adapter else {}
        p.state = "head"
        return True

    def _read_head(self, p: Pending) -> None:
        verdict = head_verdict(p.buf)
        while verdict is None:
            try:
                chunk = p.sock.recv(READ_SIZE)
            except _WAITING:
                break
            except OSError:  # includes ssl.SSLError: a reset or a broken TLS record
                p.close()
                return
            if not chunk:  # the client stopped sending: a whole head is answered (short body: 400)
                if _HEAD_END.search(p.buf):
                    self._dispatch(p)
                else:
                    p.close()
                return
            p.buf += chunk
            verdict = head_verdict(p.buf)
        if verdict == "ready":
            self._dispatch(p)
        elif verdict == "too large":
            self._answer(p, "431 Request Header Fields Too Large", f"The request head exceeds {MAX_HEAD} bytes.")
        else:
            self._wait(p)

    def _dispatch(self, p: Pending) -> None:
        """Hand a complete request to a worker: the connection blocks again (with cheroot's timeout)
        and its reader starts with the bytes read here."""
        srv = self.server
        conn = p.conn
        if conn is None:
            makefile = srv.ssl_adapter.makefile if self.context is not None and srv.ssl_adapter else MakeFile
            conn = srv.ConnectionClass(srv, p.sock, makefile)
            conn.remote_addr, conn.remote_port = p.addr[0], p.addr[1]
            conn.ssl_env = {**p.env, PEER_CLOSED: functools.partial(peer_closed, p.sock), HOLD_WORKER: hold_worker}
            if self.context is None:
                conn.ssl_env[PLAIN_SOCKET] = p.sock
        p.sock.settimeout(srv.timeout)
        rfile: Any = conn.rfile
        rfile._read_buf, rfile._read_pos = bytes(p.buf), 0
        conn.last_used = time.time()
        srv.process_conn(conn)

    def _answer(self, p: Pending, status: str, detail: str) -> None:
        """Refuse at the edge: send a JSON error on the raw socket, then linger."""
        with suppress(OSError):
            data = json_response(status, detail)
            if isinstance(p.sock, ssl.SSLSocket) and p.state == "head":
                p.sock.send(data)  # over TLS
            else:
                socket.socket.send(p.sock, data)  # plain, or no TLS session yet (plain HTTP on the TLS port)
            socket.socket.shutdown(p.sock, socket.SHUT_WR)
        log.info("%s refused at the edge: %s", p.addr, status)
        p.state = "drain"
        self._drain(p)

    def _drain(self, p: Pending) -> None:
        while p.drained <= DRAIN_BYTES:
            try:
                data = socket.socket.recv(p.sock, READ_SIZE)  # raw bytes: nothing here is read as TLS
            except _WAITING:
                self._wait(p)
                return
            except OSError:
                break
            if not data:
                break
            p.drained += len(data)
        p.close()


class JsonErrorRequest(cheroot_server.HTTPRequest):
    """cheroot's request parser, answering its own protocol errors in the API's JSON error shape."""

    def simple_response(self, status: Any, msg: Any = "") -> None:
        status = str(status)
        if not status[:1] == "4" and not status[:1] == "5":
            return super().simple_response(status, msg)  # "100 Continue" and friends
        text = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        self.close_connection = True
        with suppress(OSError):
            self.conn.wfile.write(json_response(status, text or status.split(" ", 1)[-1], self.server.protocol))
        return None


class EdgeConnection(cheroot_server.HTTPConnection):
    """A connection whose refusal lingers (see ``EdgeConnections.linger``)."""

    RequestHandlerClass = JsonErrorRequest
    linger_after_refusal = False  # set by the middleware when it refuses a request

    def close(self) -> None:
        srv = self.server
        if self.linger_after_refusal and getattr(srv, "ready", False) and isinstance(srv, EdgeServer):
            self.linger_after_refusal = False
            self.rfile.close()
            srv.edge.linger(self)
            return
        super().close()


class EdgeSSLAdapter(BuiltinSSLAdapter):
    """cheroot's builtin TLS adapter without its start-up probe: to fill ``SSL_SERVER_*`` environ
    keys (nothing here reads them) it made a loopback TLS connection to itself with a client context
    that loads the system's CA store — ~40 ms of every HTTPS server's start."""

    def __init__(self, certificate: str, private_key: str):
        Adapter.__init__(self, certificate, private_key)
        self.context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificate, private_key)
        self._server_env: dict[str, Any] = {}


def hold_worker(held: bool) -> None:
    """Said by a long response (a stream) when it starts and ends: while it runs, its worker does
    not count towards the ``--threads`` workers kept free for requests (see :class:`ElasticPool`)."""
    threading.current_thread().swf_lite_held = held  # type: ignore[attr-defined]


class ElasticPool(threadpool.ThreadPool):
    """cheroot's worker pool, started at ``min`` workers and grown (up to ``max``) so that ``min``
    workers stay free for requests while streams hold theirs (:func:`hold_worker`).

    cheroot starts every worker up front and never grows by itself, so a server sized for 64
    streams and 32 live pages ran ~100 threads per port, each with its own stack and malloc arena,
    and 16 busy clients kept 16 threads contending for the GIL where 8 serve them as fast; and its
    ``grow`` polled each new worker's readiness every 0.1 s, which made every server start take at
    least 0.1 s. Workers stay once started (at most ``max``)."""

    _threads: list[Any]  # cheroot's own (its type stubs leave the private parts out)
    _queue: Any
    _spawn_worker: Callable[[], Any]

    def __init__(self, server: Any, min: int, max: int):  # noqa: A002 - cheroot's names
        super().__init__(server, min=min, max=max)
        self._growing = threading.Lock()  # put() runs in the selector thread and in workers

    def grow(self, amount: int) -> None:
        with self._growing:
            self._grow(amount)

    def _grow(self, amount: int) -> None:
        workers = [self._spawn_worker() for _ in range(min(amount, max(self.max - len(self._threads), 0)))]
        self._threads.extend(workers)
        deadline = time.monotonic() + 5
        for worker in workers:  # a thread is ready within microseconds of start()
            while not worker.ready and time.monotonic() < deadline:
                time.sleep(0.0005)

    @property
    def held(self) -> int:
        """Workers held by streams."""
        return sum(1 for t in self._threads if getattr(t, "swf_lite_held", False))

    def put(self, obj: Any) -> None:
        super().put(obj)
        self.keep_up()

    def keep_up(self) -> None:
        """Start workers until ``min`` of them are not held by streams."""
        if len(self._threads) - self.held < self.min and len(self._threads) < self.max and self.server.ready:
            with self._growing:
                short = self.min + self.held - len(self._threads)
                if short > 0:
                    self._grow(short)


class EdgeServer(Server):
    """cheroot's WSGI server with the edge in front of its workers, and an elastic worker pool:
    ``numthreads`` workers at start, one more per stream holding its worker, up to ``max``."""

    ConnectionClass = EdgeConnection
    edge: EdgeConnections
    _connections: Any
    requests: ElasticPool

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requests = ElasticPool(self, min=self.requests.min, max=self.requests.max)

    def prepare(self) -> None:
        super().prepare()
        plain = self._connections
        context = self.ssl_adapter.context if self.ssl_adapter is not None else None
        self._connections = self.edge = EdgeConnections(self, context)
        plain._selector.close()

    def process_conn(self, conn: Any) -> None:
        if isinstance(conn, Pending):  # the selector saw bytes for a connection at the edge
            self.edge.advance(conn)
        else:
            super().process_conn(conn)
