"""Benchmark (issue 3): counter and log-POST throughput of swf-lite against a bare baseline.

    python bench/bench_counters.py [--seconds 3] [--max-calls 50000] [--concurrency 1,16]

Starts swf-lite in this process on port 0 (a temporary data dir) and, in the same run, a bare
baseline: a bottle app with one POST route returning a small JSON body, served by cheroot with the
same TLS certificate and the same number of worker threads. The load comes from one client
process (so it does not share the servers' GIL) with one ``requests.Session`` (keep-alive) per
worker thread, and measures calls/s for:

* ``POST /api/state/next-run-number/`` with a token over HTTPS (verified against the CA bundle);
  every value handed out is checked to be unique (and, as there is no other caller, gap-free);
* ``POST /api/logs/`` (no token) over plain HTTP, with a RestLogHandler-shaped record.

Each measurement runs ~``--seconds`` or ``--max-calls`` calls, whichever ends first, after one
untimed warm-up call per session. It prints a table with absolute numbers and the ratio
swf-lite / baseline. Numbers depend on the machine and its load: compare ratios, not absolutes.
Exit status 1 if any call failed or a counter value repeated.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime as dt
import itertools
import logging
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Machines here export these globally; requests would let them override verify=. Drop them first.
for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

COUNTER_PATH = "/api/state/next-run-number/"
LOG_PATH = "/api/logs/"
LOG_RECORD = {
    "app_name": "bench",
    "instance_name": "bench-1",
    "timestamp": "2026-03-31T10:00:00.123456",
    "level": 20,
    "levelname": "INFO",
    "message": "processed STF swf.100010.000001.stf in 0.25 s",
    "module": "bench_counters",
    "funcname": "worker",
    "lineno": 42,
    "process": 4242,
    "thread": 140234567890,
    "extra_data": {"run_number": 100010},
}


# -- the client process --------------------------------------------------------------------------


@dataclass
class Load:
    """What one measurement asks of the client process."""

    url: str
    concurrency: int = 1
    seconds: float = 3.0
    max_calls: int = 50_000
    verify: str | bool = True
    token: str | None = None
    body: dict | None = None
    value_key: str | None = None  # collect this key of every response (counter values)


@dataclass
class Result:
    calls: int = 0
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)
    values: list[int] = field(default_factory=list)  # includes the warm-up calls' values
    server_cpu_us: float = 0.0  # CPU of the serving process per call (filled in by measure())

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed if self.elapsed else 0.0


def run_load(load: Load) -> Result:
    """Runs in the client process: ``concurrency`` threads, one keep-alive session each."""
    import requests

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(name, None)
    result = Result()
    lock = threading.Lock()
    budget = itertools.count()  # shared call budget (next() is atomic under the GIL)
    deadline = [0.0, 0.0]  # start, end: set by the barrier once every session is warm

    def go() -> None:
        deadline[0] = time.perf_counter()
        deadline[1] = deadline[0] + load.seconds

    start = threading.Barrier(load.concurrency + 1, action=go)

    def worker() -> None:
        values, errors, calls = [], [], 0
        with requests.Session() as session:
            if load.token:
                session.headers["Authorization"] = f"Token {load.token}"

            def call() -> None:
                r = session.post(load.url, json=load.body, verify=load.verify, timeout=30, allow_redirects=False)
                if r.status_code not in (200, 201):
                    errors.append(f"{r.status_code} {r.text[:200]}")
                elif load.value_key:
                    values.append(r.json()[load.value_key])
                else:
                    r.json()

            try:
                call()  # warm-up: connection and TLS handshake, not timed
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                errors.append(f"warm-up: {exc!r}")
            start.wait()
            while time.perf_counter() < deadline[1] and next(budget) < load.max_calls:
                try:
                    call()
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc))
                calls += 1
        with lock:
            result.calls += calls
            result.values.extend(values)
            result.errors.extend(errors)

    threads = [threading.Thread(target=worker) for _ in range(load.concurrency)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - deadline[0]
    return result


def measure(pool: cf.ProcessPoolExecutor, load: Load) -> Result:
    """Run ``load`` in the client process; add the serving (this) process's CPU time per call."""
    cpu = time.process_time()
    result = pool.submit(run_load, load).result()
    cpu = time.process_time() - cpu
    result.server_cpu_us = cpu / max(result.calls + load.concurrency, 1) * 1e6  # + the warm-up calls
    return result


# -- the servers ---------------------------------------------------------------------------------


def baseline_app():
    """The bare baseline: one POST route, reads the body, returns a small JSON object."""
    import bottle

    app = bottle.Bottle()
    numbers = itertools.count(1)

    @app.post("/")
    def index():
        bottle.request.body.read()
        return {"run_number": next(numbers), "status": "success"}

    return app


