"""One bench command (issue 13): swf-lite against bare baselines, measured in the same run.

    python bench/run.py [--seconds 1.5] [--rounds 3] [--cases logs,counter,...] [--quick] [--json PATH]

swf-lite (``SwfLiteServer``, port 0, a temporary data dir) and the baseline (a bare bottle + cheroot
app using the stdlib ``sqlite3`` directly, same certificate, thread count and keep-alive limit, over
a copy of swf-lite's database) each run in a process of their own; the load comes from separate
client processes (one ``requests.Session`` per thread, keep-alive, all to 127.0.0.1). Only one server
is under load at a time: rounds alternate swf-lite / baseline (the order flips every round) and the
table shows medians over the rounds. Also measured: cold start of ``python -m swf_lite`` until its
ready line (against a bare server's) and the RSS of the swf-lite process after the run.

Prints a table with PASS/MISS against the targets and writes every number to a JSON file. Timings
never fail the run; the exit status is 1 if any call got a wrong status or a counter value repeated.
Compare ratios, not absolute numbers: those depend on the machine and whatever else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import multiprocessing
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # exported globally on some machines
    os.environ.pop(_name, None)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without install
sys.path.insert(0, str(BENCH))  # the _helpers next to this file (also for the spawned processes)

import bench_counters  # noqa: E402
from _load import Load, Part, client_main  # noqa: E402 - after the sys.path lines
from _servers import BARE_READY, host_bare, host_lite, rss_mb  # noqa: E402

P99_TARGET_MS = 50.0
COLD_START_TARGET_S = 0.3
RSS_TARGET_MB = 60.0
LIST_ROWS = 1000
STF_FILES = 64
LOG_ROWS = 100_000
MESSAGE_STREAMS = 10
MP = multiprocessing.get_context("spawn")

LOG_RECORD = {**bench_counters.LOG_RECORD, "module": "bench_run"}  # the record bench_counters posts


@dataclass(frozen=True)
class Case:
    """One measured job: swf-lite's call, the baseline's equivalent and the ratio it must reach."""

    name: str
    title: str
    method: str
    lite_path: str
    bare_path: str
    target: float | None  # swf-lite req/s at least this times the baseline's (None: p99 only)
    tls: bool = False
    token: bool = False
    body: dict[str, Any] | None = None
    kind: str = "static"
    value_key: str | None = None
    ids: bool = False  # the path holds {id}: an STF file of the server's own database
    streams: int = 0  # message streams held open on each server while the case runs


# in running order: the 1,000-row list is measured before POST /api/runs/ adds rows
CASES = (
    Case("logs", "POST /api/logs/ (HTTP)", "POST", "/api/logs/", "/logs/", 0.8, body=LOG_RECORD),
    Case(
        "counter",
        "POST next-run-number (HTTPS, token)",
        "POST",
        "/api/state/next-run-number/",
        "/counter/",
        0.8,
        tls=True,
        token=True,
        body={},
        value_key="run_number",
    ),  # fmt: skip
    Case("runs_list", f"GET /api/runs/ ({LIST_ROWS:,} rows)", "GET", "/api/runs/", "/runs/", 0.6),
    Case(
        "logs_filter",
        f"GET /api/logs/?levelname=ERROR&limit=100 ({LOG_ROWS // 1000}k)",
        "GET",
        "/api/logs/?levelname=ERROR&limit=100",
        "/logs/?levelname=ERROR&limit=100",
        None,
    ),  # fmt: skip
    Case("dashboard", "GET / (dashboard page)", "GET", "/", "/page/", None),
    Case("logs_page", "GET /logs/ (page)", "GET", "/logs/", "/page/logs/", None),
    Case(
        "runs_post",
        "POST /api/runs/ (HTTP, token)",
        "POST",
        "/api/runs/",
        "/runs/",
        0.8,
        token=True,
        body={"start_time": "2026-03-31T10:00:00", "run_conditions": {"beam": "on"}},
        kind="run",
    ),  # fmt: skip
    Case(
        "stf_patch",
        "PATCH /api/stf-files/{id}/ (HTTP, token)",
        "PATCH",
        "/api/stf-files/{id}/",
        "/stf-files/{id}/",
        0.8,
        token=True,
        body={"status": "processing", "tf_count": 7},
        ids=True,
    ),  # fmt: skip
    Case(
        "heartbeat",
        "POST /api/systemagents/heartbeat/ (token)",
        "POST",
        "/api/systemagents/heartbeat/",
        "/heartbeat/",
        0.8,
        token=True,
        kind="heartbeat",
        body={"agent_type": "test", "status": "OK", "operational_state": "PROCESSING"},
    ),  # fmt: skip
    Case(
        "messages",
        f"POST /api/workflow-messages/ ({MESSAGE_STREAMS} streams)",
        "POST",
        "/api/workflow-messages/",
        "/messages/",
        0.8,
        token=True,
        body={
            "message_type": "stf_gen",
            "sender_agent": "daq-simulator",
            "namespace": "bench",
            "run_id": "100",
            "message_content": {"msg_type": "stf_gen", "run_id": 100, "filename": "swf.100.000001.stf"},
        },
        streams=MESSAGE_STREAMS,
    ),  # fmt: skip
)
BY_NAME = {c.name: c for c in CASES}


# -- processes -----------------------------------------------------------------------------------


class Host:
    """A server process (swf-lite or the baseline) and its command pipe."""

    def __init__(self, target: Any, *args: Any):
        self.conn, child = MP.Pipe()
        self.proc = MP.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()
        facts = self.conn.recv()
        if isinstance(facts, Exception):
            raise facts
        self.facts: dict[str, Any] = facts

    def ask(self, cmd: str) -> Any:
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.ask("stop")
            except (OSError, EOFError):
                pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


class Clients:
    """The client processes; a window's threads are split evenly across them."""

    def __init__(self, count: int):
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(count):
            conn, child = MP.Pipe()
            proc = MP.Process(target=client_main, args=(child,), daemon=True)
            proc.start()
            self.conns.append(conn)
            self.procs.append(proc)

    def run(self, load: Load, server: Host) -> tuple[list[Part], float]:
        """One timed window on every client process at once; returns the parts and the server's CPU seconds."""
        n = len(self.conns)
        shares = [load.concurrency // n + (i < load.concurrency % n) for i in range(n)]
        used = [(conn, share, i) for i, (conn, share) in enumerate(zip(self.conns, shares)) if share]
        for conn, share, i in used:
            conn.send(replace(load, concurrency=share, proc=i, seq_base=load.seq_base + i * 100_000))
        for conn, _, _ in used:
            msg = conn.recv()
            if isinstance(msg, Exception):
                raise msg
        cpu0 = server.ask("cpu")
        for conn, _, _ in used:
            conn.send("go")
        parts = []
        for conn, _, _ in used:
            msg = conn.recv()
            if isinstance(msg, Exception):
                raise msg
            parts.append(msg)
        return parts, server.ask("cpu") - cpu0

    def stop(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


# -- measuring -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def window(parts: list[Part], server_cpu: float) -> dict[str, Any]:
    """One round's numbers from its client parts."""
    calls = sum(p.calls for p in parts)
    elapsed = max((p.elapsed for p in parts), default=0.0)
    latencies = [x for p in parts for x in p.latencies]
    cpu = sum(p.cpu for p in parts)
    return {
        "calls": calls,
        "seconds": elapsed,
        "rps": calls / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": sum(p.error_count for p in parts),
        "error_texts": [t for p in parts for t in p.errors][:5],
        "client_cpu_us": cpu / calls * 1e6 if calls else float("nan"),
        "client_busy": cpu / elapsed / len(parts) if elapsed and parts else float("nan"),  # per process, 1 = a core
        "server_cpu_us": server_cpu / calls * 1e6 if calls else float("nan"),
    }


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rounds) if rounds else float("nan")


@dataclass
class Side:
    """What a server's case needs: base URLs, token, CA bundle, STF file ids."""

    name: str
    host: Host
    http: str
    https: str
    token: str
    verify: str | bool
    stf_ids: list[str] = field(default_factory=list)


def load_for(case: Case, side: Side, seconds: float, concurrency: int, seq_base: int) -> Load:
    path = case.lite_path if side.name == "swf-lite" else case.bare_path
    return Load(
        method=case.method,
        url=(side.https if case.tls else side.http) + path,
        concurrency=concurrency,
        seconds=seconds,
        verify=side.verify if case.tls else False,
        token=side.token if case.token else None,
        body=case.body,
        kind=case.kind,
        ids=side.stf_ids if case.ids else [],
        seq_base=seq_base,
        value_key=case.value_key,
    )


def measure_case(case: Case, sides: list[Side], clients: Clients, args: argparse.Namespace, seq: list[int],
                 counter_values: dict[str, list[int]]) -> list[dict[str, Any]]:  # fmt: skip
    """Warm-up, then ``args.rounds`` alternating rounds per concurrency; one result row per concurrency."""
    rows = []

    def one(side: Side, concurrency: int, seconds: float) -> dict[str, Any]:
        seq[0] += 1_000_000  # a fresh block of run numbers per window
        parts, cpu = clients.run(load_for(case, side, seconds, concurrency, seq[0]), side.host)
        counter_values[side.name] += [v for p in parts for v in p.values]
        return window(parts, cpu)

    warm_errors = {s.name: 0 for s in sides}
    for side in sides:  # untimed: per-thread connections and caches of the servers' workers
        warm_errors[side.name] += one(side, max(args.concurrency), args.warmup)["errors"]
    for concurrency in args.concurrency:
        results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in sides}
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                results[side.name].append(one(side, concurrency, args.seconds))
        row: dict[str, Any] = {"case": case.name, "title": case.title, "concurrency": concurrency,
                               "target_ratio": case.target, "rounds": results}  # fmt: skip
        for name, rounds in results.items():
            row[name] = {k: median_of(rounds, k) for k in ("rps", "p50_ms", "p99_ms", "client_cpu_us",
                                                            "client_busy", "server_cpu_us")}  # fmt: skip
            warm = warm_errors[name] if concurrency == args.concurrency[0] else 0  # counted once per case
            row[name]["errors"] = sum(x["errors"] for x in rounds) + warm
            row[name]["calls"] = sum(x["calls"] for x in rounds)
            row[name]["error_texts"] = [t for x in rounds for t in x["error_texts"]][:3]
        lite, bare = row["swf-lite"], row["baseline"]
        row["ratio"] = lite["rps"] / bare["rps"] if bare["rps"] else float("nan")
        misses = []
        if case.target is not None and not row["ratio"] >= case.target:
            misses.append(f"ratio<{case.target:g}")
        if concurrency >= 16 and not lite["p99_ms"] < P99_TARGET_MS:
            misses.append(f"p99>={P99_TARGET_MS:g}ms")
        row["verdict"] = "MISS " + ",".join(misses) if misses else "PASS"
        rows.append(row)
        print(f"  {case.name} c={concurrency}: {lite['rps']:.0f} vs {bare['rps']:.0f} req/s, {row['verdict']}",
              flush=True)  # fmt: skip
    return rows


