"""The change feed: every write of every resource (generic CRUD, heartbeats, namespaces, counters,
logs, AI memory, reset, seed, stream subscriber rows) publishes exactly one Change, only after its
transaction committed, and none when the write fails. Also the generic change stream that live
pages read, and that streams hold no database connection while they run."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from api_helpers import (
    WRITABLE,
    create,
    editable_field,
    error,
    ok,
    payload,
    raw_connection,
    sample_value,
    shared_server,
)

from swf_lite import events
from swf_lite.catalog import BY_NAME

module_server, server = shared_server()


class Recorder:
    """A bus subscriber that records every change and checks, at publish time, that the write is
    already visible to another connection (i.e. committed)."""

    def __init__(self, srv):
        self.srv = srv
        self.changes: list[events.Change] = []
        self.uncommitted: list[events.Change] = []
        self.sub = srv.ctx.bus.subscribe("recorder", view=self.view, kind="test")

    def view(self, change: events.Change) -> None:
        if not self._visible(change):
            self.uncommitted.append(change)
        self.changes.append(change)
        return None

    def _visible(self, change: events.Change) -> bool:
        """Read with a separate connection: only committed data is visible there."""
        r = BY_NAME.get(change.resource)
        if r is None or change.pk is None or change.op == "reset":
            return True
        con, mark = raw_connection(self.srv)
        try:
            key = change.pk.replace("-", "") if r.pk.kind == "uuid" and mark == "?" else change.pk
            row = con.execute(f'SELECT 1 FROM "{r.table}" WHERE "{r.pk.name}" = {mark}', (key,)).fetchone()
        finally:
            con.close()
        return (row is None) if change.op == "delete" else (row is not None)

    def take(self) -> list[tuple[str, str, object]]:
        self.srv.ctx.sync()  # PostgreSQL: the bus hears commits through LISTEN, a moment later
        got = [(c.op, c.resource, c.pk) for c in self.changes]
        self.changes.clear()
        return got

    def close(self) -> None:
        self.srv.ctx.bus.unsubscribe(self.sub)


@pytest.fixture
def recorder(server):
    rec = Recorder(server)
    yield rec
    rec.close()
    assert rec.uncommitted == [], "published before the write was visible to other connections"


@pytest.mark.parametrize("name", [r.name for r in WRITABLE])
def test_each_generic_write_publishes_one_change_after_commit(api, recorder, name):
    r = BY_NAME[name]
    body = payload(api, name)  # parents first (their own creates are not this test's business)
    recorder.take()
    created = ok(api.post(f"/api/{name}/", json=body), 201)
    key = created[r.pk.name]
    assert recorder.take() == [("create", name, key)]
    f = editable_field(r)
    ok(api.patch(f"/api/{name}/{key}/", json={f.name: sample_value(f, 7) if f.choices is None else f.choices[-1]}))
    assert recorder.take() == [("update", name, key)]
    put = {k: v for k, v in body.items() if k != r.pk.name or not r.pk.read_only}
    ok(api.put(f"/api/{name}/{key}/", json=put))
    assert recorder.take() == [("update", name, key)]
    assert api.delete(f"/api/{name}/{key}/").status_code == 204
    assert recorder.take() == [("delete", name, key)]


@pytest.mark.parametrize("name", [r.name for r in WRITABLE])
def test_failed_writes_publish_nothing(api, recorder, name):
    r = BY_NAME[name]
    error(api.post(f"/api/{name}/", json={}))  # required fields missing
    missing = "0" if r.pk.kind in ("int", "int64") else "00000000-0000-0000-0000-000000000000"
    error(api.patch(f"/api/{name}/{missing}/", json={}), 404)
    error(api.delete(f"/api/{name}/{missing}/"), 404)
    created = create(api, name)
    recorder.take()
    unique = [f for f in r.fields if f.unique]
    if unique:  # a second row may not take the first one's unique value
        other = create(api, name)
        recorder.take()
        key = other[r.pk.name]
        error(api.patch(f"/api/{name}/{key}/", json={unique[0].name: created[unique[0].name]}))
    assert recorder.take() == []


def test_special_writes_publish_one_change_each(api, anon, recorder, server):
    agent = ok(api.post("/api/systemagents/heartbeat/", json={"instance_name": "a1"}), 201)
    assert recorder.take() == [("upsert", "systemagents", agent["id"])]
    ok(api.post("/api/systemagents/heartbeat/", json={"instance_name": "a1", "status": "OK"}))
    assert recorder.take() == [("upsert", "systemagents", agent["id"])]
    error(api.post("/api/systemagents/heartbeat/", json={}))
    ok(api.post("/api/namespaces/ensure/", json={"name": "ns", "owner": "me"}))
    assert recorder.take() == [("create", "namespaces", "ns")]
    ok(api.post("/api/namespaces/ensure/", json={"name": "ns", "owner": "me"}))  # exists: nothing written
    assert recorder.take() == []
    value = ok(api.post("/api/state/next-run-number/"))["run_number"]
    assert recorder.take() == [("update", "persistent-state", "next-run-number")]
    assert server.ctx.bus.subscribers[-1] is recorder.sub
    log = {"app_name": "a", "instance_name": "i", "timestamp": "2026-03-31T12:00:00", "levelname": "INFO",
           "message": "m", "module": "mod", "funcname": "f", "lineno": 1, "process": 1, "thread": 1}  # fmt: skip
    created = ok(anon.post("/api/logs/", json=log), 201)
    assert recorder.take() == [("create", "logs", created["id"])]
    turn = ok(anon.post("/api/ai-memory/record/", json={"username": "u", "content": "c"}))
    assert recorder.take() == [("create", "ai-memory", turn["id"])]
    ok(api.post("/_swf_lite/seed/", json={"runs": [{"run_number": value, "start_time": "2026-03-31T12:00:00Z"}]}))
    assert [c[:2] for c in recorder.take()] == [("create", "runs")]
    error(api.post("/_swf_lite/seed/", json={"runs": [{"run_number": 1, "start_time": "2026-03-31T12:00:00Z"},
                                                       {"run_number": 1, "start_time": "x"}]}))  # fmt: skip
    assert recorder.take() == [], "a seed that fails publishes none of its records"
    ok(api.post("/_swf_lite/reset/", json={}))
    assert recorder.take() == [("reset", "*", None)]


def test_change_order_is_commit_order_under_concurrency(api, recorder, server):
    """Eight threads post messages at once: the bus sees them in storage-sequence order."""
    session_token = server.token

    def post(n: int) -> None:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Token {session_token}"
            for i in range(10):
                body = {"message_type": "t", "message_content": {"n": n, "i": i}}
                assert s.post(server.http_url + "/api/workflow-messages/", json=body, timeout=10).status_code == 201

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    server.ctx.sync()
    seqs = [c.seq for c in recorder.changes if c.resource == "workflow-messages"]
    assert len(seqs) == 80 and seqs == sorted(seqs) and len(set(seqs)) == 80


# -- the generic change stream --------------------------------------------------------------------


def read_frames(resp, n: int) -> list[tuple[str, str]]:
    """The next ``n`` (event, data) frames of an SSE response (one line iterator per response)."""
    if not hasattr(resp, "lines"):
        resp.lines = resp.iter_lines(decode_unicode=True)
    frames, event = [], None
    for line in resp.lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            frames.append((event, line[6:]))
            if len(frames) == n:
                return frames
    return frames


def test_change_stream_filters_by_resource(api, server):
    """No token needed (pages are anonymous; every row it carries is readable by GET /api/ anyway)."""
    url = server.http_url + "/api/changes/stream/?resources=runs"
    assert requests.get(url + ",nope", timeout=5).status_code == 400
    with requests.get(url, stream=True, timeout=(5, 10)) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert read_frames(resp, 1)[0][0] == "connected"
        create(api, "workers")  # not a run: filtered out
        run = create(api, "runs")
        (event, data), = read_frames(resp, 1)  # fmt: skip
    assert event == "change"
    assert requests.compat.json.loads(data) == {"op": "create", "resource": "runs", "pk": run["run_id"], "row": run}


def test_change_stream_accepts_the_browser_session_cookie(server):
    with requests.Session() as browser:
        browser.post(server.http_url + "/_swf_lite/session/", headers={"Authorization": f"Token {server.token}"},
                     timeout=5)  # fmt: skip
        with browser.get(server.http_url + "/api/changes/stream/", stream=True, timeout=(5, 10)) as resp:
            assert resp.status_code == 200
            assert read_frames(resp, 1)[0][0] == "connected"


def test_open_streams_hold_no_database_connection(server):
    """A stream releases its thread's connection while it streams (PostgreSQL would run out)."""
    auth = {"Authorization": f"Token {server.token}"}
    requests.get(server.http_url + "/api/runs/", timeout=5)
    before = server.store.open_connections
    streams = []
    try:
        for path in ["/api/messages/stream/"] * 3 + ["/api/changes/stream/"] * 3:
            resp = requests.get(server.http_url + path, headers=auth, stream=True, timeout=(5, 10))
            assert read_frames(resp, 1)[0][0] == "connected"
            streams.append(resp)
        time.sleep(0.2)
        assert server.store.open_connections <= before
    finally:
        for resp in streams:
            resp.close()
