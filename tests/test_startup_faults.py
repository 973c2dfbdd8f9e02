"""Start-up faults the user can fix end in one line naming the file and what to do, exit status 1,
and no traceback (``--log-level DEBUG`` adds it)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(data_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWF_LITE_")}
    cmd = [sys.executable, "-m", "swf_lite", "--data-dir", str(data_dir), "--http-port", "0", "--https-port", "0",
           "--quiet", *flags]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("swf-lite: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\x00" * 90])
def test_a_file_that_is_not_sqlite(tmp_path, content):
    data = tmp_path / "data"
    data.mkdir()
    (data / "swf-lite.sqlite3").write_bytes(content)
    one_line(start(data), str(data / "swf-lite.sqlite3"), "move it away")


def test_a_truncated_database(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "swf-lite.sqlite3"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 2000)
    con.commit()
    con.close()
    db.write_bytes(db.read_bytes()[:5000])  # the header promises pages that are gone
    one_line(start(data), str(db))


def test_a_data_dir_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data dir's parent should be")
    one_line(start(blocker / "data"), str(blocker / "data"), "--data-dir")


def test_a_bad_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    key.write_text("nonsense")
    one_line(start(tmp_path / "data", "--cert", str(cert), "--key", str(key)), str(cert), "--cert")


def test_debug_adds_the_traceback(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "swf-lite.sqlite3").write_bytes(b"garbage" * 200)
    result = start(data, "--log-level", "DEBUG")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("swf-lite: ")