# -- set-up --------------------------------------------------------------------------------------


def seed(side: Side) -> None:
    """1,000 runs and some STF files in swf-lite, through its API (the baseline gets a copy)."""
    import requests

    with requests.Session() as s:
        s.trust_env = False
        s.headers["Authorization"] = f"Token {side.token}"
        run_ids = []
        for i in range(LIST_ROWS):
            body = {
                "run_number": 100 + i,
                "start_time": "2026-03-31T10:00:00",
                "run_conditions": {"beam": "on", "i": i},
            }
            r = s.post(side.http + "/api/runs/", json=body, timeout=30)
            r.raise_for_status()
            run_ids.append(r.json()["run_id"])
        for i in range(STF_FILES):
            body = {
                "run": run_ids[i % 10],
                "stf_filename": f"swf.{100 + i % 10}.{i:06d}.stf",
                "file_size_bytes": 1 << 20,
            }
            r = s.post(side.http + "/api/stf-files/", json=body, timeout=30)
            r.raise_for_status()
            side.stf_ids.append(r.json()["file_id"])


def seed_logs(side: Side, db_path: str, count: int) -> None:
    """``count`` log rows, one in ten ERROR, written straight into swf-lite's database (through the
    API it would take minutes): copies of a row swf-lite stored itself, so values keep its format."""
    import requests

    levels = [("ERROR", 40)] + [("INFO", 20)] * 6 + [("WARNING", 30)] * 2 + [("DEBUG", 10)]
    r = requests.post(side.http + "/api/logs/", json={**LOG_RECORD, "levelname": "ERROR", "level": 40}, timeout=30)
    r.raise_for_status()
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout = 15000")
        cursor = con.execute('SELECT * FROM "logs" ORDER BY "id" DESC LIMIT 1')
        cols = [d[0] for d in cursor.description if d[0] != "id"]
        template = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
        base = dt.datetime.fromisoformat(str(template["timestamp"]).replace("Z", ""))
        sql = f'INSERT INTO "logs" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'

        def row(i: int) -> list[Any]:
            name, level = levels[i % len(levels)]
            when = (base - dt.timedelta(seconds=count - i)).isoformat(sep=" ")
            values = {**template, "levelname": name, "level": level, "timestamp": when, "message": f"bench log {i}"}
            return [values[c] for c in cols]

        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql, (row(i) for i in range(count)))
        con.execute("COMMIT")
        con.execute("ANALYZE")
    finally:
        con.close()


