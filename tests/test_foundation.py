"""Issue 3: both servers, trusted TLS, the store, atomic counters, tokens, CLI life cycle."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from swf_lite.config import Settings
from swf_lite.db import Store
from swf_lite.server import SwfLiteServer

from conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
READY_RE = re.compile(r"^swf-lite ready http=(\S+) https=(\S+) pid=(\d+)$", re.M)
RUN = "/api/state/next-run-number/"


def run_numbers(base: str, token: str, bundle: str, calls: int) -> list[int]:
    """``calls`` counter requests on one keep-alive session, verified against ``bundle``."""
    with requests.Session() as s:
        s.headers["Authorization"] = f"Token {token}"
        out = []
        for _ in range(calls):
            r = s.post(base + RUN, timeout=10, verify=bundle, allow_redirects=False)
            r.raise_for_status()
            body = r.json()
            assert body["status"] == "success"
            out.append(body["run_number"])
        return out


def assert_contiguous(values: list[int], start: int) -> None:
    assert len(set(values)) == len(values), "a number was handed out twice"
    assert sorted(values) == list(range(start, start + len(values)))


# -- counters ------------------------------------------------------------------------------------


def test_counters_16_threads_over_https_unique_and_contiguous(server):
    bundle = str(server.ca_bundle)
    with ThreadPoolExecutor(16) as pool:
        chunks = list(pool.map(lambda _: run_numbers(server.https_url, server.token, bundle, 50), range(16)))
    assert_contiguous([v for chunk in chunks for v in chunk], 100010)


@pytest.mark.parametrize(
    "endpoint, key, first",
    [("next-run-number", "run_number", 100010), ("next-agent-id", "agent_id", 1),
     ("next-workflow-execution-id", "sequence", 1)],
)  # fmt: skip
def test_counter_shapes(api, endpoint, key, first):
    r1 = api.post(f"/api/state/{endpoint}/", json={"workflow_name": "ignored"})
    r2 = api.post(f"/api/state/{endpoint}/")
    assert r1.status_code == r2.status_code == 200
    assert r1.json() == {key: first, "status": "success"}
    assert r2.json() == {key: first + 1, "status": "success"}
    get = api.get(f"/api/state/{endpoint}/")
    assert get.status_code == 405
    assert get.json() == {"detail": 'Method "GET" not allowed.'}
    assert "POST" in get.headers["Allow"]


def test_counters_need_a_token(anon):
    r = anon.post(RUN)
    assert r.status_code == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}


def test_counters_survive_restart(tmp_path):
    settings = make_settings(tmp_path / "d")
    with SwfLiteServer(settings) as srv:
        first = run_numbers(srv.http_url, srv.token, True, 3)
    with SwfLiteServer(make_settings(tmp_path / "d")) as srv:
        second = run_numbers(srv.http_url, srv.token, True, 2)
    assert first + second == list(range(100010, 100015))


def start_cli(data_dir: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, re.Match]:
    """``python -m swf_lite`` on port 0; returns the process and its parsed ready line."""
    cmd = [sys.executable, "-m", "swf_lite", "--data-dir", str(data_dir), "--http-port", "0", "--https-port", "0",
           "--log-level", "WARNING", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 20
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = READY_RE.match(line.strip())
        if match:
            return proc, match
    proc.kill()
    raise AssertionError(f"no ready line; got {seen!r}; stderr {proc.stderr.read()!r}")


def stop_cli(proc: subprocess.Popen, sig=signal.SIGTERM) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - started


def test_counters_from_4_processes_sharing_one_data_dir(tmp_path):
    """Four server processes on one SQLite file, hammered at once: still no repeats."""
    data = tmp_path / "shared"
    procs = [start_cli(data, "--quiet") for _ in range(4)]
    try:
        token = subprocess.run([sys.executable, "-m", "swf_lite", "token", "admin", "--data-dir", str(data)],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        bundle = str(data / "ca_bundle.pem")
        bases = [m.group(2) for _, m in procs]
        with ThreadPoolExecutor(8) as pool:
            chunks = list(pool.map(lambda i: run_numbers(bases[i % 4], token, bundle, 40), range(8)))
    finally:
        for proc, _ in procs:
            stop_cli(proc)
    assert_contiguous([v for chunk in chunks for v in chunk], 100010)


def test_first_heartbeats_of_new_agents_from_2_processes_at_once_create_each_agent_once(tmp_path):
    """A known agent's heartbeat is one self-committing UPDATE; a new agent is looked for again and
    inserted under the write lock, so two processes racing on the same new names never answer 400."""
    data = tmp_path / "beats"
    procs = [start_cli(data, "--quiet") for _ in range(2)]
    names = [f"racer-{n}" for n in range(15)]
    try:
        token = subprocess.run([sys.executable, "-m", "swf_lite", "token", "admin", "--data-dir", str(data)],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        bases = [m.group(1) for _, m in procs]

        def beat(i: int) -> list[int]:
            url = bases[i % 2] + "/api/systemagents/heartbeat/"
            with requests.Session() as s:
                s.headers["Authorization"] = f"Token {token}"
                return [s.post(url, json={"instance_name": n, "agent_type": "DATA"}, timeout=20).status_code
                        for n in names]  # fmt: skip

        with ThreadPoolExecutor(6) as pool:
            statuses = [code for codes in pool.map(beat, range(6)) for code in codes]
        agents = requests.get(bases[0] + "/api/systemagents/", timeout=10).json()
    finally:
        for proc, _ in procs:
            stop_cli(proc)
    assert sorted(set(statuses)) == [200, 201] and statuses.count(201) == len(names)
    assert sorted(a["instance_name"] for a in agents) == sorted(names)


# -- TLS ---------------------------------------------------------------------------------------------


def test_stock_requests_trusts_the_bundle_through_the_environment(server, monkeypatch):
    """What an agent does: REQUESTS_CA_BUNDLE exported, a plain Session, no verify argument."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
    with requests.Session() as s:
        s.headers["Authorization"] = f"Token {server.token}"
        r = s.post(server.https_url + RUN, timeout=10)
        assert r.status_code == 200
        localhost = server.https_url.replace("127.0.0.1", "localhost")
        assert s.get(localhost + "/health", timeout=10).json()["status"] == "ok"


