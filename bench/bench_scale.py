"""Several swf-lite processes on one PostgreSQL database (issue 14's figures for the README).

    python bench/bench_scale.py [--seconds 3] [--messages 300] [--threads 8]

Starts a throwaway PostgreSQL cluster (``tests/pg.py``: the server binaries of Debian's
``postgresql`` package), then ``python -m swf_lite`` processes on it, and measures:

* counter calls/s (``POST /api/state/next-run-number/``, plain HTTP, token) from ``--threads`` client
  threads against one process, then the same threads spread over two processes; every value handed
  out is checked to be unique;
* message fan-out: a stream client on each process; messages posted to process A; the time from the
  POST's start to the event on A's stream and on B's stream (p50/p99), and that both streams received
  every message once, in order.

Absolute numbers depend on the machine (on 2 cores the clients, PostgreSQL and both servers share
them); the same run also reports one process on SQLite for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the cluster helper the tests use

import pg  # noqa: E402
import requests  # noqa: E402

from swf_lite.testing import ServerOptions, SubprocessServer  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def counters(servers: list[SubprocessServer], threads: int, seconds: float) -> tuple[float, list[int]]:
    """Counter calls/s with ``threads`` client threads spread round-robin over ``servers``."""
    values: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(threads + 1)
    end = [0.0]

    def worker(srv: SubprocessServer) -> None:
        mine = []
        with requests.Session() as s:
            s.trust_env = False
            s.headers["Authorization"] = f"Token {srv.token}"
            url = srv.http_url + "/api/state/next-run-number/"
            s.post(url, timeout=30).raise_for_status()  # warm-up: the connection
            go.wait()
            while time.perf_counter() < end[0]:
                r = s.post(url, timeout=30)
                r.raise_for_status()
                mine.append(r.json()["run_number"])
        with lock:
            values.extend(mine)

    pool = [threading.Thread(target=worker, args=(servers[i % len(servers)],)) for i in range(threads)]
    for t in pool:
        t.start()
    end[0] = time.perf_counter() + seconds + 0.05
    go.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return len(values) / (time.perf_counter() - started), values


class Stream:
    """A stream client that timestamps each event it receives."""

    def __init__(self, srv: SubprocessServer):
        self.arrived: dict[int, float] = {}
        self.order: list[int] = []
        self.response = requests.get(srv.http_url + "/api/messages/stream/", stream=True, timeout=(5, 60),
                                     headers={"Authorization": f"Token {srv.token}"})  # fmt: skip
        self.response.raise_for_status()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(chunk_size=1):
                if line.startswith(b"data: ") and b'"n":' in line:
                    n = int(line.split(b'"n":', 1)[1].split(b",")[0].split(b"}")[0])
                    self.arrived[n] = time.perf_counter()
                    self.order.append(n)
        except Exception:  # noqa: BLE001 - closed
            pass

    def close(self) -> None:
        self.response.close()


def fan_out(a: SubprocessServer, b: SubprocessServer, messages: int) -> dict[str, list[float]]:
    streams = {"same process": Stream(a), "other process": Stream(b)}
    time.sleep(0.5)
    sent: dict[int, float] = {}
    with requests.Session() as s:
        s.trust_env = False
        s.headers["Authorization"] = f"Token {a.token}"
        for n in range(messages):
            sent[n] = time.perf_counter()
            body = {"message_type": "bench", "message_content": {"msg_type": "bench", "n": n}}
            s.post(a.http_url + "/api/workflow-messages/", json=body, timeout=30).raise_for_status()
            time.sleep(0.002)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(st.arrived) < messages for st in streams.values()):
        time.sleep(0.05)
    out = {}
    for name, st in streams.items():
        st.close()
        assert st.order == list(range(messages)), f"{name}: {len(st.order)} events, in order: {st.order[:5]}..."
        out[name] = [(st.arrived[n] - sent[n]) * 1000 for n in range(messages)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each counter window")
    parser.add_argument("--threads", type=int, default=8, help="client threads calling the counter")
    parser.add_argument("--messages", type=int, default=300, help="messages of the fan-out measurement")
    args = parser.parse_args()
    bindir = pg.binaries()
    if bindir is None:
        print("no PostgreSQL server binaries (apt-get install postgresql)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="swf-lite-scale-"))
    cluster = pg.Cluster(bindir).start()
    servers: list[SubprocessServer] = []
    try:
        url = cluster.database()
        options = ServerOptions(tls=False, settings={"db": url})
        servers = [SubprocessServer(work / f"p{i}", options).start() for i in range(2)]
        lite = SubprocessServer(work / "sqlite", ServerOptions(tls=False)).start()
        servers.append(lite)
        rows = []
        for label, group in (("SQLite, 1 process", [lite]), ("PostgreSQL, 1 process", servers[:1]),
                             ("PostgreSQL, 2 processes", servers[:2])):  # fmt: skip
            rate, values = counters(group, args.threads, args.seconds)
            assert len(values) == len(set(values)), f"{label}: repeated counter values"
            rows.append((label, rate, len(values)))
        print(f"counter POST /api/state/next-run-number/, {args.threads} client threads, {args.seconds:g} s:")
        for label, rate, n in rows:
            print(f"  {label:<26} {rate:7.0f} calls/s  ({n} values, all unique)")
        latencies = fan_out(servers[0], servers[1], args.messages)
        print(f"message fan-out, {args.messages} messages posted to process A, POST start -> event received:")
        for name, ms in latencies.items():
            print(f"  stream on the {name:<14} p50 {statistics.median(ms):6.2f} ms  p99 {percentile(ms, 99):6.2f} ms"
                  f"  (all {len(ms)} once, in order)")  # fmt: skip
    finally:
        for srv in servers:
            srv.stop()
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