class Streams:
    """Message-stream clients held open on swf-lite while a case runs: threads of the bench process,
    which only waits on pipes meanwhile. They count the events they receive."""

    def __init__(self, base: str, token: str, count: int, path: str = "/api/messages/stream/"):
        import requests

        self.events = 0
        self.lock = threading.Lock()
        self.responses = []
        self.threads = []
        for _ in range(count):
            session = requests.Session()
            session.trust_env = False
            r = session.get(base + path, headers={"Authorization": f"Token {token}"},
                            stream=True, timeout=(5, 120))  # fmt: skip
            r.raise_for_status()
            self.responses.append(r)
            thread = threading.Thread(target=self._read, args=(r,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _read(self, response: Any) -> None:
        try:
            for line in response.iter_lines():
                if line.startswith(b"id: "):
                    with self.lock:
                        self.events += 1
        except Exception:  # noqa: BLE001 - closed by close()
            pass

    def close(self) -> None:
        for r in self.responses:  # wake the blocked readers first: r.close() waits for their read
            sock = getattr(getattr(r.raw, "_connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for r in self.responses:
            r.close()
        for t in self.threads:
            t.join(timeout=2)


def stored_count(side: Side, path: str) -> int:
    import requests

    r = requests.get(side.http + path, params={"limit": 1}, timeout=30)
    r.raise_for_status()
    return int(r.json()["count"])


def copy_db(src: str, dst: Path) -> None:
    """The baseline's database: a consistent copy of swf-lite's (sqlite3 backup API)."""
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def wait_ready(cmd: list[str], prefix: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawning ``cmd`` until it prints a line starting with ``prefix``; RSS (MB) then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                elapsed = time.perf_counter() - t0
                return elapsed, rss_mb(proc.pid).get("rss", float("nan"))
        raise RuntimeError(f"{cmd[:3]} exited without its ready line: {proc.stderr.read() if proc.stderr else ''}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cold_start(work: Path, repeat: int, cert: str, key: str, threads: int) -> dict[str, Any]:
    """``python -m swf_lite`` on port 0 until its ready line: new data dirs, an existing one, a bare server."""
    # Bytecode as a user's Python has it: pip compiles an installed package, and a checkout's first run
    # writes __pycache__; a machine with PYTHONDONTWRITEBYTECODE set would otherwise compile every one
    # of swf-lite's modules at every start (~0.2 s). The cache goes to the bench's temporary dir.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWF_LITE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    lite = [sys.executable, "-m", "swf_lite", "--http-port", "0", "--https-port", "0", "--quiet", "--data-dir"]
    bare_cmd = [sys.executable, str(BENCH / "_servers.py"), cert, key, str(threads)]
    wait_ready([*lite, str(work / "cold-warm-up")], "swf-lite ready", env)  # untimed: writes the bytecode
    wait_ready(bare_cmd, BARE_READY, env)
    out: dict[str, Any] = {"new_dir": [], "existing_dir": [], "bare": [], "rss_at_ready_mb": []}
    for i in range(repeat):
        s, rss = wait_ready([*lite, str(work / f"cold{i}")], "swf-lite ready", env)
        out["new_dir"].append(s)
        out["rss_at_ready_mb"].append(rss)
        out["existing_dir"].append(wait_ready([*lite, str(work / f"cold{i}")], "swf-lite ready", env)[0])
        out["bare"].append(wait_ready(bare_cmd, BARE_READY, env)[0])
    for k in ("new_dir", "existing_dir", "bare", "rss_at_ready_mb"):
        out[k + "_median"] = statistics.median(out[k])
    return out


# -- report --------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'case':<42} {'c':>2} {'lite/s':>7} {'base/s':>7} {'ratio':>5} {'target':>6} {'lite p50':>8} "
            f"{'p99':>6} {'base p50':>8} {'p99':>6} {'srv µs':>6} {'base':>5} {'errors':>6} {'cli µs':>6} {'cli %':>5}"
            "  verdict")  # fmt: skip
    print(head)
    print("-" * len(head))
    for row in rows:
        lite, bare = row["swf-lite"], row["baseline"]
        cli_us = max(lite["client_cpu_us"], bare["client_cpu_us"])
        busy = max(lite["client_busy"], bare["client_busy"]) * 100
        print(
            f"{row['title']:<42} {row['concurrency']:>2} {lite['rps']:>7.0f} {bare['rps']:>7.0f} {row['ratio']:>5.2f}"
            f" {_target(row['target_ratio']):>6} {lite['p50_ms']:>8.2f} {lite['p99_ms']:>6.1f}"
            f" {bare['p50_ms']:>8.2f} {bare['p99_ms']:>6.1f} {lite['server_cpu_us']:>6.0f}"
            f" {bare['server_cpu_us']:>5.0f} {lite['errors'] + bare['errors']:>6}"
            f" {cli_us:>6.0f} {busy:>5.0f}  {row['verdict']}"
        )


def _target(ratio: float | None) -> str:
    return "-" if ratio is None else "≥" + format(ratio, "g")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Throughput against concurrency, swf-lite and baseline, one panel per case (needs the bench
    extra: ``pip install '.[bench]'``, i.e. matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: skipped (matplotlib is not installed: pip install '.[bench]')")
        return
    cases = list(dict.fromkeys(r["case"] for r in rows))
    cols = 2 if len(cases) > 1 else 1
    nrows = math.ceil(len(cases) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.5 * cols, 2.6 * nrows + 0.6), squeeze=False)
    for ax, name in zip(axes.flat, cases):
        mine = [r for r in rows if r["case"] == name]
        conc = [r["concurrency"] for r in mine]
        for side, style in (("swf-lite", "o-"), ("baseline", "s--")):
            ax.plot(conc, [r[side]["rps"] for r in mine], style, label=side)
        ratios = ", ".join(f"c={r['concurrency']}: {r['ratio']:.2f}" for r in mine)
        ax.set_title(f"{mine[0]['title']}\nratio {ratios}", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(conc, [str(c) for c in conc])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrent clients", fontsize=8)
        ax.set_ylabel("req/s", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(cases) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"cases (in running order): {', '.join(c.name for c in CASES)}. Each case runs ~2 x rounds x "
        "seconds per concurrency plus a short warm-up (defaults: ~20 s per case, ~2.5 min in all; --quick ~1 min).",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="length of each timed round (default 1.5; quick 0.5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per server and concurrency (default 3; quick 2)"
    )
    parser.add_argument("--cases", default=",".join(BY_NAME), help="comma list of cases (default: all)")
    parser.add_argument("--concurrency", default="1,16", help="comma list of client threads (default 1,16)")
    parser.add_argument("--clients", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
                        help="client processes sharing the threads (default: half the CPUs, 1-4)")  # fmt: skip
    parser.add_argument(
        "--cold-starts", type=int, default=None, help="cold starts measured (default 5; quick 3; 0 skips)"
    )
    parser.add_argument("--quick", action="store_true", help="shorter rounds, fewer rounds and cold starts: ~1 min")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json", help="where to write every number")
    parser.add_argument(
        "--plot", type=Path, default=None, help="PNG of the ratios (default: next to --json; needs matplotlib)"
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (0.5 if args.quick else 1.5)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.cold_starts = args.cold_starts if args.cold_starts is not None else (3 if args.quick else 5)
    args.warmup = min(0.5, args.seconds)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    args.case_list = [c for c in CASES if c.name in names]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="swf-lite-bench-"))
    rows: list[dict[str, Any]] = []
    counter_values: dict[str, list[int]] = {"swf-lite": [], "baseline": []}
    hosts: list[Host] = []
    clients: Clients | None = None
    result: dict[str, Any] = {}
    try:
        lite = Host(host_lite, str(work / "lite"))
        hosts.append(lite)
        f = lite.facts
        lite_side = Side("swf-lite", lite, f["http"], f["https"], f["token"], f["bundle"])
        print(f"swf-lite pid {f['pid']}: {f['http']} {f['https']}; seeding {LIST_ROWS} runs, {STF_FILES} STF files",
              flush=True)  # fmt: skip
        seed(lite_side)
        if any(c.name in ("logs_filter", "logs_page", "dashboard") for c in args.case_list):
            print(f"adding {LOG_ROWS:,} log rows", flush=True)
            seed_logs(lite_side, f["db"], LOG_ROWS)
        copy_db(f["db"], work / "bare.sqlite3")
        bare = Host(host_bare, str(work / "bare.sqlite3"), f["cert"], f["key"], f["token"], f["threads"],
                    f["keep_alive"])  # fmt: skip
        hosts.append(bare)
        with sqlite3.connect(work / "bare.sqlite3") as con:
            bare_ids = [r[0] for r in con.execute('SELECT "file_id" FROM "stf_files" ORDER BY "created_at"')]
        con.close()
        bare_side = Side("baseline", bare, bare.facts["http"], bare.facts["https"], f["token"], f["bundle"], bare_ids)
        clients = Clients(args.clients)
        seq = [0]
        for case in args.case_list:
            streams = {}  # on both servers: each stream's client reads every message the case posts
            if case.streams:
                streams["swf-lite"] = Streams(lite_side.http, lite_side.token, case.streams)
                streams["baseline"] = Streams(bare_side.http, f["token"], case.streams, "/messages/stream/")
            before = stored_count(lite_side, "/api/workflow-messages/") if streams else 0
            try:
                rows += measure_case(case, [lite_side, bare_side], clients, args, seq, counter_values)
            finally:
                if streams:
                    time.sleep(0.5)  # the last events in flight
                    for s in streams.values():
                        s.close()
            if streams:
                posted = stored_count(lite_side, "/api/workflow-messages/") - before
                got = streams["swf-lite"].events
                result["stream_events"] = {"streams": case.streams, "messages": posted, "received": got,
                                           "expected": posted * case.streams,
                                           "baseline_received": streams["baseline"].events}  # fmt: skip
                print(f"  streams: swf-lite's {got} events received of {posted * case.streams} "
                      f"({case.streams} x {posted} messages); the baseline's {streams['baseline'].events}",
                      flush=True)  # fmt: skip
        result["rss_mb"] = {"swf-lite": lite.ask("rss"), "baseline": bare.ask("rss")}
        clients.stop()
        clients = None
        for host in hosts:
            host.stop()
        hosts = []
        if args.cold_starts:
            print(f"cold start: {args.cold_starts} x (new data dir, existing data dir, bare)", flush=True)
            result["cold_start"] = cold_start(work, args.cold_starts, f["cert"], f["key"], f["threads"])
    finally:
        if clients:
            clients.stop()
        for host in hosts:
            host.stop()
        shutil.rmtree(work, ignore_errors=True)

    # -- report ----------------------------------------------------------------------------------
    print()
    print(f"swf-lite bench: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; "
          f"{args.rounds} rounds x {args.seconds:g} s per server and concurrency, alternating, medians shown; "
          f"servers: {f['threads']} threads, keep_alive_conn_limit {f['keep_alive']}; "
          f"load: {args.clients} client process(es), 1 requests.Session per thread")  # fmt: skip
    print_table(rows)
    print("lite/s, base/s: calls/s (median of rounds); ratio = swf-lite / baseline; p50/p99 in ms; errors: wrong "
          "status or exception, both servers; srv µs, base: server process CPU per call (swf-lite, baseline; "
          "independent of the client keeping up); cli µs: client CPU per call, cli %: client process busy (100 = "
          "one core, i.e. the client is the bottleneck)")  # fmt: skip
    checks: list[tuple[str, bool]] = []
    rss = result.get("rss_mb")
    if rss:
        lite_rss, bare_rss = rss["swf-lite"], rss["baseline"]
        ok = lite_rss["rss"] < RSS_TARGET_MB
        print(
            f"RSS after the run: swf-lite {lite_rss['rss']:.1f} MB (anon {lite_rss.get('anon', 0):.1f}, file/mmap "
            f"{lite_rss.get('file', 0):.1f}), baseline {bare_rss['rss']:.1f} MB (anon {bare_rss.get('anon', 0):.1f}); "
            f"target < {RSS_TARGET_MB:g} MB: {'PASS' if ok else 'MISS'}"
        )
        checks.append(("rss", ok))
    cold = result.get("cold_start")
    if cold:
        ok = cold["new_dir_median"] < COLD_START_TARGET_S
        print(
            f"cold start to ready (median of {args.cold_starts}): new data dir {cold['new_dir_median']:.3f} s, "
            f"existing {cold['existing_dir_median']:.3f} s, bare bottle+cheroot {cold['bare_median']:.3f} s "
            f"(ratio {cold['new_dir_median'] / cold['bare_median']:.1f}x); RSS at ready "
            f"{cold['rss_at_ready_mb_median']:.1f} MB; target new dir < {COLD_START_TARGET_S:g} s: "
            f"{'PASS' if ok else 'MISS'}"
        )
        checks.append(("cold_start", ok))
    failed = []
    for row in rows:
        for name in ("swf-lite", "baseline"):
            if row[name]["errors"]:
                failed.append(f"{name} {row['case']} c={row['concurrency']}: {row[name]['errors']} errors, e.g. "
                              f"{row[name]['error_texts'][:1]}")  # fmt: skip
    repeated = {}
    for name, values in counter_values.items():
        if values:
            repeated[name] = len(values) - len(set(values))
            print(f"counter values ({name}): {len(values)} handed out, "
                  f"{'all unique' if not repeated[name] else f'{repeated[name]} REPEATED'}")  # fmt: skip
    for line in failed:
        print("FAILED:", line)
    misses = [r for r in rows if r["verdict"] != "PASS"] + [c for c in checks if not c[1]]
    elapsed = time.perf_counter() - started
    print(f"targets: {len(rows) + len(checks) - len(misses)} PASS, {len(misses)} MISS; {elapsed:.0f} s; "
          f"finished {dt.datetime.now().isoformat(timespec='seconds')}")  # fmt: skip

    result.update({
        "meta": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(),
                 "platform": platform.platform(), "seconds": args.seconds, "rounds": args.rounds,
                 "concurrency": args.concurrency, "clients": args.clients, "threads": f["threads"],
                 "keep_alive": f["keep_alive"], "finished": dt.datetime.now().isoformat(timespec="seconds"),
                 "elapsed_s": elapsed},
        "targets": {"p99_ms_at_c16": P99_TARGET_MS, "cold_start_s": COLD_START_TARGET_S, "rss_mb": RSS_TARGET_MB,
                    "ratio": {c.name: c.target for c in CASES}},
        "cases": rows,
        "counter_repeats": repeated,
        "failures": failed,
    })  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"json: {args.json}")
    plot(rows, args.plot or args.json.with_suffix(".png"))
    return 1 if failed or any(repeated.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
