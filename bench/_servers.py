"""The two servers ``bench/run.py`` compares, each hosted in a process of its own.

* :func:`host_lite`: swf-lite (``SwfLiteServer``, plain HTTP + HTTPS, port 0) over a data dir.
* :func:`host_bare`: the baseline, a bare bottle app on two cheroot servers (plain + TLS, swf-lite's
  certificate, thread count and keep-alive limit) doing each job with the stdlib ``sqlite3`` module
  directly: one connection per thread, WAL, ``synchronous=NORMAL``, no validation, no change feed.
  Its database is a copy of swf-lite's (same tables, indexes and rows), so both do the same SQL work.

Both run in their own process so that neither shares a GIL (or a CPU clock) with the other or with
the clients. The bench process drives a host over a pipe: it receives the host's facts (URLs, token,
certificate, ...) and then answers ``"cpu"`` (process CPU seconds), ``"rss"`` (MB) and ``"stop"``.

``python bench/_servers.py CERT KEY`` starts only the bare servers and prints ``bare ready``: the
baseline of the cold-start measurement.
"""

from __future__ import annotations

import html
import json
import os
import queue
import socket
import sqlite3
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

BARE_READY = "bare ready"


def rss_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident set size (MB) of a process now, with its anonymous and file-backed parts (Linux:
    /proc; file-backed pages include the database's mmap, which is shared OS page cache), else this
    process's peak (ru_maxrss) only."""
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return {
            keys[ln.split()[0]]: int(ln.split()[1]) / 1024 for ln in lines if ln.split()[:1] and ln.split()[0] in keys
        }
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss": peak / (1024 * 1024 if sys.platform == "darwin" else 1024)}


def _serve_commands(conn: Connection, stop: Any) -> None:
    """Answer the bench process until it says stop."""
    while True:
        cmd = conn.recv()
        if cmd == "cpu":
            conn.send(time.process_time())
        elif cmd == "rss":
            conn.send(rss_mb())
        elif cmd == "stop":
            stop()
            conn.send("stopped")
            return
        else:
            conn.send(ValueError(f"unknown command {cmd!r}"))


# -- swf-lite ------------------------------------------------------------------------------------


def host_lite(conn: Connection, data_dir: str) -> None:
    """Start swf-lite in this process and hand its facts to the bench process."""
    import logging

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(name, None)
    logging.basicConfig(level=logging.WARNING)
    from swf_lite import cli

    cli.skip_unused_drivers()  # what python -m swf_lite does before it starts a SQLite server
    cli.limit_malloc_arenas()
    from swf_lite import tlschild
    from swf_lite.config import Settings

    settings = Settings(data_dir=Path(data_dir), http_port=0, https_port=0, log_level="WARNING", quiet=True,
                        time_zone="UTC")  # fmt: skip
    certificates = tlschild.start(settings)  # as python -m swf_lite: made by a child, no cryptography here
    from swf_lite.server import SwfLiteServer

    srv = SwfLiteServer(settings, certificates).start()
    ep = srv.endpoints[0].server
    assert srv.tls is not None and srv.https_url is not None
    conn.send(
        {
            "http": srv.http_url,
            "https": srv.https_url,
            "token": srv.token,
            "cert": str(srv.tls.cert),
            "key": str(srv.tls.key),
            "bundle": str(srv.ca_bundle),
            "db": settings.db_url.split("sqlite:///", 1)[1],
            "threads": ep.requests.min,
            "keep_alive": ep.keep_alive_conn_limit,
            "pid": os.getpid(),
        }
    )
    _serve_commands(conn, srv.stop)


# -- the bare baseline ---------------------------------------------------------------------------


class Db:
    """One sqlite3 connection per thread (as swf-lite keeps one per worker thread)."""

    def __init__(self, path: str):
        self.path = path
        self.local = threading.local()

    def con(self) -> sqlite3.Connection:
        con = getattr(self.local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one statement, one transaction
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("PRAGMA busy_timeout = 15000")
            self.local.con = con
        return con

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.con().execute(f'PRAGMA table_info("{table}")')}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def bare_app(db_path: str, token: str, workers: list[Callable[[int], None]] | None = None) -> Any:
    """The least each measured job needs: parse the body, one SQL statement (two for an upsert that
    inserts), a JSON answer. Token routes compare the Authorization header, nothing more. A message
    also goes to every open ``/messages/stream/`` client, the plain way: a queue per client that its
    stream's worker thread drains (``workers[0](n)`` adds n workers while streams hold theirs)."""
    import bottle

    app = bottle.Bottle()
    streams: list[queue.SimpleQueue[bytes]] = []
    streams_lock = threading.Lock()
    db = Db(db_path)
    expected = f"Token {token}"
    log_cols, run_cols, stf_cols = db.columns("logs"), db.columns("runs"), db.columns("stf_files")

    def body() -> dict[str, Any]:
        data = json.loads(bottle.request.body.read() or b"{}")
        return data if isinstance(data, dict) else {}

    def need_token() -> None:
        if bottle.request.get_header("Authorization") != expected:
            raise bottle.HTTPError(401, "no token")

    def stored(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, (dict, list)) else value

    def answer(data: Any, status: int = 200) -> str:
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        return json.dumps(data)

    def insert(table: str, data: dict[str, Any], cols: set[str]) -> dict[str, Any]:
        keys = [k for k in data if k in cols]
        sql = f'INSERT INTO "{table}" ({", ".join(keys)}) VALUES ({", ".join("?" * len(keys))}) RETURNING *'
        return dict(db.con().execute(sql, [stored(data[k]) for k in keys]).fetchone())

    @app.post("/logs/")
    def post_log() -> str:
        return answer(insert("logs", body(), log_cols), 201)

    @app.post("/counter/")
    def counter() -> str:
        need_token()
        bottle.request.body.read()
        row = (
            db.con()
            .execute(
                'UPDATE "swf_state" SET "last_run_number" = "last_run_number" + 1, "last_run_start_time" = ? '
                'WHERE "id" = 1 RETURNING "last_run_number"',
                (_now(),),
            )
            .fetchone()
        )
        return answer({"run_number": row[0], "status": "success"})

    @app.get("/runs/")
    def list_runs() -> str:
        rows = db.con().execute('SELECT * FROM "runs" ORDER BY "run_id"').fetchall()
        out = []
        for row in rows:
            item = dict(row)
            if item["run_conditions"] is not None:
                item["run_conditions"] = json.loads(item["run_conditions"])
            out.append(item)
        return answer(out)

    @app.post("/runs/")
    def post_run() -> str:
        need_token()
        return answer(insert("runs", body(), run_cols), 201)

    @app.route("/stf-files/<file_id>/", method="PATCH")
    def patch_stf(file_id: str) -> str:
        need_token()
        data = {k: v for k, v in body().items() if k in stf_cols and k != "file_id"}
        sets = ", ".join(f'"{k}" = ?' for k in data)
        row = (
            db.con()
            .execute(
                f'UPDATE "stf_files" SET {sets} WHERE "file_id" = ? RETURNING *', [*map(stored, data.values()), file_id]
            )
            .fetchone()
        )
        if row is None:
            raise bottle.HTTPError(404, "no such file")
        return answer(dict(row))

    @app.post("/heartbeat/")
    def heartbeat() -> str:
        need_token()
        data = body()
        now = _now()
        con = db.con()
        row = con.execute(
            'UPDATE "systemagents" SET "status" = ?, "operational_state" = ?, "last_heartbeat" = ?, "updated_at" = ? '
            'WHERE "instance_name" = ? RETURNING *',
            (data.get("status", "OK"), data.get("operational_state", "READY"), now, now, data["instance_name"]),
        ).fetchone()
        if row is not None:
            return answer(dict(row))
        row = con.execute(
            'INSERT INTO "systemagents" ("instance_name", "agent_type", "description", "status", "last_heartbeat", '
            '"workflow_enabled", "current_stf_count", "total_stf_processed", "operational_state", "created_at", '
            '"updated_at") VALUES (?, ?, \'\', ?, ?, 1, 0, 0, ?, ?, ?) RETURNING *',
            (data["instance_name"], data.get("agent_type", "other"), data.get("status", "OK"), now,
             data.get("operational_state", "READY"), now, now),
        ).fetchone()  # fmt: skip
        return answer(dict(row), 201)

    msg_cols = db.columns("workflow_messages")

    @app.post("/messages/")
    def post_message() -> str:
        need_token()
        data = {k: v for k, v in body().items() if k in msg_cols}
        data.update(message_id=uuid.uuid4().hex, sent_at=_now(), message_metadata={})
        keys = list(data)
        sql = (f'INSERT INTO "workflow_messages" ({", ".join(keys)}, "seq") VALUES ({", ".join("?" * len(keys))}, '
               '(SELECT COALESCE(MAX("seq"), 0) + 1 FROM "workflow_messages")) RETURNING *')  # fmt: skip
        row = dict(db.con().execute(sql, [stored(data[k]) for k in keys]).fetchone())
        if streams:
            content = data.get("message_content")
            event = content if isinstance(content, dict) else {"message_content": content}
            frame = (f"id: {row['seq']}\nevent: {data.get('message_type') or 'message'}\n"
                     f"data: {json.dumps(event)}\n\n").encode()  # fmt: skip
            for q in list(streams):
                q.put(frame)
        return answer(row, 201)

    @app.get("/messages/stream/")
    def message_stream() -> Any:
        need_token()
        q: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        with streams_lock:
            streams.append(q)
        if workers:
            workers[0](1)  # this stream holds its worker thread: one more for requests
        bottle.response.content_type = "text/event-stream"

        def frames() -> Any:
            try:
                yield b"event: connected\ndata: {}\n\n"
                while True:
                    try:
                        yield q.get(timeout=1.0)
                    except queue.Empty:
                        yield b": keep-alive\n\n"  # a client that hung up fails here
            finally:
                with streams_lock:
                    streams.remove(q)
                if workers:
                    workers[0](-1)

        return frames()

    @app.get("/logs/")
    def filter_logs() -> str:
        level = bottle.request.query.get("levelname", "ERROR")
        limit = int(bottle.request.query.get("limit", "100"))
        con = db.con()
        count = con.execute('SELECT COUNT(*) FROM "logs" WHERE "levelname" = ?', (level,)).fetchone()[0]
        rows = con.execute('SELECT * FROM "logs" WHERE "levelname" = ? ORDER BY "timestamp" DESC LIMIT ?',
                           (level, limit)).fetchall()  # fmt: skip
        return answer({"count": count, "next": None, "previous": None, "results": [dict(r) for r in rows]})

    def html_table(rows: list[sqlite3.Row]) -> str:
        if not rows:
            return "<p>none</p>"
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0].keys())
        body_ = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in tuple(r)) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body_}</table>"

    def html_page(title: str, content: str) -> str:
        bottle.response.content_type = "text/html; charset=utf-8"
        return f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>{content}</body></html>"

    @app.get("/page/")
    def dashboard() -> str:
        """The dashboard's data: counts of seven tables, the newest rows of five, recent problems."""
        con = db.con()
        tables = ("runs", "stf_files", "fastmon_files", "workflow_executions", "systemagents", "workflow_messages",
                  "logs")  # fmt: skip
        counts = {t: con.execute('SELECT COUNT(*) FROM "' + t + '"').fetchone()[0] for t in tables}
        parts = [f"<p>{t}: {n}</p>" for t, n in counts.items()]
        newest = {"workflow_messages": "sent_at", "runs": "run_id", "stf_files": "created_at",
                  "fastmon_files": "created_at", "workflow_executions": "start_time"}  # fmt: skip
        for table, col in newest.items():
            parts.append(html_table(con.execute(f'SELECT * FROM "{table}" ORDER BY "{col}" DESC LIMIT 5').fetchall()))
        parts.append(html_table(con.execute('SELECT * FROM "logs" WHERE "level" >= 30 ORDER BY "timestamp" DESC '
                                            "LIMIT 8").fetchall()))  # fmt: skip
        return html_page("Dashboard", "".join(parts))

    @app.get("/page/logs/")
    def logs_page() -> str:
        """The logs page's data: the count and the newest 50 rows (its page size) as an HTML table."""
        con = db.con()
        count = con.execute('SELECT COUNT(*) FROM "logs"').fetchone()[0]
        rows = con.execute('SELECT * FROM "logs" ORDER BY "timestamp" DESC LIMIT 50').fetchall()
        return html_page("Logs", f"<p>{count} logs</p>{html_table(rows)}")

    @app.get("/health/")
    def health() -> str:
        return answer({"status": "ok"})

    return app


