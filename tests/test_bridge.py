"""The ActiveMQ bridge (issue 14, ``--stomp``) against a real broker.

The broker is Debian's ActiveMQ 5.x (``tests/broker.py``), one per test session, started on loopback;
its clients are stomp.py connections made the way swf-common-lib's BaseAgent makes them. Tests that
need it skip with the reason when no broker (or stomp.py) is installed; the settings tests and the
optional-import test run everywhere.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from broker import Broker, free_port, missing

from swf_lite.config import MASK, Settings
from swf_lite.testing import ServerOptions, SubprocessServer, start_in_process, stop_in_process

from conftest import Client

TOPIC = "/topic/epictopic"  # where the agents send (swf-common-lib BaseAgent.send_message)
MESSAGES = "/api/workflow-messages/"
WAIT = 15.0  # seconds any single expectation may take (a loaded CI machine)


# -- helpers -------------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], timeout: float = WAIT, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Agent:
    """A stomp.py connection as an agent makes one (swf-common-lib BaseAgent): send JSON to the topic,
    optionally subscribed to a destination, collecting what arrives."""

    def __init__(self, port: int, subscribe: str | None = None) -> None:
        import stomp

        self.received: queue.Queue[tuple[dict[str, str], str]] = queue.Queue()
        done = threading.Event()
        agent = self

        class Listener(stomp.ConnectionListener):
            def on_message(self, frame: Any) -> None:
                agent.received.put((dict(frame.headers), frame.body))

            def on_receipt(self, frame: Any) -> None:
                done.set()

        self.conn = stomp.Connection([("127.0.0.1", port)], vhost="127.0.0.1", try_loopback_connect=False,
                                     auto_content_length=False)  # fmt: skip
        self.conn.set_listener("", Listener())
        self.conn.connect("admin", "admin", wait=True, version="1.1", headers={"client-id": f"test-{uuid.uuid4()}"})
        if subscribe:
            self.conn.subscribe(destination=subscribe, id=1, ack="auto", headers={"receipt": "subscribed"})
            assert done.wait(WAIT), "no subscription receipt"

    def send(self, body: Any, destination: str = TOPIC, raw: bool = False, **headers: str) -> None:
        self.conn.send(body=body if raw else json.dumps(body), destination=destination, headers=headers)

    def next(self, timeout: float = WAIT) -> tuple[dict[str, str], Any]:
        headers, body = self.received.get(timeout=timeout)
        return headers, json.loads(body)

    def close(self) -> None:
        if self.conn.is_connected():
            self.conn.disconnect()


class Stream:
    """``GET /api/messages/stream/`` read in a thread: (event, data) pairs into a queue."""

    def __init__(self, base: str, token: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.response = requests.get(base + "/api/messages/stream/", stream=True, timeout=(10, 60),
                                     headers={"Authorization": f"Token {token}"})  # fmt: skip
        assert self.response.status_code == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.next()[0] == "connected"

    def _read(self) -> None:
        event = None
        try:
            for line in self.response.iter_lines(decode_unicode=True, chunk_size=1):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event is not None:
                    self.events.put((event, json.loads(line[6:])))
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed

    def next(self, timeout: float = WAIT) -> tuple[str, dict[str, Any]]:
        while True:
            event, data = self.events.get(timeout=timeout)
            if event != "heartbeat":
                return event, data

    def close(self) -> None:
        self.response.close()


def api_for(server: Any) -> Client:
    return Client(server.http_url, server.token, True)


def messages(api: Client, **params: Any) -> list[dict[str, Any]]:
    resp = api.get(MESSAGES, params=params)
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


# -- fixtures ------------------------------------------------------------------------------------


def _need_broker() -> None:
    pytest.importorskip("stomp", reason="the bridge needs stomp.py (pip install 'swf-lite[stomp]')")
    reason = missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[Broker]:
    """One ActiveMQ for the session (Java starts in seconds)."""
    _need_broker()
    with Broker(tmp_path_factory.mktemp("activemq")) as b:
        yield b


@pytest.fixture
def own_broker(tmp_path) -> Iterator[Broker]:
    """A broker of this test's own (it is killed and restarted)."""
    _need_broker()
    with Broker(tmp_path / "activemq") as b:
        yield b


