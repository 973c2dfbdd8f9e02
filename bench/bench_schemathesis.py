"""A longer schemathesis run of swf-lite against its own OpenAPI document, with the CLI's report.

    pip install '.[test]'   # schemathesis is in the test extra; tests/test_fuzz.py runs a bounded pass
    python bench/bench_schemathesis.py [--max-examples 10] [--max-time 120] [--seed 1]

Starts swf-lite in this process on port 0 (a temporary data dir), then runs the ``schemathesis``
command (found next to this Python or on PATH) against ``/api/schema/`` with the admin token, one
worker, at most ``--max-examples`` cases per operation and ``--max-time`` seconds in all. Prints
schemathesis' report and exits with its status. A finding is either a server bug or a place where
the document says something the server does not do.

Left out, because the server is deliberately so:

* ``negative_data_rejection``: the server is lenient like DRF (``"5"`` is an integer, times
  may use a space or no zone, unknown query parameters and body keys are ignored);
* ``positive_data_acceptance``: uniqueness and the existence of a foreign key's target cannot be
  said in OpenAPI, so schema-valid bodies may still get a 400;
* the ``messages_stream`` operation (an endless event stream).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

EXCLUDED_CHECKS = ("negative_data_rejection", "positive_data_acceptance")
EXCLUDED_OPERATIONS = ("messages_stream",)


def schemathesis_command() -> str | None:
    beside = Path(sys.executable).parent / "schemathesis"
    return str(beside) if beside.exists() else shutil.which("schemathesis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=10, help="test cases per operation at most")
    parser.add_argument("--max-time", type=int, default=120, help="seconds for the whole run at most")
    parser.add_argument("--seed", type=int, default=1, help="random seed (reproducible runs)")
    parser.add_argument("--phases", default="coverage,fuzzing", help="schemathesis phases")
    parser.add_argument("--server-log", help="write swf-lite's own log (500 tracebacks) to this file")
    args = parser.parse_args(argv)
    command = schemathesis_command()
    if command is None:
        print("schemathesis is not installed: pip install schemathesis", file=sys.stderr)
        return 2

    server_log = logging.getLogger("swf_lite")
    server_log.propagate = False  # keep tracebacks of 500s out of schemathesis' report
    server_log.addHandler(logging.FileHandler(args.server_log) if args.server_log else logging.NullHandler())

    from swf_lite.config import Settings
    from swf_lite.server import SwfLiteServer

    with tempfile.TemporaryDirectory(prefix="swf-lite-st-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data", http_port=0, https_port=0, tls=False, log_level="ERROR", time_zone="UTC"
        )
        srv = SwfLiteServer(settings).start()
        try:
            cmd = [
                command, "run", f"{srv.http_url}/api/schema/",
                "--header", f"Authorization: Token {srv.token}",
                "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
                *(a for op in EXCLUDED_OPERATIONS for a in ("--exclude-operation-id", op)),
                "--max-examples", str(args.max_examples), "--max-time", str(args.max_time),
                "--seed", str(args.seed), "--phases", args.phases, "--workers", "1",
                "--request-timeout", "10", "--generation-database", "none", "--no-color",
            ]  # fmt: skip
            shown = " ".join(c if not c.startswith("Authorization") else "'Authorization: Token <t>'" for c in cmd)
            print("$", shown, flush=True)
            return subprocess.run(cmd, cwd=tmp, check=False, timeout=args.max_time + 120).returncode
        finally:
            srv.stop()


if __name__ == "__main__":
    sys.exit(main())
