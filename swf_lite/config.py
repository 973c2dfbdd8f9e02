"""Settings: defaults < ``SWF_LITE_*`` environment < command-line flags, validated once.

Every knob the server has is one :class:`Settings` field; the CLI derives its flags from here,
and the pytest plugin builds a ``Settings`` directly.
"""

from __future__ import annotations

import dataclasses
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ENV_PREFIX = "SWF_LITE_"
DB_FILE = "swf-lite.sqlite3"  # the default SQLite file inside the data dir
# TLS files inside the data dir (swf_lite.tls writes them; clients need only the bundle)
CA_CERT_FILE = "ca_cert.pem"
CA_KEY_FILE = "ca_key.pem"  # mode 0600
CERT_FILE = "ssl_cert.pem"
KEY_FILE = "ssl_key.pem"  # mode 0600
BUNDLE_FILE = "ca_bundle.pem"  # the system's trusted CAs + the local CA
TLS_LOCK_FILE = ".tls.lock"
TLS_HOSTS = ("localhost", "127.0.0.1", "::1")  # names every server certificate covers (plus --host)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the server and its certificate child alike
# WSGI environ key the server (swf_lite.edge) sets: () -> bool, True once the client has hung up
PEER_CLOSED = "swf_lite.peer_closed"
# ... and (bool) -> None, said by a long response (a stream) as it starts and ends holding its worker
HOLD_WORKER = "swf_lite.hold_worker"
# ... and, on plain HTTP connections only, the connection's socket (a stream writes events to it directly)
PLAIN_SOCKET = "swf_lite.plain_socket"
# Settings that default to the variables the agents (swf-common-lib's BaseAgent) and the real monitor read,
# and to the usual DATABASE_URL
AGENT_ENV = {"db": "DATABASE_URL", "stomp_user": "ACTIVEMQ_USER", "stomp_password": "ACTIVEMQ_PASSWORD",
             "stomp_ssl": "ACTIVEMQ_USE_SSL", "stomp_ca_certs": "ACTIVEMQ_SSL_CA_CERTS",
             "stomp_cert_file": "ACTIVEMQ_SSL_CERT_FILE", "stomp_key_file": "ACTIVEMQ_SSL_KEY_FILE",
             "stomp_topic": "ACTIVEMQ_HEARTBEAT_TOPIC"}  # fmt: skip


