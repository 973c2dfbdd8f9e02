"""Live-stream benchmark (not a test): POST -> event latency and the API's latency next to open streams.

Starts swf-lite in-process on free ports (plain HTTP used throughout), then

1. opens 1, 10 and 100 stream subscribers (raw sockets read by one selector thread, so the
   clients cost little of the shared GIL), posts workflow messages one at a time and measures,
   for every (message, subscriber) pair, the time from just before the POST to the frame's arrival;
2. measures sequential ``POST /api/logs/`` and ``GET /api/runs/`` latency with no stream open and
   with 100 idle streams open, and prints the ratio (the same run is its own baseline).

Run: ``python bench/bench_sse.py`` (about 15-30 s; bounded by internal timeouts).
"""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from swf_lite.config import Settings
from swf_lite.server import SwfLiteServer

MESSAGES = {1: 200, 10: 100, 100: 40}  # messages posted per subscriber count
API_REQUESTS = 300
DEADLINE = 50.0  # seconds for the whole run


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Readers:
    """Stream subscribers on raw sockets, all read by one selector thread."""

    def __init__(self, host: str, port: int, token: str):
        self.addr = (host, port)
        self.token = token
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        self.lock = threading.Condition()
        self.received: dict[int, int] = {}  # message n -> subscribers that got it
        self.latencies: list[float] = []
        self.connected = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def open(self, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection(self.addr, timeout=5)
            request = (f"GET /api/messages/stream/?msg_types=bench HTTP/1.1\r\nHost: localhost\r\n"
                       f"Authorization: Token {self.token}\r\nAccept: text/event-stream\r\n\r\n")  # fmt: skip
            sock.sendall(request.encode())
            sock.setblocking(False)
            with self.lock:
                self.buffers[sock] = b""
                self.selector.register(sock, selectors.EVENT_READ)
        with self.lock:
            if not self.lock.wait_for(lambda: self.connected >= len(self.buffers), timeout=20):
                raise RuntimeError(f"only {self.connected} of {len(self.buffers)} streams connected")

    def close_all(self) -> None:
        with self.lock:
            for sock in list(self.buffers):
                self.selector.unregister(sock)
                sock.close()
            self.buffers.clear()
            self.connected = 0
            self.received.clear()
            self.latencies.clear()

    def _run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.05):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                now = time.perf_counter()
                with self.lock:
                    if sock not in self.buffers:
                        continue
                    if not data:
                        self.selector.unregister(sock)
                        del self.buffers[sock]
                        continue
                    buf = self.buffers[sock] + data
                    *lines, rest = buf.split(b"\n")
                    self.buffers[sock] = rest
                    for line in lines:
                        if line.startswith(b"event: connected"):
                            self.connected += 1
                        elif line.startswith(b"data: {") and b'"t0"' in line:
                            payload = json.loads(line[6:])
                            self.latencies.append(now - payload["t0"])
                            self.received[payload["n"]] = self.received.get(payload["n"], 0) + 1
                    self.lock.notify_all()

    def wait_for(self, n: int, count: int, timeout: float = 5.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.received.get(n, 0) >= count, timeout=timeout)


def api_latencies(session: requests.Session, base: str) -> dict[str, list[float]]:
    log = {"app_name": "bench", "instance_name": "bench-1", "timestamp": "2026-03-31T12:00:00", "level": 20,
           "levelname": "INFO", "message": "benchmark", "module": "bench", "funcname": "f", "lineno": 1,
           "process": 1, "thread": 1, "extra_data": None}  # fmt: skip
    out: dict[str, list[float]] = {"POST /api/logs/": [], "GET /api/runs/": []}
    for _ in range(API_REQUESTS):
        started = time.perf_counter()
        r = session.post(base + "/api/logs/", json=log, timeout=10)
        out["POST /api/logs/"].append(time.perf_counter() - started)
        assert r.status_code == 201, r.text
        started = time.perf_counter()
        r = session.get(base + "/api/runs/", timeout=10)
        out["GET /api/runs/"].append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
    return out


def wait_no_clients(session: requests.Session, base: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if session.get(base + "/api/messages/stream/status/", timeout=5).json()["connected_clients"] == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("closed streams were not noticed in time")


def main() -> int:
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="swf-lite-bench-"))
    settings = Settings(data_dir=data_dir, http_port=0, https_port=0, tls=False, log_level="WARNING",
                        time_zone="UTC", sse_max_clients=120, sse_heartbeat=1.0)  # fmt: skip
    srv = SwfLiteServer(settings).start()
    base = srv.http_url
    host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
    session = requests.Session()
    session.headers["Authorization"] = f"Token {srv.token}"
    readers = Readers(host, port, srv.token)
    rows: list[tuple[str, ...]] = []
    try:
        api_latencies(session, base)  # warm-up: connections, statements, caches
        for subscribers, count in MESSAGES.items():
            readers.open(subscribers)
            missing = 0
            for n in range(count):
                body = {"message_type": "bench", "message_content": {"n": n, "t0": time.perf_counter()}}
                r = session.post(base + "/api/workflow-messages/", json=body, timeout=10)
                assert r.status_code == 201, r.text
                if not readers.wait_for(n, subscribers):
                    missing += 1
            lat = list(readers.latencies)
            rows.append((f"POST -> event, {subscribers} subscriber(s)", f"{len(lat)}",
                         f"{statistics.median(lat) * 1000:.2f}", f"{pct(lat, 99) * 1000:.2f}",
                         f"missing {missing}" if missing else ""))  # fmt: skip
            readers.close_all()
            wait_no_clients(session, base)
            if time.monotonic() - started > DEADLINE:
                raise RuntimeError("benchmark exceeded its time budget")

        without = api_latencies(session, base)
        readers.open(100)
        with_streams = api_latencies(session, base)
        readers.close_all()
        for name in without:
            a, b = without[name], with_streams[name]
            rows.append((f"{name}, no streams", str(len(a)), f"{statistics.median(a) * 1000:.2f}",
                         f"{pct(a, 99) * 1000:.2f}", ""))  # fmt: skip
            rows.append((f"{name}, 100 open streams", str(len(b)), f"{statistics.median(b) * 1000:.2f}",
                         f"{pct(b, 99) * 1000:.2f}",
                         f"p50 x{statistics.median(b) / statistics.median(a):.2f}, "
                         f"p99 x{pct(b, 99) / pct(a, 99):.2f}"))  # fmt: skip
    finally:
        readers.stop.set()
        readers.close_all()
        session.close()
        srv.stop()

    header = ("measurement", "samples", "p50 ms", "p99 ms", "note")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        if len(r) != len(widths):  # every row has the header's columns (zip(strict=) needs 3.10)
            raise ValueError(f"row {r!r} has {len(r)} cells, the header {len(widths)}")
        cells = [r[i].ljust(w) if i == 0 else r[i].rjust(w) for i, w in enumerate(widths)]
        print("  ".join(cells))
    print(f"total {time.monotonic() - started:.1f} s (heartbeat 1 s; clients and server share one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
