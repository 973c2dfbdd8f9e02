"""The load generator of ``bench/run.py``: client processes, one ``requests.Session`` per thread.

It runs in processes of its own (``multiprocessing``, spawn) so that the client does not share a GIL
with the server it measures. Each process is driven over a pipe: it gets a :class:`Load`, opens
its sessions and makes one untimed warm-up call per session (connection, TLS handshake), answers
``"ready"``, waits for ``"go"`` (sent to every process at once, so their timed windows overlap)
and returns a :class:`Part` with its calls, latencies, errors and its own CPU time.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

MAX_ERROR_TEXTS = 3  # error messages kept per process (the count is always complete)


@dataclass
class Load:
    """One timed window of calls against one server, as one client process sees it."""

    method: str
    url: str  # may hold "{id}": filled with ``ids`` in turn (PATCH of existing rows)
    concurrency: int = 1  # threads in this process
    seconds: float = 2.0
    verify: str | bool = False
    token: str | None = None
    body: dict[str, Any] | None = None
    kind: str = "static"  # static | run (a new run_number per call) | heartbeat (one agent per thread)
    ids: list[str] = field(default_factory=list)
    seq_base: int = 0  # first run number of this window (unique per window and process)
    proc: int = 0  # index of the client process (agent names per process and thread)
    value_key: str | None = None  # collect this key of every response (counter values)
    expect: tuple[int, ...] = (200, 201)


@dataclass
class Part:
    """What one client process measured (latencies in seconds, CPU in seconds)."""

    calls: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    values: list[int] = field(default_factory=list)  # includes the warm-up calls' values
    cpu: float = 0.0


def _body_for(load: Load, thread: int, seq: itertools.count) -> dict[str, Any] | None:
    """The request body of one call: fresh where the server would refuse a repeat (unique keys)."""
    if load.kind == "run":
        return {**(load.body or {}), "run_number": load.seq_base + next(seq)}
    if load.kind == "heartbeat":
        return {**(load.body or {}), "instance_name": f"bench-agent-{load.proc}-{thread}"}
    return load.body


def run_window(load: Load, conn: Connection) -> Part:
    """Warm up, report ready, wait for go, call until the window ends; return the measurements."""
    import requests

    part = Part()
    lock = threading.Lock()
    seq = itertools.count()  # next() is atomic under the GIL
    go = threading.Event()
    warm = threading.Barrier(load.concurrency + 1)
    end = [0.0]

    def worker(index: int) -> None:
        latencies: list[float] = []
        values: list[int] = []
        errors: list[str] = []
        error_count = calls = 0
        ids = itertools.cycle(load.ids[index :: load.concurrency] or load.ids or [""])
        with requests.Session() as session:
            session.trust_env = False  # no proxies, no netrc: every call goes straight to 127.0.0.1
            if load.token:
                session.headers["Authorization"] = f"Token {load.token}"

            def call() -> bool:
                url = load.url.replace("{id}", next(ids))
                r = session.request(load.method, url, json=_body_for(load, index, seq), verify=load.verify,
                                    timeout=30, allow_redirects=False)  # fmt: skip
                if r.status_code not in load.expect:
                    if len(errors) < MAX_ERROR_TEXTS:
                        errors.append(f"{load.method} {url}: {r.status_code} {r.text[:200]}")
                    return False
                if load.value_key:
                    values.append(r.json()[load.value_key])
                return True

            try:
                if not call():  # warm-up: connection and TLS handshake, not timed
                    error_count += 1
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                error_count += 1
                errors.append(f"warm-up: {exc!r}")
            warm.wait()
            go.wait()
            while time.perf_counter() < end[0]:
                t0 = time.perf_counter()
                try:
                    ok = call()
                except Exception as exc:  # noqa: BLE001
                    ok = False
                    if len(errors) < MAX_ERROR_TEXTS:
                        errors.append(repr(exc))
                latencies.append(time.perf_counter() - t0)
                calls += 1
                error_count += not ok
        with lock:
            part.calls += calls
            part.latencies += latencies
            part.values += values
            part.error_count += error_count
            part.errors += errors[: MAX_ERROR_TEXTS - len(part.errors)]

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(load.concurrency)]
    for t in threads:
        t.start()
    warm.wait()
    conn.send("ready")
    if conn.recv() != "go":
        raise RuntimeError("the bench process sent something other than go")
    cpu0 = time.process_time()
    start = time.perf_counter()
    end[0] = start + load.seconds
    go.set()
    for t in threads:
        t.join()
    part.elapsed = time.perf_counter() - start
    part.cpu = time.process_time() - cpu0
    return part


def client_main(conn: Connection) -> None:
    """Entry point of a client process: windows until it receives None."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would let them override verify=
        os.environ.pop(name, None)
    import requests  # noqa: F401 - imported once here, not inside the first timed window

    while True:
        load = conn.recv()
        if load is None:
            return
        try:
            conn.send(run_window(load, conn))
        except Exception as exc:  # noqa: BLE001 - the bench process reports it
            conn.send(exc)
