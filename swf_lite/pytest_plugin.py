"""pytest plugin (entry point ``pytest11``): a real swf-lite for the tests of testbed agents.

Installing swf-lite is enough; pytest loads this module in every session of that environment, so
it only declares fixtures, an option and a marker (nothing autouse), and it imports the server
stack (bottle, cheroot, peewee, requests) only inside the fixtures that need it.

Fixtures:

``swf_monitor`` (function scope)
    Resets all data and counters (then re-loads the seed, if any) before the test and returns a
    :class:`SwfMonitor` handle: ``http_url``, ``https_url``, ``url``, ``token``, ``ca_bundle``,
    ``data_dir``, ``env``, ``apply_env(monkeypatch)``, ``reset()``, ``seed()``, ``records()``,
    ``logs()``, ``messages()``, ``agents()``, ``request()``.
``swf_lite_server`` (session scope)
    The in-process :class:`swf_lite.server.SwfLiteServer` (both servers on port 0, data dir from
    ``tmp_path_factory``: one per xdist worker), stopped at the end with bounded waits.
``swf_lite_subprocess_server`` (session scope)
    The same as a ``python -m swf_lite`` child process, for agents tested in another process. Chosen
    by ``--swf-lite-subprocess`` (or ini ``swf_lite_subprocess = true``) for the whole run, or by the
    ``swf_lite_subprocess`` marker per test/module.
``swf_lite_host``, ``swf_lite_tls``, ``swf_lite_seed``, ``swf_lite_settings`` (session scope)
    Override them in a ``conftest.py`` (keep session scope): bind address, HTTPS on/off, a seed
    (path to a seed file, ``"demo"`` for the bundled demo data, or a dict in the seed format) and
    any other :class:`swf_lite.config.Settings` fields as a dict.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swf_lite.cli import READY_RE  # the ready line's format, next to the code that prints it

if TYPE_CHECKING:  # pragma: no cover
    import requests

    from swf_lite.server import SwfLiteServer

MARKER = "swf_lite_subprocess"
START_TIMEOUT = 30.0  # a cold interpreter on a loaded CI machine, plus certificate generation
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# -- hooks -----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("swf-lite", "swf-lite: a local SWF Monitor for agent tests")
    group.addoption(
        "--swf-lite-subprocess",
        action="store_true",
        default=False,
        help="run swf-lite as a 'python -m swf_lite' subprocess instead of in-process "
        "(for agents tested in another process)",
    )
    parser.addini("swf_lite_subprocess", type="bool", default=False,
                  help="run swf-lite as a subprocess (as --swf-lite-subprocess)")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: give this test's swf_monitor a 'python -m swf_lite' subprocess server"
    )


# -- overridable settings (session scope: the server lives for the session) -----------------------


@pytest.fixture(scope="session")
def swf_lite_host() -> str:
    """Address both servers bind (URLs use it too)."""
    return "127.0.0.1"


@pytest.fixture(scope="session")
def swf_lite_tls() -> bool:
    """Serve HTTPS as well (``SWF_MONITOR_URL`` then points at it, with a CA bundle)."""
    return True


@pytest.fixture(scope="session")
def swf_lite_seed() -> str | Path | dict | None:
    """Loaded at start and again after every reset: a seed-file path, ``"demo"``, a dict, or None."""
    return None


@pytest.fixture(scope="session")
def swf_lite_settings() -> dict[str, Any]:
    """Other :class:`swf_lite.config.Settings` fields, e.g. ``{"stale_agent_seconds": 5}``."""
    return {}


# -- servers ---------------------------------------------------------------------------------------


def _settings_fields(host: str, tls: bool, extra: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    fields: dict[str, Any] = {"host": host, "tls": tls, "http_port": 0, "https_port": 0, "data_dir": data_dir,
                              "log_level": "WARNING", "quiet": True}  # fmt: skip
    fields.update(extra)
    return fields


def _seed_data(seed: str | Path | dict | None) -> dict | None:
    """The seed as a dict (read once per session)."""
    if seed is None or isinstance(seed, dict):
        return seed
    if str(seed) == "demo":
        from swf_lite.seeding import demo_path

        seed = demo_path()
    return json.loads(Path(seed).read_text(encoding="utf-8"))


def _bounded(fn, timeout: float, what: str) -> None:
    """Run ``fn`` in a helper thread and give up waiting after ``timeout`` seconds."""
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=target, name=f"swf-lite-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        warnings.warn(f"swf-lite: {what} did not finish within {timeout:g} s", stacklevel=2)
    elif errors:
        warnings.warn(f"swf-lite: {what} failed: {errors[0]!r}", stacklevel=2)


@pytest.fixture(scope="session")
def swf_lite_server(tmp_path_factory, swf_lite_host, swf_lite_tls, swf_lite_settings, swf_lite_seed):
    """swf-lite in this process: both servers on port 0 over a SQLite file in a temporary dir."""
    from swf_lite.config import Settings
    from swf_lite.server import SwfLiteServer

    seed = _seed_data(swf_lite_seed)  # a missing seed file fails before anything starts
    data_dir = tmp_path_factory.mktemp("swf-lite")
    server = SwfLiteServer(Settings(**_settings_fields(swf_lite_host, swf_lite_tls, swf_lite_settings, data_dir)))
    server.start()
    server.swf_lite_seed = seed  # SwfMonitor.reset() loads it again
    try:
        if server.swf_lite_seed:
            _InProcess(server).seed(server.swf_lite_seed)
        yield server
    finally:
        _bounded(server.stop, STOP_TIMEOUT, "server stop")


class SubprocessServer:
    """``python -m swf_lite`` as a child process, with the attributes of an in-process server."""

    def __init__(self, data_dir: Path, host: str, tls: bool, extra: dict[str, Any], seed: dict | None):
        self.data_dir = Path(extra.get("data_dir") or data_dir)
        self.host = host
        self.tls = tls
        self.extra = {k: v for k, v in extra.items() if k != "data_dir"}
        self.user = str(self.extra.get("user") or "admin")
        self.swf_lite_seed = seed
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.proc = None
        self.token = ""
        self.http_url = ""
        self.https_url: str | None = None
        self.pid = 0
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    # the command line and the environment of the child

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWF_LITE_")}  # flags decide
        root = str(Path(__file__).resolve().parent.parent)  # importable even if not installed
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _flags(self) -> list[str]:
        flags = ["--data-dir", str(self.data_dir), "--host", self.host, "--tls" if self.tls else "--no-tls",
                 "--log-level", "WARNING"]  # fmt: skip
        extra = dict(self.extra)
        if self.swf_lite_seed:  # the seed goes over HTTP on every reset: make room for it
            size = len(json.dumps(self.swf_lite_seed).encode())
            extra.setdefault("max_body", max(1024 * 1024, 2 * size))
        for name, value in extra.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "--no-" + flag[2:])
            elif value is not None:
                flags += [flag, str(value)]
        return flags

    def start(self, timeout: float = START_TIMEOUT) -> SubprocessServer:
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
        return self

    def _read(self, ready: threading.Event) -> None:
        """Find the ready line, then keep draining stdout so the child never blocks on it."""
        for line in self.proc.stdout:
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
        return self.data_dir / "ca_bundle.pem" if self.https_url else None

    def client_env(self) -> dict[str, str]:
        env = {"SWF_MONITOR_URL": self.https_url or self.http_url, "SWF_MONITOR_HTTP_URL": self.http_url,
               "SWF_API_TOKEN": self.token}  # fmt: skip
        if self.ca_bundle:
            env["REQUESTS_CA_BUNDLE"] = env["CURL_CA_BUNDLE"] = str(self.ca_bundle)
        return env

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
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture(scope="session")
def swf_lite_subprocess_server(tmp_path_factory, swf_lite_host, swf_lite_tls, swf_lite_settings, swf_lite_seed):
    """swf-lite as a ``python -m swf_lite`` subprocess (started on first use, stopped at the end)."""
    data_dir = tmp_path_factory.mktemp("swf-lite-subprocess")
    server = SubprocessServer(data_dir, swf_lite_host, swf_lite_tls, dict(swf_lite_settings),
                              _seed_data(swf_lite_seed))  # fmt: skip
    server.start()
    try:
        if server.swf_lite_seed:
            _OverHttp(server).seed(server.swf_lite_seed)
        yield server
    finally:
        server.stop()


# -- resetting and seeding, in-process or over the admin API --------------------------------------


class _InProcess:
    def __init__(self, server: SwfLiteServer):
        self.server = server

    def reset(self, counters: dict[str, int] | None) -> None:
        from swf_lite import seeding

        store = self.server.store
        store.connect()  # this thread's connection
        self.server.ctx.reset(seeding.normalize_counters(counters or {}))

    def seed(self, data: dict) -> dict[str, int]:
        from swf_lite import seeding

        return seeding.load(self.server.ctx, data)


class _OverHttp:
    def __init__(self, server: SubprocessServer):
        self.server = server

    def _post(self, path: str, body: dict) -> dict:
        import requests

        with requests.Session() as s:
            s.trust_env = False  # loopback: no proxies from the environment
            resp = s.post(self.server.http_url + path, json=body, timeout=HTTP_TIMEOUT,
                          headers={"Authorization": f"Token {self.server.token}"})  # fmt: skip
        if resp.status_code != 200:
            raise RuntimeError(f"POST {path} -> {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def reset(self, counters: dict[str, int] | None) -> None:
        self._post("/_swf_lite/reset/", {"counters": counters} if counters else {})

    def seed(self, data: dict) -> dict[str, int]:
        return self._post("/_swf_lite/seed/", data)["loaded"]


# -- the per-test handle ---------------------------------------------------------------------------


class SwfMonitor:
    """What a test needs to point an agent at swf-lite and to see what the agent did."""

    def __init__(self, server: SwfLiteServer | SubprocessServer):
        self.server = server
        self.in_process = not isinstance(server, SubprocessServer)
        self._backend = _InProcess(server) if self.in_process else _OverHttp(server)
        self._seed = getattr(server, "swf_lite_seed", None)
        self.http_url: str = server.http_url
        self.https_url: str | None = server.https_url
        self.url: str = self.https_url or self.http_url  # SWF_MONITOR_URL
        self.token: str = server.token
        self.ca_bundle: Path | None = server.ca_bundle
        self.data_dir: Path = Path(server.settings.data_dir) if self.in_process else server.data_dir
        self.pid: int = os.getpid() if self.in_process else server.pid
        self.env: dict[str, str] = dict(server.client_env())
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        mode = "in-process" if self.in_process else f"subprocess pid {self.pid}"
        return f"<SwfMonitor {self.url} ({mode})>"

    # environment

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
        """Export :attr:`env` for the test (undone afterwards), and keep agents on it: loopback
        bypasses proxies (``NO_PROXY``) and ``SWF_ENV_LOADED=1`` stops swf-common-lib from letting
        a developer's ``~/.env`` point the agent at another monitor."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("SWF_ENV_LOADED", "1")
        for var in ("NO_PROXY", "no_proxy"):
            have = [h for h in os.environ.get(var, "").split(",") if h.strip()]
            monkeypatch.setenv(var, ",".join(have + [h for h in LOOPBACK if h not in have]))
        return self.env

    # state

    def reset(self, counters: dict[str, int] | None = None) -> None:
        """Empty every table and stream buffer, restart the counters (or set them, e.g.
        ``{"next_run_number": 200000}``), then load the session's seed again, if any."""
        if not self._seed:
            self._backend.reset(counters)
            return
        self._backend.reset(None)
        self._backend.seed(self._seed)
        if counters:  # explicit values win over the seed's
            self._backend.seed({"counters": counters})

    def seed(self, data: dict | str | Path) -> dict[str, int]:
        """Load records in the seed format (a dict or a seed-file path); returns counts per resource."""
        return self._backend.seed(data if isinstance(data, dict) else _seed_data(data))

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
        return resp.json()

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
        if self._session is not None:
            self._session.close()
            self._session = None


def _wants_subprocess(request: pytest.FixtureRequest) -> bool:
    config = request.config
    return bool(config.getoption("swf_lite_subprocess") or config.getini("swf_lite_subprocess")
                or request.node.get_closest_marker(MARKER))  # fmt: skip


@pytest.fixture
def swf_monitor(request: pytest.FixtureRequest) -> SwfMonitor:
    """A clean swf-lite for this test (all data and counters reset first)."""
    name = "swf_lite_subprocess_server" if _wants_subprocess(request) else "swf_lite_server"
    handle = SwfMonitor(request.getfixturevalue(name))
    handle.reset()
    yield handle
    handle.close()
