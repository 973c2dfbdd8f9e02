"""Issue 11 items 3 and 4: slow and hostile clients cannot stall the server; refusals reach the client.

Before the edge (``swf_lite/edge.py``) cheroot shook TLS hands in its accept loop (every silent HTTPS
client delayed all others by a second) and gave each new connection a worker while it sent its head
(a few dozen slow clients held every worker). A large body over TLS ended in a connection reset
instead of the JSON 413. These tests hold real hostile connections on both ports and time real
clients next to them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from api_helpers import running

HEAD = b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def port(srv, name: str) -> int:
    return next(ep.port for ep in srv.endpoints if ep.name == name)


def tls_context(srv) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(srv.ca_bundle))


def read_all(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Everything until the server closes (or ``limit`` seconds)."""
    sock.settimeout(limit)
    out = b""
    with contextlib.suppress(socket.timeout, ConnectionResetError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


def json_error(response: bytes) -> tuple[int, dict]:
    """(status, JSON body) of one raw response, which must be a JSON error with a ``detail``."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert headers["content-type"] == "application/json", response
    assert int(headers["content-length"]) == len(body), response
    parsed = json.loads(body)
    assert parsed["detail"], parsed
    return int(lines[0].split()[1]), parsed


def timed_get(url: str, **kw) -> float:
    """Seconds for one request on a new connection (what an agent's first call costs)."""
    started = time.monotonic()
    with requests.Session() as session:
        resp = session.get(url, timeout=10, **kw)
    assert resp.status_code == 200, resp.text
    return time.monotonic() - started


@pytest.fixture
def small_pool(tmp_path):
    """4 API workers + 6 stream workers: a few dozen hostile connections are several times the pool."""
    with running(tmp_path, threads=4, sse_max_clients=4, sse_page_clients=2) as srv:
        yield srv


def test_dozens_of_hostile_connections_do_not_delay_other_clients(small_pool):
    srv = small_pool
    http, https = port(srv, "http"), port(srv, "https")
    ctx = tls_context(srv)
    held: list[socket.socket] = []
    try:
        for _ in range(20):  # TCP connects that never start TLS: each used to hold the accept loop ~1 s
            held.append(socket.create_connection(("127.0.0.1", https)))
        for _ in range(10):  # a TLS record header and then silence: a handshake that never ends
            sock = socket.create_connection(("127.0.0.1", https))
            sock.sendall(b"\x16\x03\x01\x02\x00")
            held.append(sock)
        for _ in range(20):  # plain connects that send nothing: each used to take a worker
            held.append(socket.create_connection(("127.0.0.1", http)))
        for _ in range(15):  # slowloris: a head that never ends, on both ports
            sock = socket.create_connection(("127.0.0.1", http))
            sock.sendall(HEAD + b"X-Slow: 1\r\n")
            held.append(sock)
        for _ in range(10):
            sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https)), server_hostname="localhost")
            sock.sendall(HEAD + b"X-Slow: 1\r\n")
            held.append(sock)
        for _ in range(5):  # a kept-alive connection whose next request stalls mid-head
            sock = socket.create_connection(("127.0.0.1", http))
            sock.sendall(HEAD + b"\r\n")
            answer = b""
            while not answer.endswith(b"\r\n\r\n[]"):  # the whole response: nothing may remain unread
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            sock.sendall(HEAD)
            held.append(sock)
        time.sleep(0.3)  # let every hostile connection reach the server
        times = []
        for _ in range(5):
            times.append(timed_get(srv.http_url + "/api/runs/"))
            times.append(timed_get(srv.https_url + "/api/runs/", verify=str(srv.ca_bundle)))
        assert max(times) < 1.0, times
        for sock in held:  # they really were held (not refused) while the clients were served
            sock.setblocking(False)
            with pytest.raises((BlockingIOError, ssl.SSLWantReadError)):
                sock.recv(1)
    finally:
        for sock in held:
            sock.close()


def test_a_stalled_request_gets_408_and_a_silent_connection_is_closed(tmp_path):
    with running(tmp_path) as srv:
        for ep in srv.endpoints:
            ep.server.timeout = 0.5
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port(srv, "http"))) as slow:
            slow.sendall(HEAD)
            status, body = json_error(read_all(slow))
        assert status == 408, body
        with socket.create_connection(("127.0.0.1", port(srv, "https"))) as silent:
            assert read_all(silent) == b""  # closed: no handshake, nothing to answer
        with tls_context(srv).wrap_socket(
            socket.create_connection(("127.0.0.1", port(srv, "https"))), server_hostname="localhost"
        ) as slow_tls:
            slow_tls.sendall(HEAD)
            status, _ = json_error(read_all(slow_tls))
        assert status == 408
        assert time.monotonic() - started < 5