def test_without_the_bundle_verification_fails(server, monkeypatch):
    """The check above is real: an empty-handed client is refused."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(server.https_url + "/health", timeout=10)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_strict_x509_verification_accepts_the_chain(server, hostname):
    ctx = ssl.create_default_context(cafile=str(server.ca_bundle))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    port = int(server.https_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=hostname) as tls_sock:
            assert tls_sock.version() in ("TLSv1.2", "TLSv1.3")
            tls_sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert tls_sock.recv(100).startswith(b"HTTP/1.1 200")


# -- files and store -----------------------------------------------------------------------------


def test_private_files_are_0600(server):
    data = server.settings.data_dir
    files = ("swf-lite.sqlite3",) if server.store.dialect.name == "sqlite" else ()
    for name in (*files, "ssl_key.pem", "ca_key.pem"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_store_upgrade_adds_columns_and_keeps_rows(tmp_path):
    """A table from an older version (missing a column) is upgraded in place at start."""
    db_path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db_path)
    con.execute('CREATE TABLE "runs" ("run_id" INTEGER PRIMARY KEY AUTOINCREMENT, "run_number" INTEGER NOT NULL '
                'UNIQUE, "start_time" DATETIME NOT NULL)')  # fmt: skip
    con.execute("INSERT INTO runs (run_number, start_time) VALUES (7, '2026-03-31 10:00:00.000000')")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{db_path}").open()
    try:
        columns = {c.name for c in store.db.get_columns("runs")}
        assert {"end_time", "run_conditions"} <= columns
        row = store.get(__import__("swf_lite.catalog").catalog.BY_NAME["runs"], 1)
        assert row["run_number"] == 7 and row["end_time"] is None
    finally:
        store.close()


def test_store_upgrade_replaces_lone_filter_indexes(tmp_path, engine):
    """Older versions indexed ``logs.levelname`` alone; the upgrade keeps a (levelname, timestamp)
    index instead, so writes pay for one index per filter, not two (both engines)."""
    url = engine.store_url(tmp_path)
    store = Store(url).open()
    store.connect()
    for sql in ('CREATE INDEX "applog_levelname" ON "logs" ("levelname")',  # the old version's index
                'CREATE INDEX "mine" ON "logs" ("message")'):  # someone's own: not ours to drop  # fmt: skip
        store.db.execute_sql(sql)
    store.dialect.set_schema_stamp(store.db, 0)  # an older version left no stamp (SQLite's user_version 0)
    store.release()
    store.close()
    store = Store(url).open()
    try:
        store.connect()
        indexes = {i.name: i.columns for i in store.db.get_indexes("logs")}
        assert "applog_levelname" not in indexes and indexes["mine"] == ["message"]
        assert ["levelname", "timestamp"] in indexes.values()
    finally:
        store.release()
        store.close()


def test_a_restart_trusts_the_schema_stamp_and_a_different_stamp_checks_everything(tmp_path, caplog):
    """A file this schema was made in says so (SQLite's user_version): opening it again runs one
    PRAGMA, not ~100 statements. A file stamped by another schema (an older version: 0, or other
    declarations) gets the whole check, repairs included, and the new stamp."""
    url = f"sqlite:///{tmp_path / 'stamp.sqlite3'}"
    store = Store(url).open()
    stamp = store.schema_stamp()
    store.close()
    con = sqlite3.connect(tmp_path / "stamp.sqlite3")
    assert con.execute("PRAGMA user_version").fetchone()[0] == stamp > 0
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        Store(url).open().close()
    statements = [r.getMessage() for r in caplog.records if r.name == "peewee"]
    assert any("user_version" in q for q in statements), statements
    assert not [q for q in statements if "CREATE" in q or "sqlite_master" in q], statements
    for other in (0, stamp ^ 1):
        indexes = {row[1] for row in con.execute("PRAGMA index_list('logs')")}
        con.execute(f'DROP INDEX "{sorted(i for i in indexes if not i.startswith("sqlite_"))[0]}"')
        con.execute(f"PRAGMA user_version = {other}")
        con.commit()
        Store(url).open().close()
        assert {row[1] for row in con.execute("PRAGMA index_list('logs')")} == indexes, "the check repaired it"
        assert con.execute("PRAGMA user_version").fetchone()[0] == stamp
    con.close()


def test_an_exhausted_connection_pool_answers_503_and_recovers(tmp_path, engine):
    """``--db-pool 1``: while something holds the only connection, a request waits ``--db-pool-wait``
    and gets a clear 503 (JSON, Retry-After); once it is back, requests are served again."""
    from api_helpers import running

    with running(tmp_path, engine=engine, db_pool=1, db_pool_wait=0.3) as srv:
        url = srv.http_url + "/api/runs/"
        assert requests.get(url, timeout=10).status_code == 200
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            srv.store.connect()
            held.set()
            release.wait(10)
            srv.store.release()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(5)
            busy = requests.get(url, timeout=10)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
            assert busy.json() == {"detail": "Service temporarily unavailable: all 1 database connections are busy."}
        finally:
            release.set()
            holder.join(10)
        assert requests.get(url, timeout=10).status_code == 200
        assert srv.store.open_connections == 0, "every request gave its connection back"


DRIVERS_LOADED = ("import sys; from swf_lite import cli; cli.main(sys.argv[1:]); "
                  "print([m for m in cli.UNUSED_BY_SQLITE if sys.modules.get(m) is not None])")  # fmt: skip


def test_a_sqlite_process_loads_no_other_database_driver(tmp_path):
    """peewee imports every driver it finds; the command line keeps psycopg (the [postgres] extra, ~0.15 s
    of the start) out of a SQLite process."""
    pytest.importorskip("psycopg")
    cmd = [sys.executable, "-c", DRIVERS_LOADED, "token", "alice", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_postgresql_process_has_its_driver(tmp_path, pg_cluster):
    url = pg_cluster.database()
    cmd = [sys.executable, "-c", DRIVERS_LOADED, "token", "alice", "--db", url, "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    assert "psycopg" in done.stdout.splitlines()[-1]
    pg_cluster.drop(url)


PAGES_LOADED = """
import sys, threading, urllib.request
from conftest import make_settings
from swf_lite import server as server_module
from swf_lite.server import SwfLiteServer
builds = []
build_pages = server_module.build_pages
server_module.build_pages = lambda ctx: builds.append(1) or build_pages(ctx)
srv = SwfLiteServer(make_settings(sys.argv[1])).start()
def pages_loaded():
    return sorted(m for m in sys.modules if m.startswith("swf_lite.pages."))
def get(path):
    with urllib.request.urlopen(srv.http_url + path, timeout=20) as resp:
        return resp.status, resp.headers["Content-Type"]
print(pages_loaded(), srv.app.pages.built, get("/api/runs/"), pages_loaded(), srv.app.pages.built)
first = [threading.Thread(target=get, args=("/",)) for _ in range(8)]
for t in first: t.start()
for t in first: t.join()
print(get("/runs/"), srv.app.pages.built, len(builds), "swf_lite.pages.views" in sys.modules)
srv.stop()
"""


def test_the_pages_are_built_by_the_first_page_request_not_at_start(tmp_path):
    """An agent's server never needs the web interface: its modules and routes (~25 ms of a start) load
    when the first page is asked for, once however many ask at the same moment."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", PAGES_LOADED, str(tmp_path / "d")], capture_output=True, text=True,
                          timeout=60, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.splitlines()[-2:]
    assert before == "[] False (200, 'application/json') [] False"
    assert after == "(200, 'text/html; charset=utf-8') True 1 True"


