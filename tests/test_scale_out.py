"""Several swf-lite processes on one PostgreSQL database act as one monitor: real ``python -m swf_lite``
processes, a real cluster on loopback. Data, users and counters are shared; a message posted to any
process reaches the stream clients of every process in one order without duplicates; a stream client
may reconnect to another process with ``Last-Event-ID`` and lose nothing."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from test_sse import Receiver, post_message

from swf_lite.testing import ServerOptions, SubprocessServer


@pytest.fixture
def two(tmp_path, pg_cluster):
    """Two processes, one database (plain HTTP: each process has its own certificates)."""
    url = pg_cluster.database()
    options = ServerOptions(tls=False, settings={"db": url})
    servers = [SubprocessServer(tmp_path / f"p{i}", options) for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        yield servers
    finally:
        for srv in servers:
            srv.stop()
        pg_cluster.drop(url)


def call(srv, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, srv.http_url + path, headers={"Authorization": f"Token {srv.token}"},
                            timeout=10, **kw)  # fmt: skip


def test_data_users_and_counters_are_shared(two):
    a, b = two
    assert a.token == b.token, "one user table: the admin's token works on every process"
    run = call(a, "POST", "/api/runs/", json={"run_number": 7, "start_time": "2026-03-31T10:00:00"})
    assert run.status_code == 201
    assert [r["run_number"] for r in call(b, "GET", "/api/runs/").json()] == [7]
    twice = call(b, "POST", "/api/runs/", json={"run_number": 7, "start_time": "2026-03-31T10:00:00"})
    assert twice.status_code == 400 and twice.json() == {"run_number": ["run with this run number already exists."]}

    def numbers(srv) -> list[int]:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Token {srv.token}"
            return [s.post(srv.http_url + "/api/state/next-run-number/", timeout=10).json()["run_number"]
                    for _ in range(50)]  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        got = [n for part in pool.map(numbers, [a, b] * 4) for n in part]
    assert sorted(got) == list(range(100010, 100010 + 400)), "unique and gap-free across processes"


def test_messages_reach_streams_on_every_process_in_one_order(two):
    a, b = two
    receivers = [Receiver(srv.http_url, srv.token) for srv in (a, b, a, b)]
    try:
        for rc in receivers:
            rc.connected()
        per_writer = 15

        def write(srv, tag: str) -> None:
            for i in range(per_writer):
                post_message(srv.http_url, srv.token, content={"writer": tag, "i": i})

        threads = [threading.Thread(target=write, args=(srv, tag)) for srv, tag in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        seen = []
        for rc in receivers:
            frames = [rc.next_message() for _ in range(2 * per_writer)]
            seen.append([(event_id, data["writer"], data["i"]) for _, data, event_id in frames])
        ids = [event_id for event_id, _, _ in seen[0]]
        assert ids == sorted(ids) and len(set(ids)) == 2 * per_writer, "storage order, no duplicates"
        assert all(s == seen[0] for s in seen), "every client, on either process, sees the same sequence"
        for tag in "ab":
            assert [i for _, w, i in seen[0] if w == tag] == list(range(per_writer))
        stored = call(b, "GET", "/api/workflow-messages/?limit=1").json()["count"]
        assert stored == 2 * per_writer
    finally:
        for rc in receivers:
            rc.close()


def test_reconnecting_to_another_process_replays_what_was_missed(two):
    a, b = two
    first = Receiver(a.http_url, a.token)
    first.connected()
    post_message(a.http_url, a.token, content={"n": 0})
    _, data, last_id = first.next_message()
    assert data["n"] == 0
    first.close()  # the client goes away; meanwhile both processes store more
    for n in range(1, 5):
        post_message((a, b)[n % 2].http_url, a.token, content={"n": n})
    again = Receiver(b.http_url, b.token, headers={"Last-Event-ID": str(last_id)})
    try:
        again.connected()
        replayed = [again.next_message() for _ in range(4)]
        assert [d["n"] for _, d, _ in replayed] == [1, 2, 3, 4]
        post_message(a.http_url, a.token, content={"n": 5})
        _, live, live_id = again.next_message()
        assert live["n"] == 5 and live_id > replayed[-1][2], "then live, from the other process, no repeat"
    finally:
        again.close()


def test_110_open_streams_hold_no_database_connections(tmp_path, pg_cluster):
    """PostgreSQL allows 100 connections by default; 110 stream clients on one process use at most the
    pool's 8 (plus the change feed's listener), and the API keeps answering meanwhile."""
    from api_helpers import running

    from conftest import Engine

    with running(tmp_path, engine=Engine("postgresql", pg_cluster), sse_max_clients=120) as srv:
        receivers = []
        try:
            for _ in range(110):
                rc = Receiver(srv.http_url, srv.token)
                rc.connected()
                receivers.append(rc)
            assert call(srv, "GET", "/api/runs/").status_code == 200
            post_message(srv.http_url, srv.token, content={"n": 1})
            assert receivers[-1].next_message()[1]["n"] == 1
            import psycopg

            with psycopg.connect(srv.settings.db, autocommit=True) as con:
                name = srv.settings.db.rsplit("/", 1)[1]
                (used,) = con.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                      "pg_backend_pid()", (name,)).fetchone()  # fmt: skip
            assert used <= srv.settings.db_pool + 1, f"{used} connections for 110 streams"
        finally:
            for rc in receivers:
                rc.close()


def test_live_pages_of_one_process_hear_writes_made_on_another(two):
    """The change stream (what live pages read) of process B carries a run created on process A."""
    a, b = two
    with requests.get(b.http_url + "/api/changes/stream/?resources=runs", stream=True, timeout=10) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event: ")) == "event: connected"
        created = call(a, "POST", "/api/runs/", json={"run_number": 42, "start_time": "2026-03-31T10:00:00"})
        assert created.status_code == 201
        data = next(line for line in lines if line.startswith("data: ") and '"runs"' in line)
    change = json.loads(data[len("data: ") :])
    assert (change["op"], change["resource"], change["row"]["run_number"]) == ("create", "runs", 42)