def test_an_oversized_head_gets_431(tmp_path):
    with running(tmp_path) as srv, socket.create_connection(("127.0.0.1", port(srv, "http"))) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        status, body = json_error(read_all(sock))
        assert status == 431 and "65536" in body["detail"], body


def test_plain_http_on_the_tls_port_gets_a_json_400(tmp_path):
    with running(tmp_path) as srv, socket.create_connection(("127.0.0.1", port(srv, "https"))) as sock:
        sock.sendall(HEAD + b"\r\n")
        status, body = json_error(read_all(sock))
        assert status == 400 and "HTTPS" in body["detail"], body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/runs/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # raw non-UTF-8 request target
        b"GARBAGE\r\n\r\n",  # no method, target, version
        b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
        b"GET /api/runs/ HTTP/7.0\r\nHost: 127.0.0.1\r\n\r\n",
    ],
    ids=["non-utf8-target", "garbage-line", "bad-header", "http-version"],
)
def test_protocol_errors_cheroot_detects_are_json(tmp_path, request_bytes):
    with running(tmp_path) as srv, socket.create_connection(("127.0.0.1", port(srv, "http"))) as sock:
        sock.sendall(request_bytes)
        status, _ = json_error(read_all(sock))
        assert 400 <= status < 600


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_a_body_over_the_limit_gets_its_json_413(tmp_path, scheme, chunked):
    """requests sends the whole body before it reads: the server must read on, not reset."""
    with running(tmp_path, max_body=64 * 1024) as srv:
        big = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
        data = (big[i : i + 65536] for i in range(0, len(big), 65536)) if chunked else big
        resp = requests.post(
            f"{srv.url(scheme)}/api/runs/",
            data=data,
            headers={"Authorization": f"Token {srv.token}", "Content-Type": "application/json"},
            verify=str(srv.ca_bundle),
            timeout=10,
        )
        assert resp.status_code == 413, resp.text
        assert resp.json()["detail"].startswith("Request body is larger than the limit")
        assert requests.get(srv.http_url + "/api/runs/", timeout=5).json() == []


def test_pipelined_requests_and_expect_continue_still_work(tmp_path):
    with running(tmp_path) as srv, socket.create_connection(("127.0.0.1", port(srv, "http"))) as sock:
        sock.sendall(HEAD + b"\r\n" + HEAD + b"\r\n" + HEAD + b"Connection: close\r\n\r\n")
        assert read_all(sock).count(b"HTTP/1.1 200 OK") == 3
    with running(tmp_path / "b") as srv, socket.create_connection(("127.0.0.1", port(srv, "http"))) as sock:
        body = json.dumps({"run_number": 7, "start_time": "2026-03-31T12:00:00Z"}).encode()
        sock.sendall(
            b"POST /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Token {srv.token}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert read_all(sock).startswith(b"HTTP/1.1 201 Created")


def test_the_worker_pool_keeps_threads_free_for_requests_while_streams_hold_theirs(tmp_path):
    """Each server starts ``threads`` workers; concurrent short requests share them (no growth: more
    threads would only contend for the GIL), and every open stream gets a worker on top, so the API
    keeps answering; never more than threads + both stream limits."""
    with running(tmp_path, threads=2, sse_max_clients=4, sse_page_clients=1) as srv:
        pool = next(ep.server.requests for ep in srv.endpoints if ep.name == "http")
        assert len(pool._threads) == 2

        def five_gets(_: int) -> None:
            with requests.Session() as session:
                for _ in range(5):
                    assert session.get(srv.http_url + "/api/runs/", timeout=10).status_code == 200

        with ThreadPoolExecutor(8) as clients:
            list(clients.map(five_gets, range(8)))
        assert len(pool._threads) == 2
        auth = {"Authorization": f"Token {srv.token}", "Accept": "text/event-stream"}
        sessions = [requests.Session() for _ in range(4)]  # requests.get() would close each stream at return
        streams = []  # urllib3 closes the connection of a response, or a line iterator, that is dropped
        try:
            for session in sessions:  # each stream holds a worker for as long as it is open
                r = session.get(srv.http_url + "/api/messages/stream/", headers=auth, stream=True, timeout=5)
                lines = r.iter_lines()
                streams.append((r, lines))
                assert r.status_code == 200
                assert next(lines).startswith(b"event: connected")
            status = requests.get(srv.http_url + "/api/messages/stream/status/", headers=auth, timeout=5).json()
            assert status["connected_clients"] == 4
            assert timed_get(srv.http_url + "/api/runs/") < 1.0  # four streams, two workers at start
            assert len(pool._threads) == 2 + 4
            assert pool.held == 4
        finally:
            for session in sessions:
                session.close()