def test_memory_database_is_refused():
    with pytest.raises(ValueError, match="memory"):
        Store("sqlite:///:memory:")


# -- tokens --------------------------------------------------------------------------------------


def test_token_command_is_idempotent_and_the_token_works(tmp_path):
    data = tmp_path / "tok"
    cmd = [sys.executable, "-m", "swf_lite", "--data-dir", str(data)]
    first = subprocess.run([*cmd[:3], "token", "alice", *cmd[3:]], capture_output=True, text=True, check=True)
    again = subprocess.run([*cmd[:3], "get_token", "alice", *cmd[3:]], capture_output=True, text=True, check=True)
    token = first.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert again.stdout.strip() == token
    with SwfLiteServer(make_settings(data)) as srv:
        r = requests.post(srv.http_url + RUN, headers={"Authorization": f"token {token}"}, timeout=10)
        assert r.status_code == 200


@pytest.mark.parametrize(
    "header, detail",
    [
        (None, "Authentication credentials were not provided."),
        ("Token " + "0" * 40, "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token abc def", "Invalid token header. Token string should not contain spaces."),
        ("Bearer abc", "Authentication credentials were not provided."),
    ],
)
def test_401_shapes(server, header, detail):
    headers = {"Authorization": header} if header else {}
    r = requests.post(server.http_url + "/api/runs/", json={}, headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"detail": detail}
    assert r.headers["WWW-Authenticate"] == "Token"


