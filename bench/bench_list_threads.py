"""Reproducer: CPU per 1,000-row list call with 1 and 16 threads calling swf-lite's WSGI app directly
(no sockets, no client process), to chase why the list's server CPU per call multiplies under
concurrency (bench/run.py: 0.56x the bare baseline at c=16 against 1.05x at c=1).

    python bench/bench_list_threads.py [--calls 160] [--threads 1,16] [--switch-interval 0.005]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from swf_lite.config import Settings  # noqa: E402
from swf_lite.server import SwfLiteServer  # noqa: E402


def lists(call: Any, n: int) -> None:
    for _ in range(n):
        call("GET", "/api/runs/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=160, help="list calls per measurement")
    parser.add_argument("--threads", default="1,16", help="thread counts to measure (comma list)")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (default 0.005)")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory(prefix="swf-lite-lt-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "d", http_port=0, https_port=0, tls=False, log_level="WARNING")
        srv = SwfLiteServer(settings).start()
        try:
            app = srv.wsgi_app

            def call(method: str, path: str, body: bytes = b"") -> bytes:
                environ: dict[str, Any] = {
                    "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                    "SERVER_PORT": "8002", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
                    "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                    "CONTENT_TYPE": "application/json", "wsgi.errors": sys.stderr, "REMOTE_ADDR": "127.0.0.1",
                    "HTTP_AUTHORIZATION": f"Token {srv.token}",
                }  # fmt: skip
                return b"".join(app(environ, lambda status, headers, exc_info=None: None))

            for n in range(1000):
                run = {"run_number": n + 1, "start_time": "2026-03-31T12:00:00Z", "run_conditions": {"n": n}}
                call("POST", "/api/runs/", json.dumps(run).encode())
            for threads in (int(t) for t in args.threads.split(",")):
                per_thread = max(1, args.calls // threads)
                workers = [threading.Thread(target=lists, args=(call, per_thread)) for _ in range(threads)]
                cpu, wall = time.process_time(), time.perf_counter()
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                calls = per_thread * threads
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"{threads:3d} threads: {cpu / calls * 1000:6.1f} ms CPU per call, {calls / wall:6.1f} calls/s")
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
