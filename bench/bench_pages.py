"""Benchmark: web page render time against the page's JSON twin, on a big store.

    python bench/bench_pages.py [--quick] [--requests 30] [--max-seconds 8] [--profile PATH]

Starts swf-lite in this process on port 0 (a temporary data dir, removed afterwards) and fills it:
100,000 logs, 1,000 runs with 10 STF files each (10,000), 20 agents and 2,000 workflow messages
(``--quick``: a tenth of the logs, files and runs). Logs, runs and STF files go in with raw SQL
(one ``executemany`` per table, all in one transaction, values converted by the store's own models):
``service.create`` in one ``service.transaction()`` stores about 4,000 rows/s here, the raw inserts
well over 50,000 rows/s. Agents and messages (small counts) go through the service.

Then, over real sockets (plain HTTP, one keep-alive ``requests.Session``), it times each page and
its JSON twin: a few untimed warm-up requests, then ``--requests`` timed ones (fewer only if one
measurement passes ``--max-seconds``). Time is client wall time per request, the body read.
It prints median and p95 of both, the page/JSON ratio of the medians (the JSON twin is the
baseline: same data, same filters, same process) and PASS/MISS against the target "page median
< 50 ms". Exit status 1 if any request failed (never on timings).

``--profile PATH`` (e.g. ``/``): after the table, runs cProfile around 5 renders of PATH, called
straight through the WSGI app (no socket), and prints the 25 costliest calls by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

import requests  # noqa: E402

TARGET_MS = 50.0
WARM_UP = 3
LEVELS = ((10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"), (50, "CRITICAL"))


def level_of(i: int) -> tuple[int, str]:
    """80 % INFO, 10 % DEBUG, 7 % WARNING, 2.5 % ERROR, 0.5 % CRITICAL."""
    k = i % 200
    if k < 160:
        return LEVELS[1]
    if k < 180:
        return LEVELS[0]
    if k < 194:
        return LEVELS[2]
    if k < 199:
        return LEVELS[3]
    return LEVELS[4]


# -- data ------------------------------------------------------------------------------------------


def raw_insert(store: Any, service: Any, resource: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (Python values; missing fields take the catalog's defaults) with one
    ``executemany`` on the store's connection. The caller holds the transaction."""
    from swf_lite.catalog import BY_NAME
    from swf_lite.db.models import SEQ

    r = BY_NAME[resource]
    assert not r.sequenced, "sequenced resources need their seq: use the service"
    model = store.model(r)
    pk = model._meta.primary_key
    auto = pk.__class__.__name__ == "AutoField"
    fields = [f for f in model._meta.sorted_fields if f.name != SEQ and not (auto and f is pk)]
    sample = {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in rows[0].items()}
    defaults = service.clean(r, sample, creating=True)  # validates one row and gives the defaults
    cols = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = ", ".join("?" for _ in fields)
    params = []
    for row in rows:
        values = {**defaults, **row}
        params.append([f.db_value(values.get(f.name)) for f in fields])
    store.db.cursor().executemany(f'INSERT INTO "{r.table}" ({cols}) VALUES ({marks})', params)