def bridged(data_dir: Path, address: str, **settings: Any) -> Any:
    # short stream heartbeats: a test's stream reader thread notices its response closing at the next one
    settings = {"stomp": address, "sse_heartbeat": 0.5, **settings}
    return start_in_process(data_dir, ServerOptions(tls=False, settings=settings))


@pytest.fixture
def server(broker, tmp_path) -> Iterator[Any]:
    srv = bridged(tmp_path / "data", broker.address)
    assert srv.bridge is not None and srv.bridge.connected, srv.bridge and srv.bridge.status()
    yield srv
    stop_in_process(srv)


@pytest.fixture
def api(server) -> Iterator[Client]:
    c = api_for(server)
    yield c
    c.session.close()


@pytest.fixture
def agent(broker) -> Iterator[Agent]:
    a = Agent(broker.port, subscribe=TOPIC)
    yield a
    a.close()


# -- broker -> swf-lite --------------------------------------------------------------------------


def test_agent_message_is_stored_as_the_real_listener_stores_it(server, api, agent):
    workflow = api.post("/api/workflows/", json={
        "filename": "swf.100010.000001.stf", "run_id": "100010", "daq_state": "run", "daq_substate": "physics",
        "generated_time": "2026-03-31T12:00:00Z", "stf_start_time": "2026-03-31T12:00:00Z",
        "stf_end_time": "2026-03-31T12:00:01Z"})  # fmt: skip
    assert workflow.status_code == 201, workflow.text
    body = {"msg_type": "start_run", "run_id": 100010, "sender": "daq-agent-alice-1", "recipient": "all-agents",
            "namespace": "alice-ns", "execution_id": "stf_datataking-alice-0001", "state": "run",
            "substate": "physics", "filename": "swf.100010.000001.stf",
            "timestamp": "2026-03-31T12:00:00Z"}  # fmt: skip
    agent.send(body)
    headers, echoed = agent.next()  # what every topic subscriber got, the broker's message-id among it
    assert echoed == body
    [row] = wait_for(lambda: messages(api), what="the stored message")
    assert {k: row[k] for k in ("message_type", "sender_agent", "recipient_agent", "namespace", "execution_id",
                                "run_id", "queue_name", "message_content", "is_successful", "workflow")} == {
        "message_type": "start_run", "sender_agent": "daq-agent-alice-1", "recipient_agent": "all-agents",
        "namespace": "alice-ns", "execution_id": "stf_datataking-alice-0001", "run_id": "100010",
        "queue_name": TOPIC, "message_content": body, "is_successful": True,
        "workflow": workflow.json()["workflow_id"]}  # fmt: skip
    meta = row["message_metadata"]
    assert meta["source"] == "activemq" and meta["broker_message_id"] == headers["message-id"]
    assert meta["bridge"] == server.bridge.instance
    # the run-lifecycle transition, in the same transaction
    state = api.get("/api/run-states/100010/").json()
    assert (state["phase"], state["state"], state["substate"]) == ("physics", "run", "physics")
    assert state["metadata"]["execution_id"] == "stf_datataking-alice-0001"


def test_the_bridge_reports_itself_in_the_config(server, api, agent):
    agent.send({"msg_type": "stf_gen", "run_id": 1, "sender": "daq"})
    wait_for(lambda: server.bridge.status()["stored"] == 1)
    body = api.get("/_swf_lite/config/").json()
    assert body["bridge"]["connected"] is True and body["bridge"]["stored"] == 1
    assert body["bridge"]["destination"] == "/topic/epictopic"


