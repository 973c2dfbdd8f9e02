"""Two cheroot servers (plain HTTP and HTTPS) over one WSGI application, in one process.

``SwfLiteServer(settings).start()`` binds both sockets (port 0 resolved), serves each in a
thread and returns; ``stop()`` ends streams, both servers and the database within ~2 s.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import peewee as pw

from swf_lite import auth, edge, seeding
from swf_lite.app import Lazy, Middleware, build_app, build_pages
from swf_lite.clientenv import client_env, url_host
from swf_lite.config import BUNDLE_FILE, DB_FILE, Settings, TlsFiles, mask_url
from swf_lite.context import Context
from swf_lite.db import Store
from swf_lite.edge import EdgeServer, EdgeSSLAdapter
from swf_lite.hosts import HostCheck

if TYPE_CHECKING:  # imported in start() only with --stomp: stomp.py is an optional extra
    from swf_lite.bridge import Bridge

log = logging.getLogger("swf_lite.server")


class StartupError(Exception):
    """Start-up failed for a reason the user can fix; the message is one line naming the file."""


class PortInUse(OSError):
    def __init__(self, host: str, port: int, flag: str):
        super().__init__(f"port {port} on {host} is already in use; choose another with {flag} (0 picks a free one)")
        self.port = port
        self.flag = flag


@dataclass
class Endpoint:
    name: str
    server: EdgeServer
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.bind_addr[1]


def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's error_log (dropped handshakes, client errors) as records of ``swf_lite.server``:
    connection-level noise is DEBUG; anything cheroot rates WARNING or worse keeps its level."""
    log.log(level if level >= logging.WARNING else logging.DEBUG, "%s", msg, exc_info=traceback)


def has_store(settings: Settings) -> bool:
    """Whether the configured database exists (a server has started with these settings)."""
    return bool(settings.db) or (settings.data_dir / DB_FILE).exists()


def configured_urls(settings: Settings) -> tuple[str, str | None]:
    """(HTTP URL, HTTPS URL or None) from the configured host and ports."""
    host = url_host(settings.host)
    https_url = f"https://{host}:{settings.https_port}" if settings.tls else None
    return f"http://{host}:{settings.http_port}", https_url


def configured_client_env(settings: Settings) -> dict[str, str] | None:
    """``client_env`` of the swf-lite that ``settings`` describe, read from its data dir (configured
    ports: a port-0 server's real ports exist only in its banner). None if it never started."""
    if not has_store(settings):
        return None
    token = auth.token_from_url(settings.db_url, settings.user, is_staff=True)
    http_url, https_url = configured_urls(settings)
    bundle = settings.data_dir / BUNDLE_FILE
    return client_env(http_url, https_url, token, bundle if https_url and bundle.exists() else None)


def _certificates_here(s: Settings) -> TlsFiles:
    from swf_lite import tls  # cryptography: loaded only by a server that makes its own certificates

    return tls.ensure_certificates(s.data_dir, hosts=s.tls_hosts, cert=s.cert, key=s.key)


