"""A real swf-lite for tests, without pytest: the handle a test uses and the servers behind it.

The pytest plugin (:mod:`swf_lite.pytest_plugin`) is fixtures around this module; anything else
(unittest, a script, a benchmark) can use it directly::

    from swf_lite.testing import ServerOptions, SwfMonitor, read_seed, start_in_process, stop_in_process

    options = ServerOptions(tls=True, settings={"stale_agent_seconds": 5}, seed=read_seed("demo"))
    server = start_in_process(tmp_dir, options)  # or SubprocessServer(tmp_dir, options).start()
    monitor = SwfMonitor(server, seed=options.seed)  # reset() loads the seed again
    monitor.reset()  # all data, counters and stream buffers
    monitor.apply_env()  # SWF_MONITOR_URL, SWF_API_TOKEN, the CA bundle... into os.environ
    ...
    print(monitor.records("runs"))
    monitor.close()
    stop_in_process(server)

Importing it is cheap: the server stack (bottle, cheroot, peewee, requests, cryptography) is
imported only by the functions that start or talk to a server. It never imports pytest.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

from swf_lite.cli import READY_RE  # the ready line's format, next to the code that prints it
from swf_lite.clientenv import client_env
from swf_lite.config import BUNDLE_FILE

if TYPE_CHECKING:  # pragma: no cover
    import subprocess

    import requests

    from swf_lite.context import Context
    from swf_lite.server import SwfLiteServer

__all__ = [
    "HTTP_TIMEOUT",
    "LOOPBACK",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "EnvSetter",
    "ServerOptions",
    "SubprocessServer",
    "SwfMonitor",
    "read_seed",
    "start_in_process",
    "stop_in_process",
]

START_TIMEOUT = 30.0  # a cold interpreter on a loaded CI machine, plus certificate generation
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class EnvSetter(Protocol):
    """What :meth:`SwfMonitor.apply_env` needs: pytest's ``monkeypatch`` or anything with ``setenv``."""

    def setenv(self, name: str, value: str) -> None: ...


class _OsEnviron:
    """``setenv`` straight into ``os.environ`` (not undone)."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value


def read_seed(seed: str | Path | dict[str, Any] | None) -> dict[str, Any] | None:
    """The seed as a dict: a seed-file path, ``"demo"`` for the bundled demo data, a dict or None."""
    if seed is None or isinstance(seed, dict):
        return seed
    if str(seed) == "demo":
        from swf_lite.seeding import demo_path

        seed = demo_path()
    data = json.loads(Path(seed).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"seed file {seed}: expected a JSON object of resource name -> list of records")
    return data


def _bounded(fn: Callable[[], object], timeout: float, what: str) -> None:
    """Run ``fn`` in a helper thread and give up waiting after ``timeout`` seconds (with a warning)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=target, name=f"swf-lite-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        warnings.warn(f"swf-lite: {what} did not finish within {timeout:g} s", stacklevel=3)
    elif errors:
        warnings.warn(f"swf-lite: {what} failed: {errors[0]!r}", stacklevel=3)