def test_agent_message_reaches_an_open_stream(server, agent):
    stream = Stream(server.http_url, server.token)
    try:
        sent = time.monotonic()
        agent.send({"msg_type": "stf_gen", "run_id": 100011, "sender": "daq-agent-1", "namespace": "ns",
                    "filename": "swf.100011.000001.stf", "processed_by": "daq-agent-1"})  # fmt: skip
        event, data = stream.next()
        latency = time.monotonic() - sent
    finally:
        stream.close()
    assert event == "stf_gen"
    assert data["sender_agent"] == "daq-agent-1" and data["run_id"] == 100011 and data["queue_name"] == TOPIC
    assert data["filename"] == "swf.100011.000001.stf"
    assert latency < 2.0, f"broker -> stream took {latency:.3f} s"
    print(f"broker -> stream: {latency * 1000:.1f} ms")


def test_what_is_not_a_workflow_message(server, api, agent):
    """Not JSON, not an object, no msg_type: logged, not stored. ``agent_name`` + ``status`` is an agent
    heartbeat (the real listener's first test); ``processed_by`` stands in for a missing ``sender``."""
    agent.send("not json", raw=True)
    agent.send([1, 2])
    agent.send({"run_id": 1})
    agent.send({"agent_name": "data-agent-bob-7", "status": "OK"})
    agent.send({"msg_type": "data_ready", "processed_by": "data-agent-bob-7", "namespace": " ", "run_id": {"x": 1}})
    [row] = wait_for(lambda: messages(api), what="the data_ready message")
    assert (row["message_type"], row["sender_agent"], row["namespace"], row["run_id"]) == (
        "data_ready", "data-agent-bob-7", None, None)  # fmt: skip
    status = server.bridge.status()
    assert (status["ignored"], status["heartbeats"], status["stored"]) == (3, 1, 1), status
    [agent_row] = api.get("/api/systemagents/").json()
    assert (agent_row["instance_name"], agent_row["status"]) == ("data-agent-bob-7", "OK")


def test_message_with_the_swf_lite_mark_is_not_stored(server, api, agent):
    agent.send({"msg_type": "data_ready", "n": 1}, swf_lite_origin="another-swf-lite")
    agent.send({"msg_type": "data_ready", "n": 2})
    wait_for(lambda: messages(api), what="the unmarked message")
    assert [m["message_content"]["n"] for m in messages(api)] == [2]
    assert server.bridge.status()["own"] == 1


# -- swf-lite -> broker --------------------------------------------------------------------------