class SwfLiteServer:
    """The running service: store, application, servers."""

    def __init__(self, settings: Settings, certificates: Callable[[], TlsFiles] | None = None):
        """``certificates``: returns the TLS files, made elsewhere (``python -m swf_lite`` has a child
        process make them: :mod:`swf_lite.tlschild`); by default they are made here at start."""
        self.settings = settings
        self._certificates = certificates
        self.store: Store | None = None
        self.ctx: Context | None = None
        self.tls: TlsFiles | None = None
        self._tls_adapter: EdgeSSLAdapter | None = None
        self.token: str = ""
        self.endpoints: list[Endpoint] = []
        self.bridge: Bridge | None = None  # the ActiveMQ bridge (--stomp)
        self._stopped = threading.Event()

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> SwfLiteServer:
        s = self.settings
        try:
            s.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StartupError(f"{s.data_dir}: cannot create the data dir ({exc.strerror or exc}); "
                               "choose another with --data-dir") from exc  # fmt: skip
        db_file = mask_url(s.db_url.split("sqlite:///", 1)[-1])
        try:
            self.store = Store(s.db_url, pool=s.db_pool, wait=s.db_pool_wait).open()
            self.token = auth.get_or_create_token(self.store, s.user, is_staff=True)
        except ValueError as exc:  # an unsupported URL, a missing driver
            raise StartupError(f"--db: {exc}") from exc
        except (pw.DatabaseError, OSError) as exc:  # not SQLite, truncated, unreadable, read-only; no server
            if not s.db_url.startswith("sqlite"):
                raise StartupError(f"{db_file}: cannot use the database ({str(exc).strip()}); check --db or "
                                   "$DATABASE_URL and that the server is running") from exc  # fmt: skip
            raise StartupError(f"{db_file}: not a usable SQLite database ({exc}); move it away to start "
                               "afresh, or choose another --data-dir") from exc  # fmt: skip
        self.ctx = Context(s, self.store)
        try:
            self.ctx.start()
        except RuntimeError as exc:
            raise StartupError(f"{mask_url(s.db_url)}: {exc}") from exc
        ctx = self.ctx
        self.app = Middleware(build_app(ctx), ctx, pages=Lazy(lambda: build_pages(ctx)))
        self.wsgi_app = HostCheck.for_settings(self.app, s)  # what the sockets serve (DNS-rebinding guard)
        seeding.load_initial(s, self.ctx.service)  # --demo / --seed
        self.store.release()  # start-up's connection goes back to the pool, for the requests
        if s.tls:
            try:
                self.tls = self._certificates() if self._certificates else _certificates_here(s)
                self._tls_adapter = EdgeSSLAdapter(str(self.tls.cert), str(self.tls.key))  # loads (checks) them
            except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
                where = s.cert or s.data_dir
                raise StartupError(f"{where}: cannot use the TLS certificate ({exc}); fix --cert/--key, or delete "
                                   f"the *.pem files in {s.data_dir} to have new ones made") from exc  # fmt: skip
        try:
            if s.stomp:  # after the seed (not published), before the doors open (every message published)
                self.bridge = self.ctx.bridge = self._start_bridge()
            self.endpoints.append(self._bind("http", s.http_port, "--http-port"))
            if s.tls:
                self.endpoints.append(self._bind("https", s.https_port, "--https-port"))
        except BaseException:
            self.stop()
            raise
        self.ctx.urls.update({ep.name: self.url(ep.name) for ep in self.endpoints})
        for ep in self.endpoints:
            ep.thread = threading.Thread(target=ep.server.serve, name=f"swf-lite-{ep.name}", daemon=True)
            ep.thread.start()
        return self

    def _start_bridge(self) -> Bridge:
        try:
            from swf_lite.bridge import Bridge
        except ImportError as exc:
            raise StartupError(f"--stomp needs stomp.py ({exc}): pip install 'swf-lite[stomp]'") from exc
        assert self.ctx is not None, "the context exists before the bridge starts"
        try:
            return Bridge(self.ctx).start()
        except pw.DatabaseError as exc:
            raise StartupError(f"{mask_url(self.settings.db_url)}: cannot create the bridge's table ({exc})") from exc

    def _bind(self, name: str, port: int, flag: str) -> Endpoint:
        s = self.settings
        most = s.threads + s.sse_max_clients + s.sse_page_clients  # every stream holds a worker
        # request_queue_size: cheroot's default listen backlog of 5 made a burst of connects wait 1 s (SYN retry)
        server = EdgeServer((s.host, port), self.wsgi_app, numthreads=s.threads, max=most, server_name="swf-lite",
                            timeout=10, shutdown_timeout=1, request_queue_size=socket.SOMAXCONN)  # fmt: skip
        server.error_log = _cheroot_log  # type: ignore[method-assign]  # cheroot's hook: into logging, not stderr
        server.max_request_body_size = 0  # the middleware enforces --max-body with a JSON 413
        server.max_request_header_size = edge.MAX_HEAD  # the edge answers first; pipelined heads meet this
        server.keep_alive_conn_limit = 256  # default 10: more agents than that would reconnect per call
        server.expiration_interval = 0.1  # the serve loop's poll: stop() waits for it (default 0.5 s)
        if name == "https":
            assert self._tls_adapter is not None, "start() loads the certificates before it binds https"
            server.ssl_adapter = self._tls_adapter  # handshakes: the edge
        try:
            server.prepare()
        except OSError as exc:
            if "in use" in str(exc).lower() or getattr(exc, "errno", None) == 98:
                raise PortInUse(s.host, port, flag) from None
            raise
        return Endpoint(name, server)

    # -- facts for clients ---------------------------------------------------------------------

    def url(self, name: str) -> str:
        for ep in self.endpoints:
            if ep.name == name:
                return f"{name}://{url_host(self.settings.host)}:{ep.port}"
        raise LookupError(f"no {name} server")

    @property
    def http_url(self) -> str:
        return self.url("http")

    @property
    def https_url(self) -> str | None:
        return self.url("https") if self.settings.tls else None

    @property
    def ca_bundle(self) -> Path | None:
        return self.tls.ca_bundle if self.tls else None

    def client_env(self) -> dict[str, str]:
        """The variables an agent needs to talk to this server."""
        return client_env(self.http_url, self.https_url, self.token, self.ca_bundle)

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Streams first (they watch the stop event), then both servers, then the database."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.bridge is not None:  # first: nothing more stored from, or published to, the broker
            self.bridge.stop()
        if self.ctx:
            self.ctx.stopping.set()
            self._release_streams()
        stoppers = [threading.Thread(target=ep.server.stop, daemon=True) for ep in self.endpoints]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(timeout=2)
        for ep in self.endpoints:
            if ep.thread:
                ep.thread.join(timeout=1)
        if self.ctx:
            self.ctx.close()
        if self.store:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001 - a broken database must not hide why we stopped
                log.debug("closing the store failed", exc_info=True)

    def _release_streams(self, grace: float = 0.5) -> None:
        """Give streams ``grace`` seconds to end by themselves, then cut the sockets of any that are
        stuck writing to a client that stopped reading: cheroot's stop only shuts the read side,
        so such a worker would hold the process for the socket timeout (10 s)."""
        bus = self.ctx.bus if self.ctx else None
        deadline = time.monotonic() + grace
        while bus is not None and len(bus) and time.monotonic() < deadline:
            time.sleep(0.02)
        if bus is None or not len(bus):
            return
        for ep in self.endpoints:
            for worker in list(getattr(ep.server.requests, "_threads", ())):
                conn = getattr(worker, "conn", None)
                if conn is not None:
                    with contextlib.suppress(OSError, AttributeError):
                        conn.socket.shutdown(socket.SHUT_RDWR)

    def wait(self) -> None:
        self._stopped.wait()

    def __enter__(self) -> SwfLiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
