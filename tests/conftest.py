"""Shared fixtures: a real server on port 0 (both protocols) over a real SQLite file."""

from __future__ import annotations

import pytest
import requests

from swf_lite.config import Settings
from swf_lite.server import SwfLiteServer


@pytest.fixture(autouse=True)
def _no_global_ca_bundle(monkeypatch):
    """These machines export REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE globally; tests set them deliberately."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def make_settings(data_dir, **kw) -> Settings:
    kw.setdefault("http_port", 0)
    kw.setdefault("https_port", 0)
    kw.setdefault("log_level", "WARNING")
    kw.setdefault("time_zone", "UTC")
    return Settings(data_dir=data_dir, **kw)


@pytest.fixture
def server(tmp_path):
    """A fresh server per test (function scope: tests may change its data freely)."""
    srv = SwfLiteServer(make_settings(tmp_path / "data")).start()
    yield srv
    srv.stop()


class Client:
    """A requests session configured the way swf-common-lib's BaseAgent configures its own."""

    def __init__(self, base: str, token: str | None, verify):
        self.base = base
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"
        self.verify = verify

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        kw.setdefault("allow_redirects", False)
        kw.setdefault("verify", self.verify)
        return self.session.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(server):
    """Token client over HTTPS, trusting the generated CA bundle."""
    c = Client(server.https_url, server.token, str(server.ca_bundle))
    yield c
    c.session.close()


@pytest.fixture
def anon(server):
    """No-token client over plain HTTP (logging, CLI reads)."""
    c = Client(server.http_url, None, True)
    yield c
    c.session.close()