# -- health, errors, logging -----------------------------------------------------------------------


def test_health_and_unknown_api_path(anon):
    health = anon.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["version"]
    missing = anon.get("/api/no-such-thing/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}


def test_access_log_has_method_path_status_ms(server, caplog):
    with caplog.at_level(logging.INFO, logger="swf_lite.access"):
        requests.get(server.http_url + "/api/runs/?x=1", timeout=10)
    assert any(re.search(r"GET /api/runs/ 200 \d+\.\d+ms", rec.getMessage()) for rec in caplog.records)


def test_settings_from_env_and_validation(tmp_path):
    s = Settings.from_env({"SWF_LITE_HTTP_PORT": "9100", "SWF_LITE_TLS": "false"}, data_dir=tmp_path)
    assert s.http_port == 9100 and s.tls is False
    with pytest.raises(ValueError, match="http_port"):
        Settings(data_dir=tmp_path, http_port=70000)
    with pytest.raises(ValueError, match="time zone"):
        Settings(data_dir=tmp_path, time_zone="Mars/Olympus")


# -- the CLI as a user runs it ---------------------------------------------------------------------


def test_cli_prints_urls_then_ready_and_stops_on_sigterm(tmp_path):
    data = tmp_path / "cli"
    cmd = [sys.executable, "-m", "swf_lite", "--data-dir", str(data), "--http-port", "0", "--https-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    banner = []
    try:
        for _ in range(40):
            line = proc.stdout.readline()
            banner.append(line)
            if line.startswith("swf-lite ready"):
                break
        text = "".join(banner)
        ready = READY_RE.search(text)
        assert ready, text
        http, https = ready.group(1), ready.group(2)
        assert not http.endswith(":0") and not https.endswith(":0")
        expected = ("swf-lite 0", "data dir", http, https, "CA bundle", "token", "export SWF_MONITOR_URL",
                    "export REQUESTS_CA_BUNDLE", "swf-lite ready")  # fmt: skip
        order = [text.index(s) for s in expected]
        assert order == sorted(order), text
        token = re.search(r"SWF_API_TOKEN=(\w+)", text).group(1)
        r = requests.post(https + RUN, headers={"Authorization": f"Token {token}"}, timeout=10,
                          verify=str(data / "ca_bundle.pem"))  # fmt: skip
        assert r.json()["run_number"] == 100010
        assert urllib.request.urlopen(http + "/health", timeout=5).status == 200
    finally:
        elapsed = stop_cli(proc)
    assert proc.returncode == 0, proc.stderr.read()
    assert elapsed < 2.5
    assert "swf-lite stopped" in proc.stdout.read()


def test_cli_ctrl_c_stops_cleanly(tmp_path):
    proc, _ = start_cli(tmp_path / "c", "--quiet")
    elapsed = stop_cli(proc, signal.SIGINT)
    assert proc.returncode == 0
    assert elapsed < 2.5
    assert "Traceback" not in proc.stderr.read()


def test_a_signal_the_moment_the_ready_line_appears_is_a_clean_stop(tmp_path):
    """Scripts stop a server as soon as it is ready: the handlers are in place before the ready line and
    only note the signal (a handler that set a threading.Event once deadlocked against the main thread's
    own wait on it, and the server then ignored SIGTERM for good)."""
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGTERM)):
        proc, _ = start_cli(tmp_path / f"d{n}", "--quiet")
        elapsed = stop_cli(proc, sig)
        assert proc.returncode == 0 and elapsed < 2.5, proc.stderr.read()


