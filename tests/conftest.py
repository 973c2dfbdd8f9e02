"""Shared fixtures: a real server on port 0 (both protocols) over a real database — a SQLite file and,
for every test that takes a server, a PostgreSQL database too (``engine``: a throwaway cluster on
loopback, ``tests/pg.py``; those tests skip, saying why, where no PostgreSQL binaries exist)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg
import pytest
import requests

from swf_lite.config import Settings
from swf_lite.server import SwfLiteServer

ENGINES = ("sqlite", "postgresql")


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


@dataclass
class Engine:
    """The database engine a test runs on: ``settings`` gives a server settings with a fresh database."""

    name: str
    cluster: Any = None

    def __str__(self) -> str:
        return self.name

    def settings(self, data_dir: Path, **kw: Any) -> Settings:
        if self.cluster is not None:
            kw.setdefault("db", self.cluster.database())
        return make_settings(data_dir, **kw)

    @contextlib.contextmanager
    def serve(self, data_dir: Path, **kw: Any) -> Iterator[SwfLiteServer]:
        """A started server on this engine (a fresh database); stopped, and its database dropped, after."""
        settings = self.settings(data_dir, **kw)
        srv = SwfLiteServer(settings).start()
        try:
            yield srv
        finally:
            srv.stop()
            self.release(settings)

    def release(self, settings: Settings) -> None:
        """After the server stopped: drop its PostgreSQL database."""
        if self.cluster is not None and settings.db:
            self.cluster.drop(settings.db)

    def store_url(self, tmp_path: Path) -> str:
        """A database URL for a bare Store."""
        return self.cluster.database() if self.cluster is not None else f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = pg.binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install '.[test]'")
    cluster = pg.Cluster(bindir).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request) -> Engine:
    """Each storage-touching test runs once per engine (session scope: pytest groups the tests per engine)."""
    if request.param == "postgresql":
        return Engine("postgresql", request.getfixturevalue("pg_cluster"))
    return Engine("sqlite")


@pytest.fixture
def server(tmp_path, engine):
    """A fresh server per test (function scope: tests may change its data freely)."""
    with engine.serve(tmp_path / "data") as srv:
        yield srv


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
