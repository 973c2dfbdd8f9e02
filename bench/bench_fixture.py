"""Benchmark (issue 6): what the pytest plugin costs per test and per session.

    python bench/bench_fixture.py [--repeat 30] [--starts 7]

Everything runs in this process, against baselines measured in the same run:

* **per-test reset** (target < 20 ms): the ``swf_monitor`` fixture's setup (handle + ``reset()``)
  on a store holding the demo data set (~170 rows in 16 tables, re-loaded untimed before each
  reset), compared with the bare minimum, a raw ``sqlite3`` transaction deleting the same tables
  of the same file, and with the alternative the reset replaces, a fresh server per test
  (start + stop). Also shown: the admin API reset over HTTP (``--swf-lite-subprocess`` mode).
* **server start** (target < 0.5 s): ``SwfLiteServer(settings).start()`` on a new data dir (tables,
  token, CA and certificate generated) until the first ``GET /health/`` answers, compared with a
  bare bottle + cheroot pair (plain and TLS, same certificate, same thread pools) until its first
  answer. Also shown: a start over an existing data dir, the stop, and the subprocess start
  (token command + ``python -m swf_lite --quiet`` until the ready line).

Prints medians (and min-max) with ratios. Compare ratios; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # exported globally on some machines
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from swf_lite.db.dialect import SQLiteDialect  # noqa: E402 - after the sys.path line

RESET_TARGET_MS = 20.0
START_TARGET_MS = 500.0


def settings_for(data_dir: Path, **kw):
    from swf_lite.config import Settings

    return Settings(data_dir=data_dir, http_port=0, https_port=0, log_level="WARNING", quiet=True,
                    time_zone="UTC", **kw)  # fmt: skip


def first_answer(url: str, verify: str | bool = True, timeout: float = 5.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.001)


# -- baselines ---------------------------------------------------------------------------------------


class BareServers:
    """A bottle app with one route on two cheroot servers (plain + TLS), started like swf-lite's."""

    def __init__(self, cert: Path, key: Path, numthreads: int):
        self.cert, self.key, self.numthreads = cert, key, numthreads
        self.servers = []
        self.threads = []

    def start(self) -> BareServers:
        import bottle
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        app = bottle.Bottle()
        app.route("/health/", "GET", lambda: {"status": "ok"})
        for tls in (False, True):
            server = wsgi.Server(("127.0.0.1", 0), app, numthreads=self.numthreads, timeout=10, shutdown_timeout=1)
            if tls:
                server.ssl_adapter = BuiltinSSLAdapter(str(self.cert), str(self.key))
            server.prepare()
            t = threading.Thread(target=server.serve, daemon=True)
            t.start()
            self.servers.append(server)
            self.threads.append(t)
        return self

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.servers[0].bind_addr[1]}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for t in self.threads:
            t.join(timeout=2)


class RawReset:
    """The least a reset can do: one transaction deleting every table, in plain sqlite3 over a
    connection kept open (as the store keeps its own)."""

    def __init__(self, db_path: Path, tables: list[str], start_values: dict[str, int]):
        self.con = sqlite3.connect(db_path, isolation_level=None)
        for pragma, value in SQLiteDialect.PRAGMAS.items():  # the store's (synchronous=NORMAL matters most)
            self.con.execute(f"PRAGMA {pragma} = {value}")
        self.tables = tables
        sets = ", ".join(f'"{k}" = {int(v)}' for k, v in start_values.items())
        self.state_sql = f'UPDATE "swf_state" SET {sets}'

    def __call__(self) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        con.execute("PRAGMA defer_foreign_keys = ON")
        for table in self.tables:
            con.execute(f'DELETE FROM "{table}"')
        con.execute("DELETE FROM sqlite_sequence")
        con.execute(self.state_sql)
        con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