def test_busy_port_gives_one_line_naming_the_flag(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cmd = [sys.executable, "-m", "swf_lite", "--data-dir", str(tmp_path / "b"), "--http-port", str(port),
               "--https-port", "0"]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0] and "--http-port" in lines[0]


def test_zero_install_launcher_and_env_command(tmp_path):
    """``python swf_lite.py`` from a checkout, and ``env`` for an existing data dir."""
    env = dict(os.environ, PYTHONPATH="")
    proc, ready = start_cli(tmp_path / "z", "--quiet", env=env)
    stop_cli(proc)
    launcher = subprocess.run([sys.executable, str(ROOT / "swf_lite.py"), "--version"], capture_output=True,
                              text=True, cwd=tmp_path, timeout=20)  # fmt: skip
    assert launcher.returncode == 0 and launcher.stdout.startswith("swf-lite ")
    out = subprocess.run([sys.executable, "-m", "swf_lite", "env", "--data-dir", str(tmp_path / "z")],
                         capture_output=True, text=True, timeout=20, check=True).stdout  # fmt: skip
    for name in ("SWF_MONITOR_URL", "SWF_MONITOR_HTTP_URL", "SWF_API_TOKEN", "REQUESTS_CA_BUNDLE"):
        assert f"export {name}=" in out


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)")
@pytest.mark.parametrize("how", ["module", "launcher"])
def test_the_cli_makes_its_certificates_in_a_child_and_never_loads_cryptography(tmp_path, how):
    """``python -m swf_lite`` (and the launcher, run from elsewhere) has ``python -m swf_lite.tls``
    make the TLS files while it starts: the server process never maps cryptography's extension."""
    data = tmp_path / "k"
    if how == "module":
        proc, ready = start_cli(data)
    else:
        cmd = [sys.executable, str(ROOT / "swf_lite.py"), "--data-dir", str(data), "--http-port", "0",
               "--https-port", "0", "--quiet"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                env=dict(os.environ, PYTHONPATH=""))  # fmt: skip
        ready = READY_RE.match(proc.stdout.readline().strip())
        assert ready, proc.stderr.read() if proc.poll() is not None else "no ready line"
    try:
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "_ssl" in maps and "cryptography" not in maps
        r = requests.get(ready.group(2) + "/health", timeout=10, verify=str(data / "ca_bundle.pem"))
        assert r.status_code == 200
        assert (data / "ssl_key.pem").stat().st_mode & 0o777 == 0o600
        assert (data / "ca_key.pem").stat().st_mode & 0o777 == 0o600
    finally:
        stop_cli(proc)
    assert proc.returncode == 0, proc.stderr.read()