# -- servers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    """How to run a test server, in-process or as a subprocess: bind address, HTTPS on/off, other
    :class:`swf_lite.config.Settings` fields (kept as a read-only copy) and a seed already read
    (see :func:`read_seed`), loaded once started."""

    host: str = "127.0.0.1"
    tls: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    seed: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))


def _settings_fields(options: ServerOptions, data_dir: Path) -> dict[str, Any]:
    fields: dict[str, Any] = {"host": options.host, "tls": options.tls, "http_port": 0, "https_port": 0,
                              "data_dir": data_dir, "log_level": "WARNING", "quiet": True}  # fmt: skip
    fields.update(options.settings)
    return fields


def start_in_process(data_dir: Path, options: ServerOptions | None = None) -> SwfLiteServer:
    """swf-lite in this process: both servers on port 0 over a SQLite file in ``data_dir``, quiet,
    with ``options`` (defaults: :class:`ServerOptions`) applied and its seed loaded."""
    from swf_lite.config import Settings
    from swf_lite.server import SwfLiteServer

    options = options or ServerOptions()
    server = SwfLiteServer(Settings(**_settings_fields(options, Path(data_dir))))
    server.start()
    try:
        if options.seed:
            _InProcess(server).seed(options.seed)
    except BaseException:
        stop_in_process(server)
        raise
    return server


def stop_in_process(server: SwfLiteServer, timeout: float = STOP_TIMEOUT) -> None:
    """Stop both servers and the database, waiting at most ``timeout`` seconds (then a warning)."""
    _bounded(server.stop, timeout, "server stop")


class SubprocessServer:
    """``python -m swf_lite`` as a child process, with the attributes of an in-process server.

    The ``options``' settings are passed as flags (a ``data_dir`` among them wins over the argument);
    its seed is loaded over the admin API once started. Usable as a context manager
    (``with ....start()``).
    """

    def __init__(self, data_dir: Path, options: ServerOptions | None = None) -> None:
        self.options = options = options or ServerOptions()
        self.data_dir = Path(options.settings.get("data_dir") or data_dir)
        self.extra = {k: v for k, v in options.settings.items() if k != "data_dir"}
        self.user = str(self.extra.get("user") or "admin")
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""
        self.http_url = ""
        self.https_url: str | None = None
        self.pid = 0
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._log: IO[str] | None = None

    # the command line and the environment of the child

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWF_LITE_")}  # flags decide
        root = str(Path(__file__).resolve().parent.parent)  # importable even if not installed
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _flags(self) -> list[str]:
        opts = self.options
        flags = ["--data-dir", str(self.data_dir), "--host", opts.host, "--tls" if opts.tls else "--no-tls",
                 "--log-level", "WARNING"]  # fmt: skip
        extra = dict(self.extra)
        if opts.seed:  # the seed goes over HTTP on every reset: make room for it
            size = len(json.dumps(opts.seed).encode())
            extra.setdefault("max_body", max(1024 * 1024, 2 * size))
        for name, value in extra.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "--no-" + flag[2:])
            elif value is not None:
                flags += [flag, str(value)]
        return flags

    def start(self, timeout: float = START_TIMEOUT) -> SubprocessServer:
        """Get the user's token, start the child, wait for its ready line, load the seed."""
        import subprocess

        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = self._env()
        base = [sys.executable, "-m", "swf_lite"]
        got = subprocess.run([*base, "token", self.user, *self._flags()], env=env, capture_output=True,
                             text=True, timeout=timeout)  # fmt: skip
        if got.returncode != 0:
            last = (got.stderr.strip().splitlines() or [""])[-1]
            raise RuntimeError(f"swf-lite token command failed (exit status {got.returncode}): {last}")
        self.token = got.stdout.strip().splitlines()[-1]
        cmd = [*base, "--quiet", "--http-port", "0", "--https-port", "0", *self._flags()]
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, env=env)  # fmt: skip
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), name="swf-lite-stdout", daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or not self.http_url:
            output = self._describe()
            self.stop()
            raise RuntimeError(f"swf-lite subprocess did not become ready within {timeout:g} s: {output}")
        try:
            if self.options.seed:
                _OverHttp(self).seed(self.options.seed)
        except BaseException:
            self.stop()
            raise
        return self

    def _read(self, ready: threading.Event) -> None:
        """Find the ready line, then keep draining stdout so the child never blocks on it."""
        stdout = self.proc.stdout if self.proc is not None else None
        for line in stdout if stdout is not None else ():
            self._lines.append(line.rstrip("\n"))
            match = READY_RE.match(line)
            if match and not ready.is_set():
                self.http_url = match["http"]
                self.https_url = None if match["https"] == "-" else match["https"]
                self.pid = int(match["pid"])
                ready.set()
        ready.set()  # EOF: the child exited before (or after) the ready line

    def _describe(self) -> str:
        code = self.proc.poll() if self.proc else None
        try:
            err = self.log_path.read_text(encoding="utf-8")[-2000:].strip()
        except OSError:
            err = ""
        return f"exit status {code}; stdout {self._lines[-5:]!r}; stderr {err!r}"

    # facts for clients (as SwfLiteServer offers them)

    @property
    def ca_bundle(self) -> Path | None:
        """The bundle the server writes into its data dir (system CAs + its CA), if it serves HTTPS."""
        return self.data_dir / BUNDLE_FILE if self.https_url else None

    def client_env(self) -> dict[str, str]:
        """The variables an agent needs to talk to this server (as ``python -m swf_lite env``)."""
        return client_env(self.http_url, self.https_url, self.token, self.ca_bundle)

    def stop(self) -> None:
        """SIGTERM (the server stops both servers and the database), SIGKILL after a bounded wait."""
        import subprocess

        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=STOP_TIMEOUT / 2)
                except subprocess.TimeoutExpired:
                    warnings.warn(f"swf-lite subprocess {proc.pid} did not exit", stacklevel=2)
        if self._reader is not None:
            self._reader.join(timeout=2)
        if proc is not None and proc.stdout is not None and (self._reader is None or not self._reader.is_alive()):
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SubprocessServer:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- resetting and seeding, in-process or over the admin API --------------------------------------


class _InProcess:
    """Reset and seed through the running server's own context (what the admin API calls)."""

    def __init__(self, server: SwfLiteServer) -> None:
        self.server = server

    def _ctx(self) -> Context:
        if self.server.ctx is None:
            raise RuntimeError("the swf-lite server is not started")
        return self.server.ctx

    def reset(self, counters: dict[str, int] | None) -> None:
        from swf_lite.counters import normalize

        self._ctx().reset(normalize(counters or {}))  # connects this thread to the store

    def seed(self, data: dict[str, Any]) -> dict[str, int]:
        from swf_lite import seeding

        return seeding.load(self._ctx().service, data)


