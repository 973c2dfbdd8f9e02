"""pytest plugin (entry point ``pytest11``): a real swf-lite for the tests of testbed agents.

Installing swf-lite is enough; pytest loads this module in every session of that environment, so
it only declares fixtures, an option and a marker (nothing autouse). The handle and the servers
live in :mod:`swf_lite.testing` (usable without pytest); the server stack (bottle, cheroot, peewee,
requests, cryptography) is imported only when a fixture starts a server.

Fixtures:

``swf_monitor`` (function scope)
    Resets all data and counters (then re-loads the seed, if any) before the test and returns a
    :class:`swf_lite.testing.SwfMonitor` handle: ``http_url``, ``https_url``, ``url``, ``token``,
    ``ca_bundle``, ``data_dir``, ``env``, ``apply_env(monkeypatch)``, ``reset()``, ``seed()``,
    ``records()``, ``logs()``, ``messages()``, ``agents()``, ``request()``.
``swf_lite_server`` (session scope)
    The in-process :class:`swf_lite.server.SwfLiteServer` (both servers on port 0, data dir from
    ``tmp_path_factory``: one per xdist worker), stopped at the end with bounded waits.
``swf_lite_subprocess_server`` (session scope)
    The same as a ``python -m swf_lite`` child process (:class:`swf_lite.testing.SubprocessServer`),
    for agents tested in another process. Chosen by ``--swf-lite-subprocess`` (or ini
    ``swf_lite_subprocess = true``) for the whole run, or by the ``swf_lite_subprocess`` marker per
    test/module.
``swf_lite_host``, ``swf_lite_tls``, ``swf_lite_seed``, ``swf_lite_settings`` (session scope)
    Override them in a ``conftest.py`` (keep session scope): bind address, HTTPS on/off, a seed
    (path to a seed file, ``"demo"`` for the bundled demo data, or a dict in the seed format) and
    any other :class:`swf_lite.config.Settings` fields as a dict.
``swf_lite_options`` (session scope)
    Those four as one :class:`swf_lite.testing.ServerOptions` (the seed read once), which both
    server fixtures start from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swf_lite.testing import (
    ServerOptions,
    SubprocessServer,
    SwfMonitor,
    read_seed,
    start_in_process,
    stop_in_process,
)

if TYPE_CHECKING:  # pragma: no cover
    from swf_lite.server import SwfLiteServer

# the options, the handle and the server also come from swf_lite.testing
__all__ = ["MARKER", "ServerOptions", "SubprocessServer", "SwfMonitor"]

MARKER = "swf_lite_subprocess"


# -- hooks -----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("swf-lite", "swf-lite: a local SWF Monitor for agent tests")
    group.addoption(
        "--swf-lite-subprocess",
        action="store_true",
        default=False,
        help="run swf-lite as a 'python -m swf_lite' subprocess instead of in-process "
        "(for agents tested in another process)",
    )
    parser.addini("swf_lite_subprocess", type="bool", default=False,
                  help="run swf-lite as a subprocess (as --swf-lite-subprocess)")  # fmt: skip
    group.addoption(
        "--swf-lite-db",
        default=None,
        metavar="URL",
        help="database of the test server instead of a SQLite file in a temporary dir, e.g. "
        "postgresql://user:pass@127.0.0.1:5432/agent_tests (every table is emptied before each test)",
    )
    parser.addini("swf_lite_db", default="", help="database URL of the test server (as --swf-lite-db)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: give this test's swf_monitor a 'python -m swf_lite' subprocess server"
    )


# -- overridable settings (session scope: the server lives for the session) -----------------------


@pytest.fixture(scope="session")
def swf_lite_host() -> str:
    """Address both servers bind (URLs use it too)."""
    return "127.0.0.1"


@pytest.fixture(scope="session")
def swf_lite_tls() -> bool:
    """Serve HTTPS as well (``SWF_MONITOR_URL`` then points at it, with a CA bundle)."""
    return True


@pytest.fixture(scope="session")
def swf_lite_seed() -> str | Path | dict[str, Any] | None:
    """Loaded at start and again after every reset: a seed-file path, ``"demo"``, a dict, or None."""
    return None


@pytest.fixture(scope="session")
def swf_lite_settings() -> dict[str, Any]:
    """Other :class:`swf_lite.config.Settings` fields, e.g. ``{"stale_agent_seconds": 5}``."""
    return {}


@pytest.fixture(scope="session")
def swf_lite_options(
    pytestconfig: pytest.Config,
    swf_lite_host: str,
    swf_lite_tls: bool,
    swf_lite_seed: str | Path | dict[str, Any] | None,
    swf_lite_settings: dict[str, Any],
) -> ServerOptions:
    """The four settings above as one value (plus ``--swf-lite-db``), the seed read once per session
    as a dict (a missing seed file fails before any server starts)."""
    db = pytestconfig.getoption("swf_lite_db") or pytestconfig.getini("swf_lite_db")
    settings = {"db": db, **swf_lite_settings} if db else swf_lite_settings
    return ServerOptions(host=swf_lite_host, tls=swf_lite_tls, settings=settings,
                         seed=read_seed(swf_lite_seed))  # fmt: skip


# -- servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def swf_lite_server(
    tmp_path_factory: pytest.TempPathFactory, swf_lite_options: ServerOptions
) -> Iterator[SwfLiteServer]:
    """swf-lite in this process: both servers on port 0 over a SQLite file in a temporary dir (or the
    ``--swf-lite-db`` database)."""
    server = start_in_process(tmp_path_factory.mktemp("swf-lite"), swf_lite_options)
    try:
        yield server
    finally:
        stop_in_process(server)


@pytest.fixture(scope="session")
def swf_lite_subprocess_server(
    tmp_path_factory: pytest.TempPathFactory, swf_lite_options: ServerOptions
) -> Iterator[SubprocessServer]:
    """swf-lite as a ``python -m swf_lite`` subprocess (started on first use, stopped at the end)."""
    server = SubprocessServer(tmp_path_factory.mktemp("swf-lite-subprocess"), swf_lite_options)
    with server.start():
        yield server


# -- the per-test handle ---------------------------------------------------------------------------


def _wants_subprocess(request: pytest.FixtureRequest) -> bool:
    config = request.config
    return bool(config.getoption("swf_lite_subprocess") or config.getini("swf_lite_subprocess")
                or request.node.get_closest_marker(MARKER))  # fmt: skip


@pytest.fixture
def swf_monitor(request: pytest.FixtureRequest, swf_lite_options: ServerOptions) -> Iterator[SwfMonitor]:
    """A clean swf-lite for this test (all data and counters reset first)."""
    name = "swf_lite_subprocess_server" if _wants_subprocess(request) else "swf_lite_server"
    handle = SwfMonitor(request.getfixturevalue(name), seed=swf_lite_options.seed)
    handle.reset()
    yield handle
    handle.close()
