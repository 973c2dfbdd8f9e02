"""The live stream (issue 5): workflow messages in over HTTP(S), Server-Sent Events out.

Everything goes over real sockets. Stream clients are built the way the testbed's
remote_sse_receiver.py builds its own (session headers, ``stream=True``, ``iter_lines(
decode_unicode=True, chunk_size=1)``, the last ``event: `` / ``data: `` line of each frame).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from swf_lite import events
from swf_lite.server import SwfLiteServer

from conftest import make_settings

STREAM = "/api/messages/stream/"
STATUS = "/api/messages/stream/status/"
MESSAGES = "/api/workflow-messages/"
RECEIVER_TIMEOUT = (10, 30)  # what remote_sse_receiver.py uses for the stream (read timeout shortened)


# -- helpers -------------------------------------------------------------------------------------


class Receiver:
    """One stream connection, parsed exactly like remote_sse_receiver.py parses it (plus ``id:``)."""

    def __init__(self, base: str, token: str | None, query: str = "", headers: dict | None = None, verify=None,
                 params: dict | None = None):  # fmt: skip
        self.session = requests.Session()
        if verify is not None:
            self.session.verify = verify
        self.session.headers.update({"Authorization": f"Token {token}", "Cache-Control": "no-cache",
                                     "Accept": "text/event-stream", "Connection": "keep-alive"})  # fmt: skip
        self.response = self.session.get(base + STREAM + query, stream=True, timeout=RECEIVER_TIMEOUT,
                                         allow_redirects=False, headers=headers or {}, params=params)  # fmt: skip
        self._lines = self.response.iter_lines(decode_unicode=True, chunk_size=1)

    def next(self) -> tuple[str | None, dict | None, int | None]:
        """The next frame as (event, data, id); EOFError when the stream ends."""
        event = data = event_id = None
        for raw in self._lines:
            line = raw.strip()
            if not line:
                if event is not None or data is not None:
                    return event, (json.loads(data) if data is not None else None), event_id
                continue
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line.startswith("id: "):
                event_id = int(line[len("id: ") :])
        raise EOFError("stream ended")

    def next_message(self, timeout: float = 15.0) -> tuple[str, dict, int]:
        """The next frame that is not a heartbeat (heartbeats keep the read timeout from firing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event, data, event_id = self.next()
            if event != "heartbeat":
                return event, data, event_id
        raise AssertionError(f"no message within {timeout} s")

    def connected(self) -> str:
        assert self.response.status_code == 200, self.response.text
        event, data, event_id = self.next()
        assert event == "connected" and data["status"] == "connected" and event_id is None
        return data["client_id"]

    def close(self) -> None:
        self.response.close()
        self.session.close()


def post_message(base: str, token: str, msg_type: str = "stf_gen", verify=True, **fields) -> dict:
    body = {"message_type": fields.pop("message_type", msg_type), "message_content": fields.pop("content", {})}
    body.update(fields)
    r = requests.post(base + MESSAGES, json=body, headers={"Authorization": f"Token {token}"}, timeout=10,
                      verify=verify)  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def status(srv) -> dict:
    r = requests.get(srv.http_url + STATUS, headers={"Authorization": f"Token {srv.token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture
def make_server(tmp_path, engine) -> Iterator:
    """Own servers with small stream settings (on each engine); stopped at the end."""
    names = (f"data{i}" for i in range(100))
    with contextlib.ExitStack() as stack:

        def make(**kw):
            kw.setdefault("sse_heartbeat", 0.5)
            return stack.enter_context(engine.serve(tmp_path / next(names), **kw))

        yield make


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    opened: list[Receiver] = []
    yield opened
    for rc in opened:
        rc.close()


# -- the receiver's view ---------------------------------------------------------------------------


def test_receiver_gets_connected_then_the_matching_message_over_https(server, receivers, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))  # how agents trust the local CA
    rc = Receiver(server.https_url, server.token, "?msg_types=stf_ready&agents=data-agent-1")
    receivers.append(rc)
    client_id = rc.connected()
    assert uuid.UUID(client_id).version == 4

    post_message(
        server.https_url, server.token, "stf_ready", content={"msg_type": "stf_ready", "processed_by": "other"}
    )
    stored = post_message(server.https_url, server.token, "stf_ready", sender_agent="daq", namespace="ns1",
                          run_id="100010", execution_id="wf-1", queue_name="/topic/epictopic",
                          content={"msg_type": "stf_ready", "processed_by": "data-agent-1", "filename": "a.stf",
                                   "message": "ready"})  # fmt: skip

    event, data, event_id = rc.next_message()
    assert event == "stf_ready"
    assert isinstance(event_id, int) and event_id > 0
    assert data == {"msg_type": "stf_ready", "processed_by": "data-agent-1", "filename": "a.stf", "message": "ready",
                    "sender_agent": "daq", "recipient_agent": None, "namespace": "ns1", "run_id": "100010",
                    "execution_id": "wf-1", "queue_name": "/topic/epictopic", "sent_at": stored["sent_at"]}  # fmt: skip


def test_stream_headers_and_first_frame_at_once(server):
    with socket.create_connection(("127.0.0.1", int(server.http_url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token {server.token}\r\n"
                     f"Accept: text/event-stream\r\n\r\n".encode())  # fmt: skip
        started = time.monotonic()
        received = b""
        while b"\n\n\r\n" not in received:  # end of the first chunk: the connected frame
            chunk = sock.recv(4096)
            assert chunk, "connection closed before the first frame"
            received += chunk
        assert time.monotonic() - started < 2  # flushed, not buffered until more data comes
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert "content-length" not in headers
    assert b"event: connected\ndata: {" in body


def test_requests_sees_a_text_content_type_and_str_lines(server, receivers):
    rc = Receiver(server.http_url, server.token)
    receivers.append(rc)
    assert rc.response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert rc.response.encoding == "utf-8"  # requests yields str lines, as the receiver needs
    rc.connected()


@pytest.mark.parametrize("path", [STREAM, STATUS])
def test_token_required(server, path):
    r = requests.get(server.http_url + path, timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Token"
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    r = requests.get(server.http_url + path, headers={"Authorization": "Token " + "0" * 40}, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid token."}
    assert status(server)["connected_clients"] == 0


def test_heartbeat_without_traffic(make_server, receivers):
    srv = make_server(sse_heartbeat=0.3)
    rc = Receiver(srv.http_url, srv.token)
    receivers.append(rc)
    rc.connected()
    started = time.time()
    event, data, event_id = rc.next()
    assert event == "heartbeat" and event_id is None
    assert isinstance(data["timestamp"], float)
    assert started - 1 < data["timestamp"] < time.time() + 1
    event, _, _ = rc.next()
    assert event == "heartbeat"


# -- filters -------------------------------------------------------------------------------------

FILTER_CASES = {
    # name: (query, decoy message, matching message)
    "msg_types": ("?msg_types=run_imminent,end_run",
                  {"msg_type": "stf_gen", "content": {}}, {"msg_type": "end_run", "content": {}}),
    "msg_types_from_content": ("?msg_types=data_ready",
                               {"msg_type": "x", "content": {"msg_type": "other"}},
                               {"msg_type": "x", "content": {"msg_type": "data_ready"}}),
    "agents": ("?agents=fastmon-agent-1,data-agent-2",
               {"content": {"processed_by": "data-agent-1"}}, {"content": {"processed_by": "data-agent-2"}}),
    "agents_missing_processed_by": ("?agents=a1", {"content": {}}, {"content": {"processed_by": "a1"}}),
    "run_ids_int_in_content": ("?run_ids=100010", {"content": {"run_id": 100011}}, {"content": {"run_id": 100010}}),
    "run_ids_string_in_content": ("?run_ids=100010,100012", {"content": {"run_id": "100011"}},
                                  {"content": {"run_id": "100012"}}),
    "run_ids_from_message": ("?run_ids=7", {"run_id": "8", "content": {}}, {"run_id": "7", "content": {}}),
    "namespace": ("?namespace=alice-ns", {"namespace": "bob-ns", "content": {}},
                  {"namespace": "alice-ns", "content": {}}),
    "namespace_in_content": ("?namespace=ns2", {"content": {"namespace": "ns1"}}, {"content": {"namespace": "ns2"}}),
    "all_must_pass": ("?msg_types=stf_gen&agents=a1&run_ids=5&namespace=n",
                      {"msg_type": "stf_gen", "namespace": "n", "content": {"processed_by": "a1", "run_id": 6}},
                      {"msg_type": "stf_gen", "namespace": "n", "content": {"processed_by": "a1", "run_id": 5}}),
}  # fmt: skip


@pytest.mark.parametrize("case", FILTER_CASES)
def test_filters(server, receivers, case):
    query, decoy, match = FILTER_CASES[case]
    rc = Receiver(server.http_url, server.token, query)
    receivers.append(rc)
    client_id = rc.connected()
    post_message(server.http_url, server.token, **{**decoy, "content": {**decoy["content"], "tag": "decoy"}})
    post_message(server.http_url, server.token, **{**match, "content": {**match["content"], "tag": "match"}})
    _, data, _ = rc.next_message()
    assert data["tag"] == "match"
    shown = status(server)["client_filters"][client_id]
    assert set(shown) == {part.split("=")[0] for part in query[1:].split("&")}


def test_unfiltered_stream_gets_everything_in_order(server, receivers):
    rc = Receiver(server.http_url, server.token)
    receivers.append(rc)
    rc.connected()
    for i in range(5):
        post_message(server.http_url, server.token, msg_type=f"t{i}", content={"i": i})
    got = [rc.next_message() for _ in range(5)]
    assert [e for e, _, _ in got] == [f"t{i}" for i in range(5)]
    ids = [i for _, _, i in got]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_data_is_always_one_line(server, receivers):
    rc = Receiver(server.http_url, server.token)
    receivers.append(rc)
    rc.connected()
    text = "a\nb\r\nc\u2028d\u2029e\x85f\x0bg\x1ch — ü"
    post_message(server.http_url, server.token, content={"message": text, "msg_type": "line\nbreak"})
    event, data, _ = rc.next_message()
    assert data["message"] == text
    assert event == "line break"


def test_message_type_is_the_event_name_when_content_has_none(server, receivers):
    rc = Receiver(server.http_url, server.token)
    receivers.append(rc)
    rc.connected()
    post_message(server.http_url, server.token, msg_type="run_imminent", content={"note": 1})
    event, data, _ = rc.next_message()
    assert event == "run_imminent" and data["msg_type"] == "run_imminent" and data["note"] == 1


# -- replay ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["header", "query"])
def test_replay_after_disconnect_has_no_gap_and_no_duplicate(server, receivers, how):
    base, token = server.http_url, server.token
    rc = Receiver(base, token, "?msg_types=keep")
    receivers.append(rc)
    rc.connected()
    post_message(base, token, "keep", content={"n": 1})
    _, data, last_id = rc.next_message()
    assert data["n"] == 1
    rc.close()

    post_message(base, token, "keep", content={"n": 2})
    post_message(base, token, "drop", content={"n": -1})  # filtered out in the replay too
    post_message(base, token, "keep", content={"n": 3})

    if how == "header":
        rc2 = Receiver(base, token, "?msg_types=keep", headers={"Last-Event-ID": str(last_id)})
    else:
        rc2 = Receiver(base, token, f"?msg_types=keep&last_event_id={last_id}")
    receivers.append(rc2)
    rc2.connected()
    post_message(base, token, "keep", content={"n": 4})
    got = [rc2.next_message() for _ in range(3)]
    assert [d["n"] for _, d, _ in got] == [2, 3, 4]
    ids = [i for _, _, i in got]
    assert ids[0] > last_id and ids == sorted(ids) and len(set(ids)) == 3
    assert ids[1] - ids[0] == 2  # the filtered-out message took the id in between


def test_replay_under_concurrent_posts_loses_and_repeats_nothing(server, receivers):
    """Two posters keep posting while the client drops and reopens the stream with Last-Event-ID."""
    base, token = server.http_url, server.token
    per_poster = 40

    def poster(tag: str):
        for n in range(per_poster):
            post_message(base, token, "seq", content={"n": f"{tag}{n}"})

    seen: list[str] = []
    ids: list[int] = []
    rc = Receiver(base, token)  # subscribed before the first post
    receivers.append(rc)
    rc.connected()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(poster, tag) for tag in "ab"]
        while len(seen) < 2 * per_poster:
            if rc is None:
                rc = Receiver(base, token, "", headers={"Last-Event-ID": str(ids[-1])})
                receivers.append(rc)
                rc.connected()
            for _ in range(5):  # read a few, then drop the connection mid-stream
                if len(seen) == 2 * per_poster:
                    break
                _, data, event_id = rc.next_message()
                seen.append(data["n"])
                ids.append(event_id)
            rc.close()
            rc = None
        for f in futures:
            f.result(timeout=30)
    assert sorted(seen) == sorted(f"{tag}{n}" for tag in "ab" for n in range(per_poster))  # no gap, no duplicate
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for tag in "ab":  # each poster's messages in its own order
        assert [s for s in seen if s[0] == tag] == [f"{tag}{n}" for n in range(per_poster)]


@pytest.mark.parametrize("bad", ["abc", "-3", "1.5", "\u00b2", "9" * 30])
def test_bad_last_event_id_is_ignored(server, receivers, bad):
    post_message(server.http_url, server.token, content={"old": True})
    rc = Receiver(server.http_url, server.token, params={"last_event_id": bad})
    receivers.append(rc)
    rc.connected()
    post_message(server.http_url, server.token, content={"new": True})
    _, data, _ = rc.next_message()
    assert data.get("new") is True


def test_replay_is_bounded(make_server, receivers):
    srv = make_server(sse_replay=3)
    for n in range(6):
        post_message(srv.http_url, srv.token, content={"n": n})
    rc = Receiver(srv.http_url, srv.token, headers={"Last-Event-ID": "0"})
    receivers.append(rc)
    rc.connected()
    post_message(srv.http_url, srv.token, content={"n": 6})
    assert [rc.next_message()[1]["n"] for _ in range(4)] == [3, 4, 5, 6]  # the newest 3, then live


# -- capacity, back-pressure, shutdown ------------------------------------------------------------


def test_capacity_503_and_the_api_still_answers(make_server, receivers):
    srv = make_server(sse_max_clients=4, threads=2, sse_heartbeat=0.3)
    for base in [srv.http_url, srv.https_url, srv.http_url, srv.https_url]:  # counted across both servers
        rc = Receiver(base, srv.token, verify=str(srv.ca_bundle))
        receivers.append(rc)
        rc.connected()
    auth = {"Authorization": f"Token {srv.token}"}
    for base in (srv.http_url, srv.https_url):
        r = requests.post(base + "/api/state/next-run-number/", headers=auth, timeout=5, verify=str(srv.ca_bundle))
        assert r.status_code == 200 and r.json()["status"] == "success"
        r = requests.post(base + "/api/logs/", timeout=5, verify=str(srv.ca_bundle),
                          json={"app_name": "t", "instance_name": "i", "timestamp": "2026-03-31T12:00:00",
                                "level": 20, "levelname": "INFO", "message": "still here", "module": "m",
                                "funcname": "f", "lineno": 1, "process": 1, "thread": 1})  # fmt: skip
        assert r.status_code == 201, r.text

    r = requests.get(srv.http_url + STREAM, headers=auth, stream=True, timeout=5)
    assert r.status_code == 503
    assert r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Retry-After"]) > 0
    assert "detail" in r.json()
    assert status(srv)["rejected_clients"] == 1

    receivers.pop(0).close()  # the server notices at its next write (heartbeat)
    wait_for(lambda: status(srv)["connected_clients"] == 3)
    rc = Receiver(srv.http_url, srv.token)
    receivers.append(rc)
    rc.connected()


def test_hang_ups_are_noticed_within_seconds_not_at_the_next_heartbeat(make_server, receivers, caplog):
    """Receivers that reconnect in a burst find their slots free: with the contract's 30 s heartbeat a
    hang-up used to be seen only at the next write, so for up to half a minute they got 503s."""
    srv = make_server(sse_max_clients=4, sse_heartbeat=30)
    caplog.set_level("INFO", logger="swf_lite.sse")
    bases = [srv.http_url, srv.https_url, srv.http_url, srv.https_url]
    for base in bases:
        rc = Receiver(base, srv.token, verify=str(srv.ca_bundle))
        receivers.append(rc)
        rc.connected()
    hung = len(receivers)
    hung_up = time.monotonic()
    while receivers:
        receivers.pop().close()
    wait_for(lambda: status(srv)["connected_clients"] == 0, timeout=3)
    assert time.monotonic() - hung_up < 3
    for base in bases:  # the burst of reconnects: every one gets a slot
        rc = Receiver(base, srv.token, verify=str(srv.ca_bundle))
        receivers.append(rc)
        rc.connected()
    rows = requests.get(srv.http_url + "/api/subscribers/", params={"delivery_type": "sse"}, timeout=5).json()
    assert sorted(row["is_active"] for row in rows) == [False] * hung + [True] * len(bases)
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(gone) == hung and all(r.exc_info is None and "\n" not in r.getMessage() for r in gone)


def open_lazy_reader(srv) -> socket.socket:
    """A raw stream client with a tiny receive buffer that reads the connected frame, then nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", int(srv.http_url.rsplit(":", 1)[1])))
    sock.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token {srv.token}\r\n\r\n".encode())
    received = b""
    while b"event: connected" not in received:  # headers and first frame may come in two reads
        chunk = sock.recv(4096)
        assert chunk, "stream closed before the connected frame"
        received += chunk
    return sock


def test_stalled_subscriber_drops_oldest_and_never_blocks_the_post(make_server):
    """A client that stops reading: its socket fills, its queue overflows, drops are counted,
    and every POST still returns promptly."""
    srv = make_server(sse_queue=5, sse_heartbeat=30, max_body=4 * 1024 * 1024)
    sock = open_lazy_reader(srv)
    try:
        big = "x" * 512 * 1024
        slowest = 0.0
        for n in range(40):  # 20 MB for a reader that reads nothing more
            started = time.monotonic()
            post_message(srv.http_url, srv.token, content={"n": n, "pad": big})
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 2.0
        srv.ctx.sync()  # the bus publishes from its own thread (with PostgreSQL, after LISTEN hears it)
        client = next(iter(status(srv)["clients"].values()))
        assert client["dropped"] > 0
        assert client["queue_depth"] <= 5
        assert client["queued"] == 40
        assert status(srv)["messages_dropped"] == client["dropped"]
    finally:
        sock.close()  # unread data -> RST: the blocked write on the server fails at once


def test_shutdown_with_open_streams_is_quick(tmp_path):
    srv = SwfLiteServer(make_settings(tmp_path / "data")).start()  # default 30 s heartbeat
    opened = []
    try:
        for i in range(10):
            rc = Receiver(srv.https_url if i % 2 else srv.http_url, srv.token, verify=str(srv.ca_bundle))
            opened.append(rc)
            rc.connected()
        assert status(srv)["connected_clients"] == 10
        started = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"stop took {elapsed:.2f} s"
        for rc in opened:  # every stream ended (the receiver would reconnect)
            with pytest.raises((EOFError, requests.RequestException)):
                while True:
                    rc.next()
    finally:
        srv.stop()
        for rc in opened:
            rc.close()


def test_stop_frees_a_worker_stuck_writing_to_a_client_that_stopped_reading(make_server):
    """cheroot's stop only shuts the read side; a stream blocked in send() would keep its worker
    (and the process) alive for the 10 s socket timeout. stop() cuts such sockets."""
    srv = make_server(sse_queue=100, sse_heartbeat=30, max_body=4 * 1024 * 1024)
    sock = open_lazy_reader(srv)
    try:
        big = "x" * 512 * 1024
        for n in range(30):  # 15 MB: far more than the socket buffers hold
            post_message(srv.http_url, srv.token, content={"n": n, "pad": big})
        client = wait_for(lambda: next(iter(status(srv)["clients"].values())))
        wait_for(lambda: next(iter(status(srv)["clients"].values()))["queue_depth"] < client["queued"])
        workers = [t for ep in srv.endpoints for t in ep.server.requests._threads]
        started = time.monotonic()
        srv.stop()
        for worker in workers:
            worker.join(timeout=max(0.0, 2.5 - (time.monotonic() - started)))
        stuck = [w.name for w in workers if w.is_alive()]
        assert not stuck, f"workers still alive {time.monotonic() - started:.1f} s after stop: {stuck}"
    finally:
        sock.close()


# -- subscriber rows, status, reset -----------------------------------------------------------------


def test_stream_client_is_a_subscriber_row_while_connected(make_server, receivers):
    srv = make_server(sse_heartbeat=0.3)
    rc = Receiver(srv.http_url, srv.token, "?msg_types=a,b&run_ids=1")
    receivers.append(rc)
    client_id = rc.connected()
    name = f"sse_{client_id[:8]}"
    rows = requests.get(srv.http_url + "/api/subscribers/", params={"subscriber_name": name}, timeout=5).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["delivery_type"] == "sse" and row["is_active"] is True
    assert row["connected_at"] and row["disconnected_at"] is None
    assert row["client_ip"] == "127.0.0.1"
    assert row["message_filters"] == {"msg_types": ["a", "b"], "run_ids": ["1"]}
    post_message(srv.http_url, srv.token, "a", content={"run_id": 1})
    post_message(srv.http_url, srv.token, "a", content={"run_id": 2})
    rc.next_message()
    assert status(srv)["clients"][client_id]["subscriber_name"] == name
    rc.close()

    def closed_row():
        got = requests.get(srv.http_url + "/api/subscribers/", params={"subscriber_name": name}, timeout=5).json()
        return got[0] if got and got[0]["is_active"] is False else None

    row = wait_for(closed_row)
    assert row["disconnected_at"] is not None
    assert row["messages_sent"] == 1 and row["messages_received"] == 1 and row["messages_dropped"] == 0
    assert status(srv)["connected_clients"] == 0


def test_status_counts(server, receivers):
    rc = Receiver(server.http_url, server.token, "?agents=x")
    receivers.append(rc)
    client_id = rc.connected()
    post_message(server.http_url, server.token, content={"processed_by": "y"})
    post_message(server.http_url, server.token, content={"processed_by": "x"})
    rc.next_message()
    st = status(server)
    assert st["connected_clients"] == 1 and st["client_ids"] == [client_id]
    assert st["client_filters"] == {client_id: {"agents": ["x"]}}
    assert st["messages_published"] == 2 and st["bus_running"] is True
    client = st["clients"][client_id]
    assert client["queued"] == 1 and client["sent"] == 1 and client["dropped"] == 0 and client["queue_depth"] == 0
    assert st["max_clients"] == server.settings.sse_max_clients and st["queue_size"] == server.settings.sse_queue


def test_reset_empties_stream_buffers_and_keeps_connected_rows(server, receivers):
    rc = Receiver(server.http_url, server.token)
    receivers.append(rc)
    client_id = rc.connected()
    idle = server.ctx.bus.subscribe("idle-test-subscriber")  # nobody reads this one
    try:
        post_message(server.http_url, server.token, content={"n": 1})
        server.ctx.sync()  # PostgreSQL: the bus hears the commit through LISTEN, a moment later
        assert idle.depth == 1
        rc.next_message()  # the live client takes it before the reset (a buffered one is the idle's case)
        server.ctx.reset()
        assert idle.depth == 0
        rows = requests.get(server.http_url + "/api/subscribers/", timeout=5).json()
        assert [r["subscriber_name"] for r in rows] == [f"sse_{client_id[:8]}"]
        assert rows[0]["is_active"] is True
        post_message(server.http_url, server.token, content={"n": 2})
        _, data, event_id = rc.next_message()
        assert data["n"] == 2 and event_id == 1  # sequence numbers restart with the table
    finally:
        server.ctx.bus.unsubscribe(idle)


def test_stale_rows_from_a_previous_process_are_closed_at_start(tmp_path, engine):
    """Rows a crashed process left active (no disconnect recorded) are closed by the next start."""
    settings = engine.settings(tmp_path / "data")
    first = SwfLiteServer(settings).start()
    try:
        auth = {"Authorization": f"Token {first.token}"}
        for name, kind in (("sse_deadbeef", "sse"), ("agent-1-/topic/x", "activemq")):
            r = requests.post(first.http_url + "/api/subscribers/", headers=auth, timeout=5,
                              json={"subscriber_name": name, "delivery_type": kind, "is_active": True})  # fmt: skip
            assert r.status_code == 201, r.text
    finally:
        first.stop()
    second = SwfLiteServer(settings).start()
    try:
        rows = {r["subscriber_name"]: r for r in requests.get(second.http_url + "/api/subscribers/", timeout=5).json()}
        assert rows["sse_deadbeef"]["is_active"] is False and rows["sse_deadbeef"]["disconnected_at"]
        assert rows["agent-1-/topic/x"]["is_active"] is True  # broker subscribers are not ours
    finally:
        second.stop()
        engine.release(settings)


# -- the bus on its own ---------------------------------------------------------------------------


def _event(seq: int, msg_type: str = "m", **content) -> events.Change:
    """The change the service publishes for a stored message with sequence number ``seq``."""
    row = {"message_type": msg_type, "message_content": content, "run_id": None}
    return events.Change("create", events.MESSAGES, str(seq), row, seq)


def test_bus_queue_drops_oldest_and_counts():
    bus = events.Bus(max_clients=2, queue_size=3)
    sub = bus.subscribe("a")
    for seq in range(1, 11):
        assert bus.publish(_event(seq)) == 1
    assert sub.dropped == 7 and sub.queued == 10 and sub.depth == 3
    assert [sub.get(0).id for _ in range(3)] == [8, 9, 10]
    assert sub.get(0.01) is None
    stats = bus.stats()
    assert stats["messages_published"] == 10 and stats["messages_dropped"] == 7
    assert stats["clients"]["a"]["queue_depth"] == 0


def test_bus_capacity_and_unsubscribe():
    bus = events.Bus(max_clients=2, queue_size=3)
    a = bus.subscribe("a")
    bus.subscribe("b")
    with pytest.raises(events.BusFull):
        bus.subscribe("c")
    bus.unsubscribe(a)
    bus.subscribe("c")
    assert len(bus) == 2 and bus.stats()["rejected_clients"] == 1
    assert bus.publish(_event(1)) == 2


def test_bus_filters_skip_and_clear():
    bus = events.Bus(max_clients=4, queue_size=10)
    only_b = bus.subscribe("f", events.Filters.from_query({"msg_types": "b", "run_ids": " 5 , 6"}.get))
    assert only_b.filters.public() == {"msg_types": ["b"], "run_ids": ["5", "6"]}
    bus.publish(_event(1, "a", run_id=5))
    bus.publish(_event(2, "b", run_id=7))
    bus.publish(_event(3, "b", run_id=5))
    bus.publish(_event(4, "b", run_id="6"))
    assert only_b.depth == 2
    only_b.set_skip_upto(3)  # as after a replay that already sent id 3
    assert only_b.get(0).id == 4
    bus.publish(_event(5, "b", run_id=6))
    bus.clear()
    assert only_b.depth == 0 and only_b.skip_upto == 0


def test_bus_publish_does_not_wait_for_a_slow_reader():
    bus = events.Bus(max_clients=1, queue_size=2)
    sub = bus.subscribe("slow")
    started = time.monotonic()
    for seq in range(1, 5001):
        bus.publish(_event(seq))
    assert time.monotonic() - started < 2.0
    assert sub.dropped == 4998


def test_ready_takes_a_burst_in_order_without_waiting_and_honours_the_replay_mark():
    bus = events.Bus(max_clients=1, queue_size=100)
    sub = bus.subscribe("burst")
    for seq in range(1, 11):
        bus.publish(_event(seq))
    sub.set_skip_upto(2)
    assert sub.get(0).id == 3
    started = time.monotonic()
    assert [e.id for e in sub.ready(4)] == [4, 5, 6, 7]
    assert [e.id for e in sub.ready(100)] == [8, 9, 10]
    assert sub.ready(100) == [] and time.monotonic() - started < 0.1


def test_a_burst_reaches_the_client_complete_and_in_order(server):
    """Messages posted faster than the stream writes go out several per write: none lost, none twice."""
    rc = Receiver(server.http_url, server.token)
    try:
        rc.connected()
        with requests.Session() as s:
            s.headers["Authorization"] = f"Token {server.token}"
            for i in range(60):
                body = {"message_type": "stf_gen", "message_content": {"i": i}}
                assert s.post(server.http_url + MESSAGES, json=body, timeout=10).status_code == 201
        got = [rc.next_message() for _ in range(60)]
        assert [d["i"] for _, d, _ in got] == list(range(60))
        assert [i for _, _, i in got] == sorted({i for _, _, i in got})
    finally:
        rc.close()


def test_get_wakes_up_on_publish():
    bus = events.Bus(max_clients=1, queue_size=2)
    sub = bus.subscribe("w")
    timer = threading.Timer(0.05, bus.publish, args=(_event(1),))
    timer.start()
    started = time.monotonic()
    assert sub.get(5).id == 1
    assert time.monotonic() - started < 1.0
    timer.join()


def test_event_frame_shape():
    ev = events.message_event(
        {
            "message_type": "mt",
            "message_content": {"msg_type": "x", "run_id": 3},
            "run_id": "9",
            "namespace": "ns",
            "sent_at": "2026-03-31T12:00:00.000000Z",
        },
        42,
    )
    assert ev.frame.startswith(b"id: 42\nevent: x\ndata: {")
    assert ev.frame.endswith(b"}\n\n") and ev.frame.count(b"\n") == 4
    assert ev.data["run_id"] == 3 and ev.data["namespace"] == "ns"  # content wins, defaults fill the rest
    assert events.message_event({"message_type": "", "message_content": "text"}, 1).name == "message"
    assert events.message_event({"message_type": "t", "message_content": [1]}, 1).data["message_content"] == [1]


# -- browser session ------------------------------------------------------------------------------


def test_browser_session_cookie_opens_the_stream_but_not_writes(server):
    """An EventSource cannot send headers: POST /_swf_lite/session/ (token) sets a cookie that the
    stream and its status accept; writes still need the token."""
    with requests.Session() as browser:
        assert browser.get(server.http_url + STATUS, timeout=10).status_code == 401
        started = browser.post(server.http_url + "/_swf_lite/session/",
                               headers={"Authorization": f"Token {server.token}"}, timeout=10)  # fmt: skip
        assert started.status_code == 200 and started.json()["username"] == "admin"
        cookie = started.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert browser.get(server.http_url + STATUS, timeout=10).status_code == 200
        with browser.get(server.http_url + STREAM, stream=True, timeout=(10, 10)) as resp:
            assert resp.status_code == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            first = next(resp.iter_lines(decode_unicode=True))
            assert first.startswith(("id: ", "event: connected"))
        write = browser.post(server.http_url + MESSAGES, json={"message_type": "x", "message_content": {}}, timeout=10)
        assert write.status_code == 401
        browser.cookies.set("swf_lite_session", "admin:" + "0" * 64)
        forged = browser.get(server.http_url + STATUS, timeout=10)
        assert forged.status_code == 401 and forged.json() == {"detail": "Invalid session."}
        browser.cookies.clear()
        ended = browser.delete(server.http_url + "/_swf_lite/session/", timeout=10)
        assert ended.status_code == 200 and "swf_lite_session=;" in ended.headers["Set-Cookie"].replace('""', "")


# -- direct writes: the publisher writes to an idle plain-HTTP stream itself ---------------------------


def _queued_event(n: int) -> events.Event:
    return events.Event(n, "stf_gen", {"n": n}, events.frame("stf_gen", {"n": n}, n))


def _waiting(sub: events.Subscriber, direct, timeout: float = 2.0) -> tuple[threading.Thread, list]:
    """A thread waiting in ``sub.get`` with ``direct`` (what a stream's thread does between events)."""
    got: list = []
    thread = threading.Thread(target=lambda: got.append(sub.get(timeout, direct)))
    thread.start()
    wait_for(lambda: sub._direct is not None, timeout=2, interval=0.005)
    return thread, got


def test_an_idle_stream_gets_the_event_written_by_the_publisher():
    sub = events.Subscriber("c", view=lambda change: None, maxlen=5)
    written: list[bytes] = []
    thread, got = _waiting(sub, lambda data: written.append(data) or b"", timeout=0.3)
    sub.offer(_queued_event(1))
    thread.join()
    assert written == [_queued_event(1).frame]  # nothing queued, the waiting thread was not needed
    assert got == [None] and sub.depth == 0
    assert (sub.queued, sub.sent, sub.sent_directly) == (1, 1, 1)


def test_a_direct_write_the_socket_took_part_of_leaves_the_rest_for_the_stream_thread():
    sub = events.Subscriber("c", view=lambda change: None, maxlen=5)
    thread, got = _waiting(sub, lambda data: data[10:])  # the socket took 10 bytes
    sub.offer(_queued_event(1))
    thread.join(timeout=1)
    assert got == [None]  # woken at once, to send the rest before anything else
    assert sub.carry() == _queued_event(1).frame[10:]
    assert sub.carry() == b""
    sub.offer(_queued_event(2))  # nobody waits now: queued
    assert sub.get(0.1) == _queued_event(2)


def test_events_go_through_the_queue_when_the_socket_is_full_or_the_replay_sent_them():
    sub = events.Subscriber("c", view=lambda change: None, maxlen=5)
    sub.set_skip_upto(1)
    written: list[bytes] = []
    thread, got = _waiting(sub, lambda data: written.append(data) or b"", timeout=0.5)
    sub.offer(_queued_event(1))  # sent by the replay already: never written again
    assert written == []
    thread.join(timeout=0.1)
    assert thread.is_alive()  # still waiting for a new event
    sub.offer(_queued_event(2))
    thread.join()
    assert written == [_queued_event(2).frame]
    thread, got = _waiting(sub, lambda data: None)  # not writable now
    sub.offer(_queued_event(3))
    thread.join(timeout=1)
    assert got == [_queued_event(3)]  # the stream's thread writes it, in order
    assert sub.sent_directly == 1


def test_writers_hand_changes_to_the_bus_thread_which_sends_what_piled_up_in_one_write():
    bus = events.Bus(max_clients=2, queue_size=10)
    sub = bus.subscribe("idle")
    release = threading.Event()
    written: list[bytes] = []

    def slow_socket(data: bytes) -> bytes:
        release.wait(5)  # a client whose socket takes its time
        written.append(data)
        return b""

    thread, _ = _waiting(sub, slow_socket, timeout=5)
    started = time.monotonic()
    bus.publish_later([_event(1)])  # the bus thread is stuck in the slow write from here on
    wait_for(lambda: bus._publishing, timeout=2, interval=0.005)
    bus.publish_later([_event(2)])
    bus.publish_later([_event(3), _event(4)])
    assert time.monotonic() - started < 0.5  # no writer waited for the client
    assert written == []
    release.set()
    assert bus.flush(timeout=5)
    assert written[0] == events.message_event(_event(1).row, 1).frame
    assert written[1:] == [b"".join(events.message_event(_event(n).row, n).frame for n in (2, 3, 4))]
    assert (sub.sent_directly, bus.stats()["messages_published"], bus.changes) == (4, 4, 4)
    thread.join(timeout=6)


def test_nobody_subscribed_publishes_at_once_without_a_thread():
    bus = events.Bus(max_clients=1, queue_size=10)
    bus.publish_later([_event(1), _event(2)])
    assert bus.changes == 2 and bus._thread is None


def test_the_publisher_preserves_commit_order_and_resets_under_many_writers():
    bus = events.Bus(max_clients=1, queue_size=5000)
    sub = bus.subscribe("all")
    order = threading.Lock()
    counter = iter(range(1, 2001))

    def writer() -> None:
        for _ in range(250):
            with order:  # what the service's commit lock does: numbering and hand-over in one step
                bus.publish_later([_event(next(counter))])

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bus.flush(timeout=10)
    got = [sub.get(0).id for _ in range(sub.depth)]
    assert got == list(range(1, 2001))
    bus.publish_later([_event(2001), events.Change("reset", "*", None, None), _event(1)])
    assert bus.flush(timeout=5)
    assert [sub.get(0).id for _ in range(sub.depth)] == [1]  # what came before the reset is gone


def test_a_stream_never_gets_a_message_stored_before_it_connected_that_the_bus_publishes_later(server, receivers):
    gate = threading.Event()
    blocker = server.ctx.bus.subscribe("blocks-the-publisher", view=lambda change: gate.wait(10) and None,
                                       kind="test")  # fmt: skip
    try:
        post_message(server.http_url, server.token, content={"n": "first"})  # the publisher waits in the view
        early = post_message(server.http_url, server.token, content={"n": "early"})  # stored, its turn comes later
        rc = Receiver(server.http_url, server.token)
        receivers.append(rc)
        rc.connected()
    finally:
        gate.set()
        server.ctx.bus.unsubscribe(blocker)
    late = post_message(server.http_url, server.token, content={"n": "late"})
    _, data, event_id = rc.next_message()
    assert data["n"] == "late", (early, late, data)
    assert event_id > 0


def test_plain_http_streams_are_written_by_the_publisher_and_tls_streams_by_their_thread(server, receivers):
    plain = Receiver(server.http_url, server.token)
    tls = Receiver(server.https_url, server.token, verify=str(server.ca_bundle))
    receivers.extend([plain, tls])
    subs = {s.client_id: s for s in server.ctx.bus.subscribers}
    plain_sub, tls_sub = subs[plain.connected()], subs[tls.connected()]
    wait_for(lambda: plain_sub._direct is not None)  # idle, waiting for events
    for n in range(5):
        post_message(server.http_url, server.token, content={"n": n})
    for rc in (plain, tls):
        assert [rc.next_message()[1]["n"] for _ in range(5)] == list(range(5))
    wait_for(lambda: tls_sub.sent == plain_sub.sent == 5)  # counted just after the write
    assert tls_sub.sent_directly == 0
    assert plain_sub.sent_directly >= 1  # the events it was idle for