CHILD_SCRIPT = """
import logging, os, sys
from pathlib import Path
from swf_lite import tlschild
from swf_lite.config import Settings
logging.basicConfig(level="INFO", format="%(name)s: %(message)s")
data, how, bad = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
fork = how == "fork"
files = tlschild.CertificateChild(Settings(data_dir=data, log_level="INFO"), fork=fork)()
print("bundle", files.ca_bundle)
try:
    tlschild.CertificateChild(Settings(data_dir=data / "b", cert=bad, key=bad), fork=fork)()
except ValueError as exc:
    print("error", exc)
child = tlschild.CertificateChild(Settings(data_dir=data / "c"), fork=fork)
child.close()
pid = child.pid or child.process.pid
print("gone", not os.path.exists(f"/proc/{pid}"))
print("cryptography", "cryptography" in sys.modules)
print("subprocess", "subprocess" in sys.modules)
"""


@pytest.mark.parametrize("how", ["fork", "spawn"])
def test_the_certificate_child_passes_on_log_lines_and_errors_and_leaves_no_process(tmp_path, how):
    """Both kinds of child (a fork on Linux, ``python -m swf_lite.tls`` elsewhere), each in a fresh
    single-threaded process as the command line has it: files made, the child's log lines on stderr,
    a bad ``--cert`` a one-line reason, a child closed early reaped; cryptography never in the parent,
    nor (a fork) subprocess: what the parent imports before the fork delays the child."""
    bad = tmp_path / "bad.pem"
    bad.write_text("nonsense")
    done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT, str(tmp_path / "d"), how, str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert Path(out["bundle"]) == tmp_path / "d" / "ca_bundle.pem" and Path(out["bundle"]).is_file()
    assert str(bad) in out["error"] and "\n" not in out["error"]
    assert out["gone"] == "True" and out["cryptography"] == "False"
    assert out["subprocess"] == str(how == "spawn")
    assert "swf_lite.tls: generating local CA" in done.stderr


def test_in_process_stop_is_quick_and_idempotent(tmp_path):
    srv = SwfLiteServer(make_settings(tmp_path / "s")).start()
    started = time.monotonic()
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    stopper.join(5)
    assert time.monotonic() - started < 2
    srv.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(srv.http_url + "/health", timeout=2)


def test_console_script_is_installed():
    """``pip install .`` gives a ``swf-lite`` command next to the interpreter."""
    script = Path(sys.executable).parent / "swf-lite"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and result.stdout.startswith("swf-lite ")