class BareServers:
    """The baseline's two cheroot servers (plain + TLS), configured like swf-lite's."""

    def __init__(self, app: Any, cert: str, key: str, threads: int, keep_alive: int):
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        self.servers = []
        for tls in (False, True):
            server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads, server_name="baseline", timeout=10,
                                 shutdown_timeout=1, request_queue_size=socket.SOMAXCONN)  # fmt: skip
            server.keep_alive_conn_limit = keep_alive
            server.expiration_interval = 0.1
            if tls:
                server.ssl_adapter = BuiltinSSLAdapter(cert, key)
            server.prepare()
            threading.Thread(target=server.serve, daemon=True).start()
            self.servers.append(server)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.servers[0].bind_addr[1]}"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.servers[1].bind_addr[1]}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def host_bare(conn: Connection, db_path: str, cert: str, key: str, token: str, threads: int, keep_alive: int) -> None:
    """Start the baseline in this process over ``db_path`` and hand its facts to the bench process."""
    workers: list[Callable[[int], None]] = []
    servers = BareServers(bare_app(db_path, token, workers), cert, key, threads, keep_alive)
    pool = servers.servers[0].requests  # streams are plain HTTP
    workers.append(lambda n: pool.grow(n) if n > 0 else pool.shrink(-n))
    conn.send({"http": servers.http, "https": servers.https, "pid": os.getpid()})
    _serve_commands(conn, servers.stop)


if __name__ == "__main__":  # the cold-start baseline: python bench/_servers.py CERT KEY
    import bottle

    app = bottle.Bottle()
    app.route("/health/", "GET", lambda: {"status": "ok"})
    bare = BareServers(app, sys.argv[1], sys.argv[2], threads=int(sys.argv[3]) if len(sys.argv) > 3 else 104,
                       keep_alive=256)  # fmt: skip
    print(f"{BARE_READY} http={bare.http} https={bare.https} pid={os.getpid()}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        bare.stop()