# -- measuring -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def measure_resets(repeat: int, work: Path) -> dict[str, list[float]]:
    import requests

    from swf_lite import seeding
    from swf_lite.catalog import RESOURCES
    from swf_lite.db import START_VALUES
    from swf_lite.pytest_plugin import SwfMonitor
    from swf_lite.server import SwfLiteServer

    data = json.loads(seeding.demo_path().read_text(encoding="utf-8"))
    server = SwfLiteServer(settings_for(work / "reset")).start()
    out: dict[str, list[float]] = {"fixture": [], "fixture_empty": [], "raw": [], "http": [], "fresh": []}
    try:
        server.store.connect()
        tables = [r.table for r in reversed(RESOURCES)]
        db_path = Path(server.settings.db_url.split("sqlite:///", 1)[1])
        raw = RawReset(db_path, tables, START_VALUES)
        session = requests.Session()
        session.trust_env = False
        headers = {"Authorization": f"Token {server.token}"}

        def fill():
            server.ctx.reset()
            seeding.load(server.ctx, data)

        for _ in range(3):  # warm-up (first queries, statement caches)
            fill()
            SwfMonitor(server).reset()
        for _ in range(repeat):
            fill()
            out["fixture"].append(timed(lambda: SwfMonitor(server).reset()))
            out["fixture_empty"].append(timed(lambda: SwfMonitor(server).reset()))
            fill()
            out["raw"].append(timed(raw))
            fill()

            def over_http():
                resp = session.post(server.http_url + "/_swf_lite/reset/", json={}, headers=headers, timeout=10)
                assert resp.status_code == 200, resp.text

            out["http"].append(timed(over_http))
        session.close()
        raw.close()
    finally:
        server.stop()
    for i in range(max(3, repeat // 10)):  # the alternative: a new server per test (slow: fewer rounds)
        d = work / f"fresh{i}"
        out["fresh"].append(timed(lambda d=d: SwfLiteServer(settings_for(d)).start().stop()))
    return out


def started(make: Callable[[], object], url_of: Callable[[object], str]) -> tuple[float, object]:
    """Milliseconds from ``make()`` until the server's first GET /health/ answers, and the server."""
    t0 = time.perf_counter()
    server = make()
    first_answer(url_of(server) + "/health/")
    return (time.perf_counter() - t0) * 1000, server


def measure_starts(starts: int, work: Path) -> dict[str, list[float]]:
    from swf_lite.pytest_plugin import SubprocessServer
    from swf_lite.server import SwfLiteServer

    out: dict[str, list[float]] = {"new_dir": [], "old_dir": [], "stop": [], "bare": [], "subprocess": []}
    url = lambda srv: srv.http_url  # noqa: E731
    for i in range(starts):
        d = work / f"start{i}"
        ms, srv = started(lambda d=d: SwfLiteServer(settings_for(d)).start(), url)
        out["new_dir"].append(ms)
        numthreads = srv.settings.threads + srv.settings.sse_max_clients
        out["stop"].append(timed(srv.stop))
        ms, srv = started(lambda d=d: SwfLiteServer(settings_for(d)).start(), url)
        out["old_dir"].append(ms)
        srv.stop()
        ms, bare = started(lambda d=d, n=numthreads: BareServers(d / "ssl_cert.pem", d / "ssl_key.pem", n).start(), url)
        out["bare"].append(ms)
        bare.stop()
    for i in range(max(2, starts // 3)):
        sub = SubprocessServer(work / f"sub{i}")
        out["subprocess"].append(timed(sub.start))
        sub.stop()
    return out


# -- report --------------------------------------------------------------------------------------


def row(name: str, samples: list[float], base: list[float] | None, target: float | None) -> str:
    med, lo, hi = summary(samples)
    cells = [f"{name:<50}", f"{med:9.2f}", f"{lo:8.2f}-{hi:<8.2f}"]
    if base:
        cells.append(f"{med / summary(base)[0]:8.2f}x")
    else:
        cells.append(f"{'':>9}")
    if target is not None:
        cells.append(f"  target < {target:g} ms: {'OK' if med < target else 'MISSED'}")
    return " ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="resets measured per kind (default 30)")
    parser.add_argument("--starts", type=int, default=7, help="server starts measured per kind (default 7)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="swf-lite-bench-"))
    try:
        resets = measure_resets(args.repeat, work)
        starts = measure_starts(args.starts, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"swf-lite fixture benchmark: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {args.repeat} resets / {args.starts} starts per kind")  # fmt: skip
    header = f"{'measurement (ms)':<50} {'median':>9} {'min-max':<17} {'ratio':>9}"
    print()
    print(header)
    print("-" * len(header))
    print("per-test reset (store holding the demo data set)")
    print(row("  baseline: raw sqlite3 DELETE of all tables", resets["raw"], None, None))
    print(row("  swf_monitor setup: handle + reset()", resets["fixture"], resets["raw"], RESET_TARGET_MS))
    print(row("  same, on an already empty store", resets["fixture_empty"], resets["raw"], RESET_TARGET_MS))
    print(row("  POST /_swf_lite/reset/ (subprocess mode)", resets["http"], resets["raw"], RESET_TARGET_MS))
    print(row("  alternative: fresh server per test", resets["fresh"], resets["raw"], None))
    print(f"  -> reset is {summary(resets['fresh'])[0] / summary(resets['fixture'])[0]:.0f}x faster "
          "than a fresh server per test")  # fmt: skip
    print("server start (until the first GET /health/ answers)")
    print(row("  baseline: bare bottle+cheroot, HTTP+TLS", starts["bare"], None, None))
    print(row("  swf-lite, new data dir (tables, token, certs)", starts["new_dir"], starts["bare"], START_TARGET_MS))
    print(row("  swf-lite, existing data dir", starts["old_dir"], starts["bare"], START_TARGET_MS))
    print(row("  swf-lite stop (session teardown)", starts["stop"], None, None))
    print(row("  subprocess mode: token cmd + process until ready", starts["subprocess"], starts["bare"], None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