def test_cheroot_messages_go_through_logging_not_stderr(server, capfd, caplog):
    """A client that rejects our certificate makes cheroot complain; that is a DEBUG record."""
    with caplog.at_level(logging.DEBUG, logger="swf_lite.server"):
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.https_url + "/health", timeout=10, verify=requests.certs.where())
        deadline = time.monotonic() + 3
        while not any("TLS" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert any(r.levelno == logging.DEBUG and "TLS" in r.getMessage() for r in caplog.records)
    assert "peer dropped" not in capfd.readouterr().err


def test_acknowledged_writes_survive_a_killed_process(tmp_path):
    """SIGKILL right after the 201s: every acknowledged row is in the file (WAL, committed per write)."""
    data = tmp_path / "crash"
    proc, ready = start_cli(data, "--quiet")
    log = {"app_name": "a", "instance_name": "i", "timestamp": "2026-03-31T12:00:00", "levelname": "INFO",
           "message": "m", "module": "m", "funcname": "f", "lineno": 1, "process": 1, "thread": 1}  # fmt: skip
    with requests.Session() as s:
        for n in range(50):
            assert s.post(ready.group(1) + "/api/logs/", json=dict(log, lineno=n), timeout=10).status_code == 201
    proc.kill()
    proc.wait(timeout=5)
    store = Store(f"sqlite:///{data / 'swf-lite.sqlite3'}").open()
    try:
        linenos = [row[0] for row in store.db.execute_sql('SELECT lineno FROM "logs" ORDER BY lineno').fetchall()]
    finally:
        store.close()
    assert linenos == list(range(50))


def test_kill_9_under_mixed_load_loses_nothing_acknowledged_and_repeats_no_counter(tmp_path):
    """Logs, runs (numbered by the counter), agent ids, execution ids and workflow messages written
    by four threads at once; SIGKILL mid-load. After a restart every acknowledged write is there and
    every counter continues above every value it handed out."""
    data = tmp_path / "crash"
    proc, ready = start_cli(data, "--quiet", "--no-tls")
    base = ready.group(1)
    token = subprocess.run([sys.executable, "-m", "swf_lite", "token", "admin", "--data-dir", str(data)],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    acked: dict[str, list] = {"logs": [], "runs": [], "agent_ids": [], "execution_ids": [], "messages": []}
    stop = threading.Event()
    log = {"app_name": "a", "instance_name": "i", "timestamp": "2026-03-31T12:00:00", "levelname": "INFO",
           "message": "m", "module": "m", "funcname": "f", "lineno": 1, "process": 1, "thread": 1}  # fmt: skip

    def load(work) -> None:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Token {token}"
            n = 0
            while not stop.is_set():
                try:
                    work(s, n)
                except requests.RequestException:  # the process is gone
                    return
                n += 1

    def logs(s, n):
        s.post(f"{base}/api/logs/", json=dict(log, lineno=n), timeout=5).raise_for_status()
        acked["logs"].append(n)

    def runs(s, n):
        number = s.post(f"{base}/api/state/next-run-number/", timeout=5).json()["run_number"]
        s.post(f"{base}/api/runs/", json={"run_number": number, "start_time": "2026-03-31T12:00:00Z"},
               timeout=5).raise_for_status()  # fmt: skip
        acked["runs"].append(number)

    def ids(s, n):
        acked["agent_ids"].append(s.post(f"{base}/api/state/next-agent-id/", timeout=5).json()["agent_id"])
        execution = s.post(f"{base}/api/state/next-workflow-execution-id/", timeout=5).json()
        acked["execution_ids"].append(execution["sequence"])

    def messages(s, n):
        r = s.post(f"{base}/api/workflow-messages/", json={"message_type": "stf_gen", "message_content": {"n": n}},
                   timeout=5)  # fmt: skip
        r.raise_for_status()
        acked["messages"].append(r.json()["message_id"])

    threads = [threading.Thread(target=load, args=(w,)) for w in (logs, runs, ids, messages)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    proc.kill()  # SIGKILL: no shutdown code runs
    proc.wait(timeout=5)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert all(len(v) > 5 for v in acked.values()), {k: len(v) for k, v in acked.items()}

    proc, ready = start_cli(data, "--quiet", "--no-tls")
    base = ready.group(1)
    try:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Token {token}"
            got_logs = {row["lineno"] for row in s.get(f"{base}/api/logs/", timeout=10).json()}
            got_runs = {row["run_number"] for row in s.get(f"{base}/api/runs/", timeout=10).json()}
            got_messages = {row["message_id"] for row in s.get(f"{base}/api/workflow-messages/", timeout=10).json()}
            assert set(acked["logs"]) <= got_logs
            assert set(acked["runs"]) <= got_runs
            assert set(acked["messages"]) <= got_messages
            for key, endpoint, field in (("runs", "next-run-number", "run_number"),
                                         ("agent_ids", "next-agent-id", "agent_id"),
                                         ("execution_ids", "next-workflow-execution-id", "sequence")):  # fmt: skip
                values = acked[key]
                assert len(values) == len(set(values)), f"{key} repeated a value"
                after = s.post(f"{base}/api/state/{endpoint}/", timeout=5).json()[field]
                assert after > max(values), (key, after, max(values))
    finally:
        stop_cli(proc)