def test_http_posted_message_reaches_broker_agents_once(server, api, agent):
    resp = api.post(MESSAGES, json={"message_type": "run_imminent", "sender_agent": "workflow-runner",
                                    "namespace": "ns", "run_id": "100012", "execution_id": "ex-12",
                                    "message_content": {"msg_type": "run_imminent", "state": "beam"}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    headers, body = agent.next()
    assert body == {"msg_type": "run_imminent", "state": "beam", "sender": "workflow-runner", "namespace": "ns",
                    "run_id": "100012", "execution_id": "ex-12"}  # fmt: skip
    assert headers["destination"] == TOPIC
    assert headers["swf_lite_origin"] == server.bridge.instance
    assert headers["swf_lite_message_id"] == resp.json()["message_id"]
    time.sleep(0.5)  # the bridge got it back from the topic too: it must not store it again
    assert len(messages(api)) == 1
    assert agent.received.empty()
    assert server.bridge.status()["own"] == 1


def test_message_for_a_queue_goes_to_that_queue(server, api, broker):
    worker = Agent(broker.port, subscribe="/queue/workflow_control")
    try:
        resp = api.post(MESSAGES, json={"message_type": "run_workflow", "queue_name": "/queue/workflow_control",
                                        "message_content": {"workflow_name": "stf_datataking"}})  # fmt: skip
        assert resp.status_code == 201, resp.text
        headers, body = worker.next()
        assert body == {"workflow_name": "stf_datataking", "msg_type": "run_workflow"}
        assert headers["destination"] == "/queue/workflow_control"
    finally:
        worker.close()


# -- the broker going away -----------------------------------------------------------------------


def test_broker_restart_is_survived(own_broker, tmp_path):
    srv = bridged(tmp_path / "data", own_broker.address)
    api = api_for(srv)
    try:
        assert srv.bridge.connected
        own_broker.kill()
        wait_for(lambda: not srv.bridge.connected, what="the bridge to notice")
        # requests never wait for the broker; what is posted meanwhile is kept for it (sent to a queue
        # here: the broker holds a queue's messages for a consumer that subscribes later, where a topic
        # would only reach the subscribers the broker happens to know when it routes them)
        for n in range(3):
            started = time.monotonic()
            resp = api.post(MESSAGES, json={"message_type": "data_ready", "queue_name": "/queue/kept",
                                            "message_content": {"n": n}})  # fmt: skip
            assert resp.status_code == 201 and time.monotonic() - started < 1.0
        srv.ctx.sync()  # the bus hands changes on from its own thread: all three reached the bridge
        assert srv.bridge.status()["publish_pending"] + 1 >= 3  # (one may be in the publisher's hands)
        own_broker.start()
        assert srv.bridge.wait_connected(WAIT), srv.bridge.status()
        wait_for(lambda: srv.bridge.status()["published"] == 3, what="the kept messages to be published")
        worker = Agent(own_broker.port, subscribe="/queue/kept")
        try:
            assert [worker.next()[1]["n"] for _ in range(3)] == [0, 1, 2]
        finally:
            worker.close()
        # both ways work again
        agent = Agent(own_broker.port, subscribe=TOPIC)
        try:
            agent.send({"msg_type": "stf_gen", "n": 10})
            wait_for(lambda: len(messages(api)) == 4, what="the message sent after the restart")
            assert api.post(MESSAGES, json={"message_type": "data_ready", "message_content": {"n": 11}}).status_code
            assert [agent.next()[1]["n"] for _ in range(2)] == [10, 11]
        finally:
            agent.close()
        assert srv.bridge.status()["connections"] >= 2
    finally:
        api.session.close()
        stop_in_process(srv)


def test_server_starts_and_serves_without_its_broker(tmp_path):
    pytest.importorskip("stomp", reason="the bridge needs stomp.py")
    started = time.monotonic()
    srv = bridged(tmp_path / "data", f"127.0.0.1:{free_port()}")
    api = api_for(srv)
    try:
        assert time.monotonic() - started < 10
        assert not srv.bridge.connected and srv.bridge.status()["last_error"]
        resp = api.post(MESSAGES, json={"message_type": "data_ready", "message_content": {}})
        assert resp.status_code == 201
    finally:
        api.session.close()
        started = time.monotonic()
        stop_in_process(srv)
        assert time.monotonic() - started < 5


# -- several processes, one database -------------------------------------------------------------


def test_two_processes_store_each_broker_message_once(broker, tmp_path, agent, engine):
    """Two swf-lite processes over one database (a SQLite file; a PostgreSQL database, where every
    process also hears the other's commits), both bridged: each broker message is stored once (the
    broker message-id claim), each HTTP-posted message is published once (by the process that took
    the POST)."""
    db = engine.store_url(tmp_path)
    options = ServerOptions(tls=False, settings={"stomp": broker.address, "db": db})
    one = SubprocessServer(tmp_path / "one", options).start()
    two = SubprocessServer(tmp_path / "two", options)
    try:
        two.start()
        api = api_for(one)
        n = 40
        for i in range(n):
            agent.send({"msg_type": "stf_gen", "run_id": 100020, "seq_no": i, "sender": "daq-agent-1"})
        rows = wait_for(lambda: (r := messages(api, message_type="stf_gen")) and len(r) >= n and r,
                        what=f"{n} stored messages")  # fmt: skip
        time.sleep(1.0)  # let any second copy arrive
        rows = messages(api, message_type="stf_gen")
        assert sorted(r["message_content"]["seq_no"] for r in rows) == list(range(n))
        by = {}
        for r in rows:
            by[r["message_metadata"]["bridge"]] = by.get(r["message_metadata"]["bridge"], 0) + 1
        print(f"stored by: {by}")
        for _ in range(n):  # drain the test agent's own copies
            agent.next()
        for srv in (one, two):
            with api_for(srv).session as s:
                resp = s.post(srv.http_url + MESSAGES, json={"message_type": "data_ready",
                                                             "message_content": {"from": srv.http_url}})  # fmt: skip
                assert resp.status_code == 201, resp.text
        got = sorted(agent.next()[1]["from"] for _ in range(2))
        assert got == sorted([one.http_url, two.http_url])
        time.sleep(0.5)
        assert agent.received.empty()
        assert len(messages(api)) == n + 2
    finally:
        one.stop()
        two.stop()
        engine.release(Settings(db=db))


class Frame:
    """A MESSAGE frame as stomp.py hands it to a listener."""

    def __init__(self, body: Any, **headers: str) -> None:
        self.headers = {"destination": TOPIC, **headers}
        self.body = body if isinstance(body, str) else json.dumps(body)


def test_claim_rule_without_a_broker(tmp_path, engine):
    """The exactly-once rule itself, with no broker: two processes' bridges (here two servers in this
    process over one database) handed the same frames at the same time store each once."""
    pytest.importorskip("stomp", reason="the bridge needs stomp.py")
    address = f"127.0.0.1:{free_port()}"  # nothing listens: the bridges only store what they are handed
    db = engine.store_url(tmp_path)
    one = bridged(tmp_path / "one", address, db=db)
    two = bridged(tmp_path / "two", address, db=db)
    try:
        frames = [Frame({"msg_type": "stf_gen", "i": i}, **{"message-id": f"ID:test-{i}"}) for i in range(50)]
        threads = [threading.Thread(target=lambda b=srv.bridge: [b.store(f) for f in frames]) for srv in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        rows = messages(api_for(one))
        assert sorted(r["message_content"]["i"] for r in rows) == list(range(50))
        counts = [srv.bridge.status() for srv in (one, two)]
        assert sum(c["stored"] for c in counts) == 50 and sum(c["duplicates"] for c in counts) == 50
        # a frame without a message-id has nothing to claim: every process stores it
        for srv in (one, two):
            srv.bridge.store(Frame({"msg_type": "no_id"}))
        assert len(messages(api_for(one), message_type="no_id")) == 2
        # old claims are pruned; a pruned id is a new message again
        claims = one.bridge.claims
        claims.update(claimed_at=0).where(claims.message_id == "ID:test-0").execute()
        one.bridge._prune()
        assert claims.select().count() == 49
    finally:
        stop_in_process(one)
        stop_in_process(two)
        engine.release(Settings(db=db))


def test_mapping_both_ways():
    pytest.importorskip("stomp", reason="the bridge needs stomp.py")
    from swf_lite.bridge import broker_body, destination_of, message_values

    body = {"msg_type": "stf_gen", "sender": "daq", "processed_by": "other", "recipient": None, "run_id": 7,
            "namespace": "n" * 200, "execution_id": ""}  # fmt: skip
    values = message_values(body, TOPIC, {"k": 1})
    assert values == {"message_type": "stf_gen", "sender_agent": "daq", "recipient_agent": None,
                      "namespace": "n" * 100, "execution_id": None, "run_id": "7", "queue_name": TOPIC,
                      "message_content": body, "message_metadata": {"k": 1}, "is_successful": True}  # fmt: skip
    assert message_values({"msg_type": "x", "processed_by": "p"}, TOPIC, {})["sender_agent"] == "p"
    stored = {"message_type": "stf_gen", "sender_agent": "daq", "recipient_agent": "data", "namespace": "n",
              "run_id": "7", "execution_id": None, "message_content": {"msg_type": "own", "x": 1}}  # fmt: skip
    assert broker_body(stored) == {"msg_type": "own", "x": 1, "sender": "daq", "recipient": "data", "namespace": "n",
                                   "run_id": "7"}  # fmt: skip
    assert broker_body({**stored, "message_content": "text"})["message_content"] == "text"
    assert [destination_of(t) for t in ("epictopic", "/queue/q", "/topic/t")] == [TOPIC, "/queue/q", "/topic/t"]


def test_what_is_published():
    """Created workflow messages this process committed, except what a bridge took from a broker; with
    processes sharing PostgreSQL (``swf_lite.feed``) every bus hears every commit, and only the
    committing process publishes."""
    pytest.importorskip("stomp", reason="the bridge needs stomp.py")
    from types import SimpleNamespace

    from swf_lite.bridge import Bridge
    from swf_lite.events import Change

    def published(change: Change, feed: Any = None) -> bool:
        fake = SimpleNamespace(ctx=SimpleNamespace(feed=feed))
        change.number = 1
        return Bridge._view(fake, change) is not None

    row = {"message_id": "m", "message_type": "x", "message_metadata": {}}
    from_broker = {**row, "message_metadata": {"source": "activemq", "bridge": "h:1:a"}}
    assert published(Change("create", "workflow-messages", "m", row))
    assert not published(Change("create", "workflow-messages", "m", from_broker))
    assert not published(Change("update", "workflow-messages", "m", row))
    assert not published(Change("create", "runs", 1, {"run_number": 1}))
    mine, theirs = Change("create", "workflow-messages", "m", row), Change("create", "workflow-messages", "m", row)
    mine.origin, theirs.origin = "me", "them"
    assert published(mine, SimpleNamespace(origin="me")) and not published(theirs, SimpleNamespace(origin="me"))


# -- settings and packaging (no broker needed) ---------------------------------------------------


def test_settings_read_the_agents_variables():
    env = {"ACTIVEMQ_USER": "agent", "ACTIVEMQ_PASSWORD": "s3cret", "ACTIVEMQ_USE_SSL": "True",
           "ACTIVEMQ_SSL_CA_CERTS": "/etc/ca.pem", "SWF_LITE_STOMP": "mq.example.org:61612"}  # fmt: skip
    s = Settings.from_env(env)
    assert (s.stomp_user, s.stomp_password, s.stomp_ssl, s.stomp_ca_certs) == ("agent", "s3cret", True,
                                                                                 Path("/etc/ca.pem"))  # fmt: skip
    assert s.stomp_address == ("mq.example.org", 61612) and s.stomp_topic == "epictopic"
    assert Settings.from_env({**env, "SWF_LITE_STOMP_USER": "lite"}).stomp_user == "lite"  # ours win
    assert Settings.from_env(env, stomp_user="flag").stomp_user == "flag"  # flags win
    assert s.public()["stomp_password"] == MASK
    assert Settings(stomp="[::1]:61613").stomp_address == ("::1", 61613)
    assert Settings().stomp_address is None
    for bad in ("localhost", "localhost:0", ":61613", "host:port"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            Settings(stomp=bad)


def test_stomp_is_imported_only_with_the_flag(tmp_path):
    code = ("import sys; from swf_lite.testing import start_in_process, stop_in_process, ServerOptions; "
            f"srv = start_in_process({str(tmp_path / 'data')!r}, ServerOptions(tls=False)); stop_in_process(srv); "
            "print(sorted(m for m in ('stomp', 'swf_lite.bridge') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_stomp_py_is_a_startup_error(tmp_path):
    code = ("import sys; sys.modules['stomp'] = None; from swf_lite.cli import main; "
            f"sys.exit(main(['--data-dir', {str(tmp_path / 'data')!r}, '--no-tls', '--http-port', '0', "
            "'--stomp', '127.0.0.1:61613']))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "pip install 'swf-lite[stomp]'" in out.stderr, out.stderr