def start_cheroot(app, threads: int, keep_alive: int | None, cert: Path | None = None, key: Path | None = None):
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    server = wsgi.Server(
        ("127.0.0.1", 0), app, numthreads=threads, server_name="baseline", timeout=10, shutdown_timeout=1
    )
    server.keep_alive_conn_limit = keep_alive
    if cert:
        server.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    scheme = "https" if cert else "http"
    return server, f"{scheme}://127.0.0.1:{server.bind_addr[1]}"


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--max-calls", type=int, default=50_000, help="calls per measurement at most")
    parser.add_argument("--concurrency", default="1,16", help="comma list of client thread counts")
    parser.add_argument(
        "--keep-alive-limit",
        type=int,
        default=None,
        help="set cheroot's keep_alive_conn_limit on every server (default: swf-lite's own, copied to the baseline)",
    )
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    logging.basicConfig(level=logging.WARNING)

    from swf_lite.config import Settings
    from swf_lite.server import SwfLiteServer

    tmp = tempfile.TemporaryDirectory(prefix="swf-lite-bench-")
    settings = Settings(
        data_dir=Path(tmp.name) / "data", http_port=0, https_port=0, log_level="WARNING", time_zone="UTC"
    )
    srv = SwfLiteServer(settings).start()
    # the baseline gets the cheroot settings swf-lite's servers have
    threads = srv.endpoints[0].server.requests.min
    keep_alive = srv.endpoints[0].server.keep_alive_conn_limit
    if args.keep_alive_limit is not None:
        keep_alive = args.keep_alive_limit
        for ep in srv.endpoints:
            ep.server.keep_alive_conn_limit = keep_alive  # read per response by cheroot
    base_tls, base_tls_url = start_cheroot(baseline_app(), threads, keep_alive, srv.tls.cert, srv.tls.key)
    base_plain, base_plain_url = start_cheroot(baseline_app(), threads, keep_alive)
    bundle = str(srv.ca_bundle)
    pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    rows, failures, counter_values = [], [], []
    try:
        pool.submit(run_load, Load(base_plain_url + "/", seconds=0.1, max_calls=10)).result()  # start the client
        timing = {"seconds": args.seconds, "max_calls": args.max_calls}
        counter = {"verify": bundle, "body": {}}
        cases = (
            (
                "counter POST, HTTPS keep-alive, token",
                Load(srv.https_url + COUNTER_PATH, token=srv.token, value_key="run_number", **counter, **timing),
                Load(base_tls_url + "/", **counter, **timing),
            ),
            (
                "log POST, plain HTTP keep-alive",
                Load(srv.http_url + LOG_PATH, body=LOG_RECORD, **timing),
                Load(base_plain_url + "/", body=LOG_RECORD, **timing),
            ),
        )
        for _, lite_load, base_load in cases:  # untimed: first-call costs (imports, connections, caches)
            for load in (lite_load, base_load):
                counter_values += (
                    pool.submit(run_load, dataclasses.replace(load, seconds=1, max_calls=50)).result().values
                )
        for title, lite_load, base_load in cases:
            for n in levels:
                base = measure(pool, dataclasses.replace(base_load, concurrency=n))
                lite = measure(pool, dataclasses.replace(lite_load, concurrency=n))
                rows.append((title, n, lite, base))
                failures += [f"swf-lite {title} c={n}: {e}" for e in lite.errors[:3]]
                failures += [f"baseline {title} c={n}: {e}" for e in base.errors[:3]]
                counter_values += lite.values
    finally:
        pool.shutdown()
        for server in (base_tls, base_plain):
            server.stop()
        srv.stop()
        tmp.cleanup()

    print(
        f"swf-lite bench_counters: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.seconds:g} s or {args.max_calls} calls per measurement; each server: {threads} threads, "
        f"keep_alive_conn_limit {keep_alive}; load: 1 client process, 1 requests.Session per thread"
    )
    header = (
        f"{'case':<38} {'conc':>4} {'swf-lite/s':>10} {'baseline/s':>10} {'ratio':>5}"
        f" {'lite µs CPU':>11} {'base µs CPU':>11} {'ratio':>5} {'calls':>6}"
    )
    print(header)
    print("-" * len(header))
    for title, n, lite, base in rows:
        ratio = lite.rate / base.rate if base.rate else float("nan")
        cpu_ratio = lite.server_cpu_us / base.server_cpu_us if base.server_cpu_us else float("nan")
        print(
            f"{title:<38} {n:>4} {lite.rate:>10.0f} {base.rate:>10.0f} {ratio:>5.2f}"
            f" {lite.server_cpu_us:>11.0f} {base.server_cpu_us:>11.0f} {cpu_ratio:>5.2f} {lite.calls:>6}"
        )
    print("ratio = swf-lite / baseline (calls/s: higher is better; server CPU µs per call: lower is better)")

    unique = len(set(counter_values)) == len(counter_values)
    contiguous = bool(counter_values) and max(counter_values) - min(counter_values) + 1 == len(counter_values)
    span = f"{min(counter_values)}..{max(counter_values)}" if counter_values else "-"
    print(
        f"counter values: {len(counter_values)} handed out ({span}), "
        f"{'all unique' if unique else 'DUPLICATES FOUND'}, {'no gaps' if contiguous else 'with gaps'}"
    )
    for line in failures:
        print("FAILED:", line)
    print(f"finished {dt.datetime.now().isoformat(timespec='seconds')}")
    return 0 if unique and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
