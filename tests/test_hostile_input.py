"""Issue 11 items 1 and 2: encoding at the edge and the middleware as the last line of defence.

Odd bytes in bodies, queries and headers, broken or stalled bodies, a database that cannot serve and
exceptions outside any route all answer JSON with a ``detail`` (or DRF's field errors), never 500 for
the client's mistake, never an empty body or a traceback; the server keeps serving afterwards.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3

import peewee as pw
import pytest
from api_helpers import ok, running, shared_server

module_server, server = shared_server()

RUN = {"run_number": 1, "start_time": "2026-03-31T12:00:00Z"}


def raw_request(srv, data: bytes, *, shut: bool = False, timeout: float = 5.0) -> bytes:
    """Send ``data`` over a plain socket and read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", srv.endpoints[0].port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except socket.timeout:
            pass
    return out


def parse(response: bytes) -> tuple[int, dict[str, str], object]:
    """(status, lower-case headers, JSON body) of exactly one HTTP response."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    assert int(headers["content-length"]) == len(body), f"one response only: {response!r}"
    assert headers["content-type"].startswith("application/json"), response
    return int(lines[0].split()[1]), headers, json.loads(body)


def post_head(srv, path: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {srv.token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()  # fmt: skip


def still_serving(srv) -> None:
    resp = raw_request(srv, b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert parse(resp)[0] == 200


# -- item 1: encoding at the edge -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"run_number": 1, "start_time": "2026-03-31T12:00:00Z", "run_conditions": "é"}'.encode("latin-1"),
        json.dumps(RUN).encode("utf-16"),  # json.loads(bytes) would guess UTF-16 and accept it
        b"\xef\xbb\xbf" + json.dumps(RUN).encode(),  # a BOM is not JSON (DRF refuses it too)
    ],
    ids=["latin-1", "utf-16", "bom"],
)
def test_json_body_is_strictly_utf8(api, anon, raw):
    resp = api.post("/api/runs/", data=raw, headers={"Content-Type": "application/json"})
    assert ok(resp, 400)["detail"].startswith("JSON parse error - ")
    assert ok(anon.get("/api/runs/")) == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"run_number": 1, "start_time": "2026-03-31T12:00:00Z", "run_conditions": {"x": ["\\ud800"]}}',
         "run_conditions"),
        (b'{"run_number": 1, "start_time": "2026-03-31T12:00:00Z", "run_conditions": {"\\udfff": 1}}',
         "run_conditions"),
        (b'{"run_number": 1, "start_time": "2026-03-31T12:00:00Z", "comment": "a\\udc80b"}', "comment"),
        (b'{"\\ud800": 1, "run_number": 1, "start_time": "2026-03-31T12:00:00Z"}', None),
    ],
    ids=["nested-value", "nested-key", "unknown-field", "top-key"],
)  # fmt: skip
def test_lone_surrogates_are_400_and_nothing_is_stored(api, anon, raw, field):
    resp = api.post("/api/runs/", data=raw, headers={"Content-Type": "application/json"})
    body = ok(resp, 400)
    if field is None:
        assert body["detail"].startswith("JSON parse error - ")
    else:
        assert isinstance(body[field], list) and body[field], body
    assert ok(anon.get("/api/runs/")) == []
    resp = api.post("/api/ai-memory/record/", data=b'{"username": "u", "session_id": "s", "role": "user", '
                    b'"content": "\\ud800"}', headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 400, resp.text
    assert ok(anon.get("/api/ai-memory/", params={"username": "u", "session_id": "s"}))["items"] == []


def test_form_values_that_are_not_utf8_are_400(api):
    resp = api.post("/api/runs/", data=b"run_number=1&start_time=%ff", headers={
        "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert ok(resp, 400) == {"start_time": ["The value is not valid UTF-8."]}


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/runs/?run_number=%ff", "run_number"),
        ("/api/runs/?run_number=1&limit=%c3", "limit"),
        ("/api/runs/?offset=%ed%a0%80&limit=1", "offset"),  # an encoded surrogate is not UTF-8 either
        ("/api/ai-memory/?username=%ff", "username"),
        ("/api/ai-memory/?turns=%fe", "turns"),
    ],
)
def test_query_values_that_are_not_utf8_are_400_not_dropped(api, anon, path, param):
    ok(api.post("/api/runs/", json=RUN), 201)
    assert ok(anon.get(path), 400) == {param: ["The value is not valid UTF-8."]}


def test_query_names_and_headers_that_are_not_utf8_are_400(server):
    for request in (b"GET /api/runs/?%ff=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent: \xff\xfe\r\nConnection: close\r\n\r\n",
                    b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token \xe9\r\n\r\n"):  # fmt: skip
        status, _, body = parse(raw_request(server, request))
        assert status == 400 and "not valid UTF-8" in body["detail"], body
    still_serving(server)


@pytest.mark.parametrize("value", ["9" * 30, "9" * 5000, "²", "-3", "1.5", " 7 ", "+2"])
def test_numeric_query_parameters_are_bounded(api, anon, value):
    ok(api.post("/api/runs/", json=RUN), 201)
    assert isinstance(ok(anon.get("/api/ai-memory/", params={"turns": value}))["items"], list)
    page = ok(anon.get("/api/runs/", params={"limit": value, "offset": value}))
    assert set(page) == {"count", "next", "previous", "results"}


# -- item 2: the middleware as the last line of defence --------------------------------------------


def test_body_shorter_than_content_length_is_400(server, anon):
    resp = raw_request(server, post_head(server, "/api/runs/", "Content-Length: 100\r\n") + b"{}", shut=True)
    status, headers, body = parse(resp)
    assert status == 400 and "Content-Length" in body["detail"], body
    assert headers["connection"] == "close"
    assert ok(anon.get("/api/runs/")) == []


def test_stalled_body_is_408_and_the_server_stays_healthy(tmp_path):
    with running(tmp_path) as srv:
        srv.endpoints[0].server.timeout = 0.5  # cheroot applies it to connections accepted from now on
        resp = raw_request(srv, post_head(srv, "/api/runs/", "Content-Length: 100\r\n") + b'{"run', timeout=5)
        status, _, body = parse(resp)
        assert status == 408 and body["detail"], body
        still_serving(srv)


@pytest.mark.parametrize("chunks", [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nab", b"3\r\nabcXX\r\n0\r\n\r\n"])
def test_bad_chunked_encoding_is_400_json(server, chunks):
    resp = raw_request(server, post_head(server, "/api/runs/", "Transfer-Encoding: chunked\r\n") + chunks, shut=True)
    status, _, body = parse(resp)
    assert status == 400 and body["detail"], body
    still_serving(server)


@pytest.mark.parametrize("message", ["database is locked", "unable to open database file"])
def test_database_unavailable_is_503(tmp_path, monkeypatch, message):
    with running(tmp_path) as srv:
        with monkeypatch.context() as m:  # outside any route: the middleware connects
            m.setattr(srv.ctx.store, "connect", lambda: (_ for _ in ()).throw(sqlite3.OperationalError(message)))
            resp = raw_request(srv, b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, headers, body = parse(resp)
            assert status == 503 and body["detail"] and headers["retry-after"] == "1", body
        with monkeypatch.context() as m:  # inside a route: peewee's wrapped error
            m.setattr(srv.ctx.store, "insert", lambda *a, **k: (_ for _ in ()).throw(pw.OperationalError(message)))
            resp = raw_request(srv, post_head(srv, "/api/runs/", "Connection: close\r\nContent-Length: 58\r\n")
                               + json.dumps(RUN).encode().ljust(58))  # fmt: skip
            status, _, body = parse(resp)
            assert status == 503 and body["detail"], body
        still_serving(srv)


def test_an_exception_escaping_the_app_is_json_500(tmp_path, monkeypatch, caplog):
    with running(tmp_path) as srv:
        inner = srv.app.app

        def broken(environ, start_response):
            raise RuntimeError("boom")

        monkeypatch.setattr(srv.app, "app", broken)
        with caplog.at_level(logging.ERROR, logger="swf_lite.api"):
            resp = raw_request(srv, b"GET /api/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status, _, body = parse(resp)
        assert status == 500 and body == {"detail": "Internal server error: RuntimeError"}
        assert b"Traceback" not in resp and b"boom" not in resp
        monkeypatch.setattr(srv.app, "app", inner)
        still_serving(srv)


def test_access_log_cannot_be_forged_through_the_url(tmp_path, caplog):
    with running(tmp_path, log_level="INFO") as srv, caplog.at_level(logging.INFO, logger="swf_lite.access"):
        resp = raw_request(srv, b"GET /api/runs/%0d%0aGET%20/forged%20200%1b[31m%e2%80%a8x HTTP/1.1\r\n"
                                b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert parse(resp)[0] == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "swf_lite.access"]
    assert any("/forged" in line for line in lines), lines
    for line in lines:
        assert line.isprintable(), repr(line)
    assert any("\\r\\nGET /forged 200\\x1b[31m\\u2028x" in line for line in lines), lines