def build(srv: Any, n_logs: int, n_runs: int, files_per_run: int, n_agents: int, n_messages: int) -> dict[str, Any]:
    """Fill the store; returns facts the measurements need and the build times."""
    from swf_lite.catalog import BY_NAME

    service, store = srv.ctx.service, srv.store
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)  # stored times: naive UTC
    n_files = n_runs * files_per_run
    started = time.perf_counter()
    store.connect()
    with store.atomic():
        span = dt.timedelta(seconds=10 * files_per_run)  # a run: its files, 10 s apart
        first = now - span * n_runs
        runs = [
            {
                "run_id": i + 1,
                "run_number": 100010 + i,
                "start_time": first + span * i,
                "end_time": first + span * (i + 1),
                "run_conditions": {"detector": "ePIC", "beam_energy": "10x100", "stf_interval_seconds": 10},
            }
            for i in range(n_runs)
        ]
        raw_insert(store, service, "runs", runs)
        statuses = ("registered", "processing", "processed", "done", "failed")
        files = []
        for i in range(n_files):
            run = runs[i // files_per_run]
            files.append(
                {
                    "file_id": uuid.uuid4(),
                    "run": run["run_id"],
                    "machine_state": "physics",
                    "stf_filename": f"swf.{run['run_number']}.{i % files_per_run:06d}.stf",
                    "file_size_bytes": 1_000_000 + i,
                    "checksum": f"ad:{i:08x}",
                    "status": statuses[i % 5],
                    "created_at": now - dt.timedelta(seconds=10 * (n_files - i)),
                    "metadata": {"simulation": True, "sequence": i % files_per_run},
                }
            )
        raw_insert(store, service, "stf-files", files)
        logs = []
        for i in range(n_logs):
            level, levelname = level_of(i)
            run_number = 100010 + (i * n_runs // n_logs)
            message = (
                f"processed swf.{run_number}.{i % files_per_run:06d}.stf in 0.{i % 97:02d} s"
                if i % 3 == 0
                else f"heartbeat sent, queue depth {i % 17}"
            )
            logs.append(
                {
                    "app_name": f"app-{i % 5}",
                    "instance_name": f"agent-{i % n_agents}",
                    "timestamp": now - dt.timedelta(seconds=(n_logs - i)),
                    "level": level,
                    "levelname": levelname,
                    "message": message,
                    "module": "fast_processing_agent",
                    "funcname": "process",
                    "lineno": 100 + i % 400,
                    "process": 4242,
                    "thread": 140000 + i % 8,
                    "extra_data": {"run_number": run_number} if i % 10 == 0 else None,
                }
            )
        raw_insert(store, service, "logs", logs)
    raw_seconds = time.perf_counter() - started
    raw_rows = len(runs) + len(files) + len(logs)

    started = time.perf_counter()
    with service.transaction():
        for i in range(n_agents):
            service.heartbeat(
                {
                    "instance_name": f"agent-{i}",
                    "agent_type": "data",
                    "status": "OK",
                    "operational_state": "PROCESSING",
                    "hostname": "bench",
                    "pid": 1000 + i,
                }
            )
        types = ("run_imminent", "start_run", "stf_gen", "stf_ready", "end_run")
        messages = BY_NAME["workflow-messages"]
        for i in range(n_messages):
            run_number = 100010 + i * n_runs // max(n_messages, 1)
            service.create(
                messages,
                {
                    "message_type": types[i % 5],
                    "sender_agent": f"agent-{i % n_agents}",
                    "run_id": str(run_number),
                    "namespace": "bench",
                    "message_content": {"run_number": run_number, "n": i},
                },
            )
    service_seconds = time.perf_counter() - started
    return {
        "run_number": 100010 + n_runs // 2,
        "raw_rows": raw_rows,
        "raw_seconds": raw_seconds,
        "service_rows": n_agents + n_messages,
        "service_seconds": service_seconds,
    }


# -- measuring -------------------------------------------------------------------------------------


class ServerTimes(logging.Handler):
    """The access log's per-request milliseconds (the middleware logs them once the handler has
    built the whole body, before cheroot sends it): the server's share of a request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last = float("nan")

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 4 and isinstance(args[3], float):
            self.last = args[3]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


@dataclass
class Timing:
    path: str
    times_ms: list[float] = field(default_factory=list)  # client wall time
    server_ms: list[float] = field(default_factory=list)  # the access log's time
    size: int = 0
    errors: list[str] = field(default_factory=list)


def measure(
    session: requests.Session, base: str, path: str, count: int, deadline: float, html: bool, server: ServerTimes
) -> Timing:
    """``WARM_UP`` untimed requests, then ``count`` timed ones (at least 5, else until ``deadline``)."""
    out = Timing(path)
    kind = "text/html" if html else "application/json"

    def call() -> tuple[float, float]:
        server.last = float("nan")
        t = time.perf_counter()
        resp = session.get(base + path, timeout=60, allow_redirects=False)
        body = resp.content
        elapsed = (time.perf_counter() - t) * 1000
        if resp.status_code != 200 or not resp.headers.get("Content-Type", "").startswith(kind):
            out.errors.append(f"{path}: {resp.status_code} {resp.headers.get('Content-Type')} {body[:120]!r}")
        out.size = len(body)
        return elapsed, server.last

    for _ in range(WARM_UP):
        call()
    while len(out.times_ms) < count and (time.perf_counter() < deadline or len(out.times_ms) < 5):
        client, served = call()
        out.times_ms.append(client)
        out.server_ms.append(served)
    return out


def profile(srv: Any, path: str, renders: int = 5) -> str:
    """cProfile around ``renders`` calls of the WSGI app for ``path`` (no socket, this thread)."""
    from wsgiref.util import setup_testing_defaults

    def call() -> None:
        environ: dict[str, Any] = {}
        path_info, _, query = path.partition("?")
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path_info, QUERY_STRING=query, REQUEST_METHOD="GET")
        b"".join(srv.app(environ, lambda status, headers, exc_info=None: None))

    call()  # warm
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(renders):
        call()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
    return buf.getvalue()


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data (10,000 logs, 100 runs)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per measurement")
    parser.add_argument("--max-seconds", type=float, default=25.0, help="time limit of one measurement")
    parser.add_argument("--budget", type=float, default=170.0, help="time limit of the whole run, data included")
    parser.add_argument("--profile", action="append", default=[], metavar="PATH", help="profile renders of PATH")
    args = parser.parse_args(argv)

    def until(end: float, later: int) -> float:
        """This measurement's deadline: at most --max-seconds, leaving 3 s for each later one."""
        return min(time.perf_counter() + args.max_seconds, end - 3.0 * later)

    logging.basicConfig(level=logging.WARNING)

    from swf_lite.catalog import BY_NAME
    from swf_lite.config import Settings
    from swf_lite.server import SwfLiteServer

    scale = 10 if args.quick else 1
    sizes = {
        "n_logs": 100_000 // scale,
        "n_runs": 1_000 // scale,
        "files_per_run": 10,
        "n_agents": 20,
        "n_messages": 2_000 // scale,
    }
    overall = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="swf-lite-bench-")
    settings = Settings(
        data_dir=Path(tmp.name) / "data", http_port=0, https_port=0, log_level="WARNING", time_zone="UTC", tls=False
    )
    srv = SwfLiteServer(settings).start()
    server_times = ServerTimes()
    access = logging.getLogger("swf_lite.access")
    access.addHandler(server_times)
    access.setLevel(logging.INFO)
    access.propagate = False
    failures: list[str] = []
    rows = []
    try:
        facts = build(srv, **sizes)
        built = time.perf_counter() - overall
        run = facts["run_number"]
        stf = srv.ctx.service.list(BY_NAME["stf-files"], {"run_number": str(run)}, limit=1).rows[0]["file_id"]
        cases = [  # (page, JSON twin)
            ("/", "/api/logs/?limit=50"),
            ("/logs/", "/api/logs/?limit=50"),
            ("/logs/?levelname=ERROR", "/api/logs/?levelname=ERROR&limit=50"),
            ("/stf-files/", "/api/stf-files/?limit=50"),
            ("/runs/", "/api/runs/?limit=50"),
            (f"/runs/{run}/", f"/api/runs/?run_number={run}"),
            ("/agents/", "/api/systemagents/?limit=50"),
            ("/messages/", "/api/workflow-messages/?limit=50"),
            (f"/stf-files/{stf}/", f"/api/stf-files/{stf}/"),  # not in the brief's list: a second detail page
        ]
        with requests.Session() as session:
            expected = {"logs": sizes["n_logs"], "stf-files": sizes["n_runs"] * sizes["files_per_run"],
                        "runs": sizes["n_runs"], "systemagents": sizes["n_agents"],
                        "workflow-messages": sizes["n_messages"]}  # fmt: skip
            counts = {
                name: session.get(f"{srv.http_url}/api/{name}/?limit=1", timeout=60).json()["count"]
                for name in ("logs", "stf-files", "runs", "systemagents", "workflow-messages")
            }
            failures += [
                f"{name}: {counts[name]} stored, {n} expected" for name, n in expected.items() if counts[name] != n
            ]
            # the raw rows read back as the service's own: a run's files by its number, one file in full
            files = session.get(f"{srv.http_url}/api/stf-files/?run_number={run}&limit=50", timeout=60).json()
            if files["count"] != sizes["files_per_run"] or not files["results"][0]["file_id"].count("-") == 4:
                failures.append(f"stf-files of run {run}: {files}")
            # Steady state: requests go to any of the --threads workers and take any of the --db-pool
            # connections (each with its own caches and prepared statements). Visit every page that many
            # times first, so the timings are those of a server that has been up a while.
            s = srv.settings
            pool = max(s.threads, s.db_pool)
            warm_started = time.perf_counter()
            for _ in range(pool):
                for page_path, json_path in cases:
                    session.get(srv.http_url + page_path, timeout=60)
                    session.get(srv.http_url + json_path, timeout=60)
            print(f"warmed {pool} worker threads in {time.perf_counter() - warm_started:.1f} s", flush=True)
            end = overall + args.budget
            for i, (page_path, json_path) in enumerate(cases):
                left = 2 * (len(cases) - i) - 1  # measurements after the page's own
                page = measure(session, srv.http_url, page_path, args.requests, until(end, left), True, server_times)
                twin = measure(
                    session, srv.http_url, json_path, args.requests, until(end, left - 1), False, server_times
                )
                rows.append((page, twin))
                failures += page.errors[:3] + twin.errors[:3]
        profiles = [(path, profile(srv, path)) for path in args.profile]
    finally:
        srv.stop()
        tmp.cleanup()
    total = time.perf_counter() - overall

    print(
        f"swf-lite bench_pages: Python {platform.python_version()}, {os.cpu_count()} CPUs; data "
        + ", ".join(f"{n:,} {name}" for name, n in counts.items())
    )
    print(
        f"data build {built:.1f} s: raw SQL {facts['raw_rows']:,} rows in {facts['raw_seconds']:.1f} s "
        f"({facts['raw_rows'] / facts['raw_seconds']:,.0f}/s), service {facts['service_rows']:,} rows in "
        f"{facts['service_seconds']:.1f} s ({facts['service_rows'] / facts['service_seconds']:,.0f}/s)"
    )
    header = (
        f"{'page':<26} {'p50 ms':>7} {'p95 ms':>7} {'srv ms':>7} {'KiB':>5}  {'JSON twin':<36} {'p50 ms':>7}"
        f" {'p95 ms':>7} {'srv ms':>7} {'KiB':>5} {'ratio':>6} {'n':>3}  p50 < {TARGET_MS:g} ms"
    )
    print(header)
    print("-" * len(header))
    for page, twin in rows:
        ratio = median(page.times_ms) / median(twin.times_ms) if twin.times_ms else float("nan")
        verdict = "PASS" if median(page.times_ms) < TARGET_MS else "MISS"
        page_name, twin_name = (p.path.replace(str(stf), "<file_id>") for p in (page, twin))
        print(
            f"{page_name:<26} {median(page.times_ms):>7.1f} {p95(page.times_ms):>7.1f} {median(page.server_ms):>7.1f}"
            f" {page.size / 1024:>5.1f}  {twin_name:<36} {median(twin.times_ms):>7.1f} {p95(twin.times_ms):>7.1f}"
            f" {median(twin.server_ms):>7.1f} {twin.size / 1024:>5.1f} {ratio:>6.1f} {len(page.times_ms):>3}  {verdict}"
        )
    print(
        "p50/p95: client wall time per request (keep-alive, body read); srv: median of the server's own time "
        "(access log); ratio = page p50 / JSON p50; n = timed page requests after warm-up"
    )
    for line in failures:
        print("FAILED:", line)
    for path, text in profiles:
        print(f"\ncProfile, 5 renders of {path} (WSGI call, no socket):")
        print(text)
    print(f"finished {dt.datetime.now().isoformat(timespec='seconds')} in {total:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
