"""Least privilege (issue 11, item 8): DNS-rebinding protection, database passwords masked wherever
they are printed, JSON never sniffed as HTML."""

from __future__ import annotations

import http.client
import json

import pytest
import requests

from swf_lite import cli
from swf_lite.api.control import public_settings
from swf_lite.config import Settings, mask_url
from swf_lite.hosts import HostCheck, split_host
from swf_lite.server import SwfLiteServer
from tests.conftest import make_settings

# -- DNS rebinding ------------------------------------------------------------------------------


def raw(server, method, path, host, body=None, token=True, scheme="http"):
    """One request with a forged Host header, over a plain socket-level client."""
    port = int(server.url(scheme).rsplit(":", 1)[1])
    if scheme == "https":
        import ssl

        context = ssl.create_default_context(cafile=str(server.ca_bundle))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host} if host is not None else {}
    if token:
        headers["Authorization"] = f"Token {server.token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        if host is None:
            conn.putrequest(method, path, skip_host=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            if data:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
        else:
            conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def port_of(server, scheme="http"):
    return int(server.url(scheme).rsplit(":", 1)[1])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_forged_host_is_refused_and_nothing_stored(server, scheme):
    before = requests.get(server.http_url + "/api/systemagents/", timeout=10,
                          headers={"Authorization": f"Token {server.token}"}).json()  # fmt: skip
    agent = {"instance_name": "rebound-agent", "agent_type": "test", "status": "OK"}
    forged = f"evil.example:{port_of(server, scheme)}"
    status, headers, body = raw(server, "POST", "/api/systemagents/heartbeat/", forged, body=agent, scheme=scheme)
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert headers.get("X-Content-Type-Options") == "nosniff"
    detail = json.loads(body)["detail"]
    assert detail.startswith("Unknown host") and "evil.example" in detail and "--allowed-hosts" in detail
    after = requests.get(server.http_url + "/api/systemagents/", timeout=10,
                         headers={"Authorization": f"Token {server.token}"}).json()  # fmt: skip
    assert after == before
    assert "rebound-agent" not in json.dumps(after)


def test_forged_host_with_big_body_is_cut_off_at_once(server):
    """The body of a refused request is not read (nor drained): the answer comes at once and the
    connection closes."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(b"POST /api/systemagents/heartbeat/ HTTP/1.1\r\nHost: evil.example\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 500000000\r\n\r\n{")  # fmt: skip
        started, received = time.monotonic(), b""
        while chunk := sock.recv(65536):
            received += chunk
        assert time.monotonic() - started < 3
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"Unknown host" in received


def test_forged_host_refused_for_pages_and_control(server):
    for path in ("/", "/_swf_lite/config/", "/api/"):
        status, headers, body = raw(server, "GET", path, "evil.example")
        assert status == 400, path
        assert json.loads(body)["detail"].startswith("Unknown host")
        assert b"<" not in body


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost", "127.0.0.1",
                                  "127.1.2.3:{port}", "LOCALHOST:{port}", "localhost.:{port}", "[::1]"])  # fmt: skip
def test_loopback_hosts_accepted(server, host):
    status, headers, body = raw(server, "GET", "/_swf_lite/config/", host.format(port=port_of(server)))
    assert status == 200, body
    assert json.loads(body)["settings"]["host"] == "127.0.0.1"


def test_request_without_host_is_accepted(server):
    status, _, body = raw(server, "GET", "/api/", None)
    assert status == 200, body


def test_requests_through_the_printed_urls_work(server, api, anon):
    assert api.get("/api/").status_code == 200
    assert anon.get("/api/").status_code == 200


def test_malformed_host_refused(server):
    for host in ("localhost:abc", "[::1", "evil.example:80:80"):
        status, _, _ = raw(server, "GET", "/api/", host)
        assert status == 400, host


def test_allowed_hosts_admits_names(tmp_path):
    settings = make_settings(tmp_path / "data", tls=False, allowed_hosts="host.docker.internal, Agents.Example:9")
    with SwfLiteServer(settings) as srv:
        for host in ("host.docker.internal", f"host.docker.internal:{port_of(srv)}", "agents.example:1"):
            agent = {"instance_name": f"agent-{len(host)}", "agent_type": "test", "status": "OK"}
            status, _, body = raw(srv, "POST", "/api/systemagents/heartbeat/", host, body=agent)
            assert status in (200, 201), (host, body)
        assert raw(srv, "GET", "/api/", "evil.example")[0] == 400


def test_allowed_hosts_star_admits_any(tmp_path):
    with SwfLiteServer(make_settings(tmp_path / "data", tls=False, allowed_hosts="*")) as srv:
        assert raw(srv, "GET", "/api/", "evil.example")[0] == 200


def test_allowed_hosts_from_env_and_flag(monkeypatch):
    monkeypatch.setenv("SWF_LITE_ALLOWED_HOSTS", "a.example,b.example")
    assert Settings.from_env().allowed_host_list == ["a.example", "b.example"]
    ns = cli.build_parser().parse_args(["--allowed-hosts", "c.example"])
    assert ns.allowed_hosts == "c.example"


def test_server_app_chain_kept(server):
    assert server.app.app.routes  # the tests' route introspection still works
    assert isinstance(server.wsgi_app, HostCheck) and server.wsgi_app.app is server.app


def test_wildcard_bind_admits_machine_names_and_ips():
    import socket

    check = HostCheck.for_settings(lambda e, s: [b""], Settings(host="0.0.0.0"))
    assert check.allows(socket.gethostname())
    assert check.allows(f"{socket.getfqdn()}:8002")
    assert check.allows("192.168.1.5:8002")
    assert not check.allows("evil.example")
    specific = HostCheck.for_settings(lambda e, s: [b""], Settings(host="192.168.1.5"))
    assert specific.allows("192.168.1.5:8002") and specific.allows("localhost")
    assert not specific.allows("192.168.1.6") and not specific.allows(socket.gethostname() + ".evil.example")


@pytest.mark.parametrize(("value", "name"), [("a:1", "a"), ("[::1]:80", "::1"), ("::1", "::1"), ("Ex.ORG.", "ex.org"),
                                             ("a:", None), ("[::1]x", None), ("", None)])  # fmt: skip
def test_split_host(value, name):
    assert split_host(value) == name


# -- database passwords ---------------------------------------------------------------------------

TRICKY = [
    ("postgresql://alice:secret@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:s3cr@t@db.example:5432/swf", "postgresql://alice:***@db.example:5432/swf"),
    ("postgresql://alice:se:cr:et@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:se/cr/et@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:p%40ss%2Fw@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:with spaces @db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:a@b/c:d@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("postgresql://alice:q?x#y[z@db.example/swf", "postgresql://alice:***@db.example/swf"),
    ("mysql://:only@db.example/swf", "mysql://:***@db.example/swf"),
    ("postgresql://alice:pw@[::1]:5432/swf", "postgresql://alice:***@[::1]:5432/swf"),
    ("postgresql://db.example/swf?user=alice&password=topsecret&sslmode=require",
     "postgresql://db.example/swf?user=alice&password=***&sslmode=require"),
    ("postgresql://alice@db.example/swf", "postgresql://alice@db.example/swf"),
    ("sqlite:////home/a:b@c/swf-lite.sqlite3", "sqlite:////home/a:b@c/swf-lite.sqlite3"),
    ("sqlite:///relative.db", "sqlite:///relative.db"),
    ("", ""),
]  # fmt: skip


@pytest.mark.parametrize(("url", "masked"), TRICKY)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize("url", [u for u, _ in TRICKY if "***" in _])
def test_mask_url_hides_every_password_character(url):
    secret = url.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2] if "password=" not in url else "topsecret"
    assert secret not in mask_url(url)


def test_public_settings_masks(tmp_path):
    s = make_settings(tmp_path, db="postgresql://alice:s3cr@t/x@db.example/swf")
    out = public_settings(s)
    assert out["db"] == out["db_url"] == "postgresql://alice:***@db.example/swf"
    assert "s3cr" not in json.dumps(out)


class _BannerServer:
    """What print_banner reads, without binding sockets (a postgres URL cannot be opened here)."""

    def __init__(self, settings):
        self.settings = settings
        self.http_url = "http://127.0.0.1:1"
        self.https_url = None
        self.ca_bundle = None
        self.token = "tok"
        self.bridge = None

    def client_env(self):
        return {"SWF_MONITOR_URL": self.http_url}


def test_banner_masks_password(tmp_path, capsys):
    s = make_settings(tmp_path, db="postgresql://alice:p@ss:w/rd@db.example/swf")
    cli.print_banner(_BannerServer(s))
    out = capsys.readouterr().out
    assert "postgresql://alice:***@db.example/swf" in out
    assert "p@ss" not in out and "w/rd" not in out


def test_start_failure_output_masks_password(tmp_path, capsys):
    url = "postgresql://alice:hunter2@127.0.0.1:1/swf"
    code = cli.main(["--db", url, "--data-dir", str(tmp_path / "data"), "--http-port", "0", "--no-tls",
                     "--log-level", "DEBUG", "--quiet"])  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err


def test_config_endpoint_masks_password(server, api):
    server.ctx.settings.db = "postgresql://alice:p@ss@db.example/swf"  # what a postgres deployment shows
    try:
        got = api.get("/_swf_lite/config/").json()["settings"]
    finally:
        server.ctx.settings.db = ""
    assert got["db"] == got["db_url"] == "postgresql://alice:***@db.example/swf"


def test_real_banner_line(server, capsys):
    cli.print_banner(server)
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("database"))
    assert line.split()[-1] == server.settings.db_url  # sqlite URLs hold no password: unchanged


# -- JSON is never sniffed ---------------------------------------------------------------------------


def test_json_responses_are_nosniff(api, anon):
    for resp in (api.get("/api/"), api.get("/_swf_lite/config/"), anon.get("/_swf_lite/config/"),
                 api.get("/api/no-such-thing/"), api.post("/api/systemagents/heartbeat/", data="{bad",
                                                         headers={"Content-Type": "application/json"})):  # fmt: skip
        assert resp.headers["Content-Type"].startswith("application/json"), resp.url
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", (resp.url, resp.status_code)