class _OverHttp:
    def __init__(self, server: SubprocessServer) -> None:
        self.server = server

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import requests

        with requests.Session() as s:
            s.trust_env = False  # loopback: no proxies from the environment
            resp = s.post(self.server.http_url + path, json=body, timeout=HTTP_TIMEOUT,
                          headers={"Authorization": f"Token {self.server.token}"})  # fmt: skip
        if resp.status_code != 200:
            raise RuntimeError(f"POST {path} -> {resp.status_code} {resp.text[:500]}")
        result: dict[str, Any] = resp.json()
        return result

    def reset(self, counters: dict[str, int] | None) -> None:
        self._post("/_swf_lite/reset/", {"counters": counters} if counters else {})

    def seed(self, data: dict[str, Any]) -> dict[str, int]:
        loaded: dict[str, int] = self._post("/_swf_lite/seed/", data)["loaded"]
        return loaded


# -- the per-test handle ---------------------------------------------------------------------------


class SwfMonitor:
    """What a test needs to point an agent at swf-lite and to see what the agent did.

    ``seed`` (a dict in the seed format) is loaded again by every :meth:`reset`; by default a
    :class:`SubprocessServer`'s own seed.
    """

    def __init__(self, server: SwfLiteServer | SubprocessServer, seed: dict[str, Any] | None = None) -> None:
        self.server = server
        self._backend: _InProcess | _OverHttp
        if isinstance(server, SubprocessServer):
            self.in_process = False
            self._backend = _OverHttp(server)
            self.data_dir: Path = server.data_dir
            self.pid: int = server.pid
            seed = server.options.seed if seed is None else seed
        else:
            self.in_process = True
            self._backend = _InProcess(server)
            self.data_dir = Path(server.settings.data_dir)
            self.pid = os.getpid()
        self._seed = seed
        self.http_url: str = server.http_url
        self.https_url: str | None = server.https_url
        self.url: str = self.https_url or self.http_url  # SWF_MONITOR_URL
        self.token: str = server.token
        self.ca_bundle: Path | None = server.ca_bundle
        self.env: dict[str, str] = dict(server.client_env())
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        mode = "in-process" if self.in_process else f"subprocess pid {self.pid}"
        return f"<SwfMonitor {self.url} ({mode})>"

    # environment

    def apply_env(self, monkeypatch: EnvSetter | None = None) -> dict[str, str]:
        """Export :attr:`env` through ``monkeypatch.setenv`` (pytest undoes it after the test; without
        it, straight into ``os.environ``), and keep agents on it: loopback bypasses proxies
        (``NO_PROXY``) and ``SWF_ENV_LOADED=1`` stops swf-common-lib from letting a developer's
        ``~/.env`` point the agent at another monitor."""
        target: EnvSetter = monkeypatch if monkeypatch is not None else _OsEnviron()
        for key, value in self.env.items():
            target.setenv(key, value)
        target.setenv("SWF_ENV_LOADED", "1")
        for var in ("NO_PROXY", "no_proxy"):
            have = [h for h in os.environ.get(var, "").split(",") if h.strip()]
            target.setenv(var, ",".join(have + [h for h in LOOPBACK if h not in have]))
        return self.env

    # state

    def reset(self, counters: dict[str, int] | None = None) -> None:
        """Empty every table and stream buffer, restart the counters (or set them, e.g.
        ``{"next_run_number": 200000}``), then load the seed again, if any."""
        if not self._seed:
            self._backend.reset(counters)
            return
        self._backend.reset(None)
        self._backend.seed(self._seed)
        if counters:  # explicit values win over the seed's
            self._backend.seed({"counters": counters})

    def seed(self, data: dict[str, Any] | str | Path) -> dict[str, int]:
        """Load records in the seed format (a dict or a seed-file path); returns counts per resource."""
        return self._backend.seed(data if isinstance(data, dict) else read_seed(data) or {})

    # reading what agents did (the wire representation, through the API)

    def _http(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False
            self._session.headers["Authorization"] = f"Token {self.token}"
        return self._session

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A token request to ``url + path`` (TLS verified against the CA bundle)."""
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("verify", str(self.ca_bundle) if self.ca_bundle else True)
        return self._http().request(method, self.url + path, **kwargs)

    def records(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        """``GET /api/<resource>/`` with exact-match filters, as a list (e.g. ``records("runs")``)."""
        resp = self._http().get(f"{self.http_url}/api/{resource.strip('/')}/", params=filters, timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise AssertionError(f"GET /api/{resource}/ -> {resp.status_code} {resp.text[:300]}")
        found: list[dict[str, Any]] = resp.json()
        return found

    def logs(self, **filters: Any) -> list[dict[str, Any]]:
        """REST log records, newest first (filters: app_name, instance_name, levelname, ...)."""
        return self.records("logs", **filters)

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Workflow messages, newest first (filters: message_type, sender_agent, run_id, ...)."""
        return self.records("workflow-messages", **filters)

    def agents(self, **filters: Any) -> list[dict[str, Any]]:
        """Registered system agents (heartbeats)."""
        return self.records("systemagents", **filters)

    def close(self) -> None:
        """Close the HTTP session of the readers (the server keeps running)."""
        if self._session is not None:
            self._session.close()
            self._session = None