def default_data_dir() -> Path:
    """``$SWF_LITE_DATA`` or the per-user data directory (XDG on Linux)."""
    if os.environ.get("SWF_LITE_DATA"):
        return Path(os.environ["SWF_LITE_DATA"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "swf-lite"


def local_zone_name() -> str:
    """The machine's IANA zone name if it can be found, else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        link = os.readlink("/etc/localtime")
        return link.split("zoneinfo/", 1)[1]
    except (OSError, IndexError):
        return "UTC"


@dataclass(frozen=True)
class TlsFiles:
    """Paths the HTTPS server and its clients need (made by :mod:`swf_lite.tls`)."""

    cert: Path  # server certificate PEM
    key: Path  # server private key PEM, mode 0600
    ca_cert: Path | None  # local CA certificate; None for a user-provided cert/key
    ca_bundle: Path  # system trusted CAs + local CA (or the user cert)


@dataclass
class Settings:
    """All settings with their defaults. ``help`` metadata feeds the CLI."""

    host: str = field(default="127.0.0.1", metadata={"help": "address both servers bind"})
    allowed_hosts: str = field(default="", metadata={"help": "more Host names to answer (comma list; * = any)"})
    http_port: int = field(default=8002, metadata={"help": "plain HTTP port (0 = pick a free one)"})
    https_port: int = field(default=8443, metadata={"help": "HTTPS port (0 = pick a free one)"})
    tls: bool = field(default=True, metadata={"help": "serve HTTPS too"})
    data_dir: Path = field(default_factory=default_data_dir, metadata={"help": "data directory"})
    db: str = field(default="", metadata={"help": "database URL: sqlite:///PATH (default: in the data dir) "
                                                  "or postgresql://USER:PASSWORD@HOST:PORT/DB"})  # fmt: skip
    db_pool: int = field(default=8, metadata={"help": "most database connections this process opens"})
    db_pool_wait: float = field(default=5.0, metadata={"help": "seconds a request waits for a free database "
                                                                "connection before it gets a 503"})  # fmt: skip
    cert: Path | None = field(default=None, metadata={"help": "your own server certificate (PEM)"})
    key: Path | None = field(default=None, metadata={"help": "your own server private key (PEM)"})
    time_zone: str = field(default_factory=local_zone_name, metadata={"help": "zone of naive input times"})
    threads: int = field(default=8, metadata={"help": "workers kept free for requests (per server; a stream adds one)"})
    max_body: int = field(default=1024 * 1024, metadata={"help": "largest request body in bytes"})
    stale_agent_seconds: int = field(default=180, metadata={"help": "heartbeat age that marks agents EXITED"})
    sse_max_clients: int = field(default=64, metadata={"help": "most open message streams (agents)"})
    sse_page_clients: int = field(default=32, metadata={"help": "most open live pages (each holds a stream)"})
    sse_queue: int = field(default=100, metadata={"help": "events buffered per stream client"})
    sse_heartbeat: float = field(default=30.0, metadata={"help": "seconds between stream heartbeats"})
    sse_replay: int = field(default=1000, metadata={"help": "most stored messages replayed on reconnect"})
    user: str = field(default="admin", metadata={"help": "user whose token start-up prints"})
    demo: bool = field(default=False, metadata={"help": "load the demo data on start"})
    seed: Path | None = field(default=None, metadata={"help": "JSON seed file loaded on start"})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR"})
    quiet: bool = field(default=False, metadata={"help": "print only the ready line"})
    # The ActiveMQ bridge (swf_lite.bridge; needs stomp.py). Defaults also come from the agents' ACTIVEMQ_* variables.
    stomp: str = field(default="", metadata={"help": "bridge workflow messages with this STOMP broker (HOST:PORT)"})
    stomp_topic: str = field(default="epictopic", metadata={"help": "the agents' topic (a name, or a /topic/ or "
                                                                    "/queue/ destination)"})  # fmt: skip
    stomp_user: str = field(default="admin", metadata={"help": "broker user"})
    stomp_password: str = field(default="admin", metadata={"help": "broker password", "secret": True})
    stomp_ssl: bool = field(default=False, metadata={"help": "connect to the broker over TLS"})
    stomp_ca_certs: Path | None = field(default=None, metadata={"help": "CA certificates for the broker (PEM)"})
    stomp_cert_file: Path | None = field(default=None, metadata={"help": "client certificate for the broker"})
    stomp_key_file: Path | None = field(default=None, metadata={"help": "client key for the broker"})
    stomp_buffer: int = field(default=1000, metadata={"help": "messages kept for the broker while it is away"})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Coerce types and reject impossible values with a message naming the setting."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            setattr(self, f.name, _coerce(f, value))
        for name in ("http_port", "https_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be between 0 and 65535")
        for name in ("threads", "max_body", "sse_max_clients", "sse_page_clients", "sse_queue", "db_pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.db_pool_wait < 0:
            raise ValueError("db_pool_wait must not be negative")
        if self.sse_heartbeat <= 0:
            raise ValueError("sse_heartbeat must be positive")
        if self.stale_agent_seconds < 0:
            raise ValueError("stale_agent_seconds must not be negative")
        self.log_level = self.log_level.upper()
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        if bool(self.cert) != bool(self.key):
            raise ValueError("--cert and --key go together")
        if self.stomp and self.stomp_address is None:
            raise ValueError(f"stomp: {self.stomp!r} is not HOST:PORT (e.g. localhost:61612, the agents' "
                             "ACTIVEMQ_HOST:ACTIVEMQ_PORT)")  # fmt: skip
        if self.stomp_buffer < 1:
            raise ValueError("stomp_buffer must be at least 1")
        if not self.stomp_topic.strip("/"):
            raise ValueError("stomp_topic must name a topic")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def allowed_host_list(self) -> list[str]:
        """``allowed_hosts`` as lower-case names, empty entries dropped."""
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def stomp_address(self) -> tuple[str, int] | None:
        """``stomp`` as (host, port); None when not set or not HOST:PORT (``[::1]:61613`` for IPv6)."""
        host, colon, port = self.stomp.strip().rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not (colon and host and port.isdigit() and 0 < int(port) <= 65535):
            return None
        return host, int(port)

    @property
    def tls_hosts(self) -> tuple[str, ...]:
        """The names the server certificate must cover: the usual local ones and ``--host``."""
        return tuple(dict.fromkeys((*TLS_HOSTS, self.host)))

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.data_dir / DB_FILE}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the agents' ``ACTIVEMQ_*`` variables (:data:`AGENT_ENV`), then ``SWF_LITE_<NAME>``
        variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if (raw is None or raw == "") and f.name in AGENT_ENV:
                raw = environ.get(AGENT_ENV[f.name])
            if raw is not None and raw != "":
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """Settings as JSON-friendly values (for ``/_swf_lite/config``); secrets masked."""
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
        for f in dataclasses.fields(self):
            if f.metadata.get("secret") and out.get(f.name):
                out[f.name] = MASK
        return out


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind.startswith("Path"):
            return Path(value).expanduser()
    except (TypeError, ValueError):
        raise ValueError(f"{f.name}: {value!r} is not a valid {kind.split()[0]}") from None
    return value


MASK = "***"
SECRET_PARAMS = ("password", "passwd", "pwd")  # query parameters peewee passes to the driver


def mask_url(url: str) -> str:
    """A database URL fit to print: the password (and a ``?password=`` parameter) becomes ``***``,
    the user name stays. ``postgresql://u:s@cr:et@h/db`` -> ``postgresql://u:***@h/db``.

    ``urlsplit`` finds the authority and its user info ends at the authority's last ``@`` (a host
    never holds one). A raw ``/``, ``?``, ``#`` or ``[`` in the password cuts the authority short
    (the URL is not valid then): if an ``@`` follows the authority, the user info is taken to end
    at the URL's last ``@`` instead, hiding too much rather than leaking."""
    scheme, sep, rest = url.partition("://")
    if not sep or rest.startswith("/"):  # no authority (sqlite:////path): no credentials
        return _mask_query(url)
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an unbalanced "[" in the password
        netloc = ""
    if netloc and rest.startswith(netloc) and "@" not in rest[len(netloc) :]:
        userinfo, at, host = netloc.rpartition("@")
        tail = host + rest[len(netloc) :]
    else:
        userinfo, at, tail = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (at and colon):  # no password
        return _mask_query(url)
    return _mask_query(f"{scheme}://{user}:{MASK}@{tail}")


def _mask_query(url: str) -> str:
    base, q, query = url.partition("?")
    if not q:
        return url
    query, hash_, fragment = query.partition("#")
    params = []
    for param in query.split("&"):
        key, eq, _ = param.partition("=")
        params.append(f"{key}={MASK}" if eq and unquote(key).strip().lower() in SECRET_PARAMS else param)
    return f"{base}?{'&'.join(params)}{hash_}{fragment}"
