"""The pytest plugin, tested the way agent repositories use it: inner pytest runs via pytester."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"

# A stand-in for a requests-based agent: it reads only the variables real agents read.
AGENT = """
import os

import requests


class Agent:
    def __init__(self, name="test-agent"):
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {os.environ['SWF_API_TOKEN']}"
        self.base = os.environ["SWF_MONITOR_URL"] + "/api"
        self.log_base = os.environ["SWF_MONITOR_HTTP_URL"] + "/api"
        self.name = name

    def call(self, method, path, **kw):
        resp = self.api.request(method, self.base + path, timeout=10, allow_redirects=False, **kw)
        resp.raise_for_status()
        return resp.json()

    def log(self, message):
        record = {"app_name": "agent", "instance_name": self.name, "timestamp": "2026-03-31T12:00:00",
                  "level": 20, "levelname": "INFO", "message": message, "module": "agent",
                  "funcname": "run", "lineno": 1, "process": os.getpid(), "thread": 1}
        requests.post(self.log_base + "/logs/", json=record, timeout=10).raise_for_status()

    def take_data(self):
        run_number = self.call("POST", "/state/next-run-number/")["run_number"]
        self.call("POST", "/systemagents/heartbeat/", json={"instance_name": self.name, "agent_type": "data"})
        run = self.call("POST", "/runs/", json={"run_number": run_number, "start_time": "2026-03-31T12:00:00Z"})
        self.call("POST", "/workflow-messages/", json={"message_type": "run_imminent", "run_id": str(run_number),
                                                       "sender_agent": self.name,
                                                       "message_content": {"msg_type": "run_imminent"}})
        self.log(f"run {run_number} started")
        return run
"""


@pytest.fixture
def agent_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """An agent repository: its agent module, no swf-lite configuration at all."""
    pytester.makepyfile(agent=AGENT)
    pytester.syspathinsert()
    return pytester


SERVER_STACK = ("bottle", "cheroot", "peewee", "requests", "cryptography", "OpenSSL", "swf_lite.server",
                "swf_lite.app", "swf_lite.db", "swf_lite.store", "swf_lite.tls")  # fmt: skip


def _loaded_after_import(module: str) -> list[str]:
    """Top-level modules of interest that ``import <module>`` loads in a fresh interpreter."""
    code = (
        f"import sys, {module}; "
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in ('bottle', 'cheroot', "
        "'peewee', 'requests', 'cryptography', 'OpenSSL', 'pytest', '_pytest') or m.startswith('swf_lite'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


def _server_stack(loaded: list[str]) -> list[str]:
    return [m for m in loaded if any(m == s or m.startswith(s + ".") for s in SERVER_STACK)]


@pytest.mark.parametrize("module", ["swf_lite.pytest_plugin", "swf_lite.testing", "swf_lite.clientenv"])
def test_importing_the_plugin_stays_cheap(module: str):
    """pytest imports the plugin in every session of the environment: no server stack until a fixture
    starts a server (the same for the pytest-free module and the client environment)."""
    assert _server_stack(_loaded_after_import(module)) == []


@pytest.mark.parametrize("module", ["swf_lite.testing", "swf_lite.clientenv"])
def test_testing_module_does_not_need_pytest(module: str):
    assert [m for m in _loaded_after_import(module) if m.split(".")[0] in ("pytest", "_pytest")] == []


def test_one_client_environment_for_cli_server_and_fixtures(tmp_path: Path):
    """The subprocess server builds its clients' environment with the function the server and the
    CLI use, and finds the CA bundle under the name the TLS module writes it with."""
    from swf_lite import clientenv, config, pytest_plugin, server, testing, tls

    assert server.client_env is clientenv.client_env and server.url_host is clientenv.url_host
    assert tls.BUNDLE_NAME == config.BUNDLE_FILE
    assert pytest_plugin.SwfMonitor is testing.SwfMonitor
    assert pytest_plugin.SubprocessServer is testing.SubprocessServer
    sub = testing.SubprocessServer(tmp_path / "d")  # not started: set what the ready line would
    sub.http_url, sub.https_url, sub.token = "http://127.0.0.1:1", "https://127.0.0.1:2", "t" * 40
    assert sub.client_env() == clientenv.client_env(sub.http_url, sub.https_url, sub.token,
                                                    tmp_path / "d" / config.BUNDLE_FILE)  # fmt: skip
    assert sub.client_env()["REQUESTS_CA_BUNDLE"] == str(tmp_path / "d" / "ca_bundle.pem")
    sub.https_url = None
    assert sub.ca_bundle is None
    assert sub.client_env() == {"SWF_MONITOR_URL": "http://127.0.0.1:1", "SWF_MONITOR_HTTP_URL": "http://127.0.0.1:1",
                                "SWF_API_TOKEN": "t" * 40}  # fmt: skip


def test_apply_env_takes_anything_with_setenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from swf_lite.testing import ServerOptions, SubprocessServer, SwfMonitor

    class Recorder:
        def __init__(self) -> None:
            self.env: dict[str, str] = {}

        def setenv(self, name: str, value: str) -> None:
            self.env[name] = value

    monkeypatch.setenv("NO_PROXY", "example.org")
    monkeypatch.delenv("no_proxy", raising=False)
    sub = SubprocessServer(tmp_path / "d", ServerOptions(tls=False))
    sub.http_url, sub.token, sub.pid = "http://127.0.0.1:1", "t" * 40, 1
    monitor = SwfMonitor(sub)
    recorder = Recorder()
    before = dict(os.environ)
    assert monitor.apply_env(recorder) == monitor.env
    assert dict(os.environ) == before  # only through the setter
    assert recorder.env == {**monitor.env, "SWF_ENV_LOADED": "1", "NO_PROXY": "example.org,127.0.0.1,localhost,::1",
                            "no_proxy": "127.0.0.1,localhost,::1"}  # fmt: skip
    assert not monitor.in_process and monitor.pid == 1 and monitor.data_dir == tmp_path / "d"


PYTEST_FREE = """
import os, sys, tempfile
from pathlib import Path

sys.modules["pytest"] = None  # importing pytest now fails: this must not need it
from swf_lite.testing import ServerOptions, SwfMonitor, start_in_process, stop_in_process

SEED = {"runs": [{"run_number": 7, "start_time": "2026-03-31T12:00:00Z"}]}
with tempfile.TemporaryDirectory() as tmp:
    server = start_in_process(Path(tmp) / "data", ServerOptions(seed=SEED))
    try:
        monitor = SwfMonitor(server, seed=SEED)
        assert [r["run_number"] for r in monitor.records("runs")] == [7]
        monitor.apply_env()
        assert os.environ["SWF_MONITOR_URL"] == monitor.https_url and os.environ["SWF_ENV_LOADED"] == "1"
        assert monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 100010
        monitor.reset({"next_run_number": 500})
        assert [r["run_number"] for r in monitor.records("runs")] == [7]
        assert monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 500
        monitor.close()
    finally:
        stop_in_process(server)
print("ok")
"""


def test_testing_module_works_without_pytest(tmp_path: Path):
    script = tmp_path / "use_it.py"
    script.write_text(PYTEST_FREE, encoding="utf-8")
    root = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWF_", "REQUESTS_CA", "CURL_CA"))}
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_plugin_is_loaded_here_and_changes_nothing_unasked(pytestconfig, request):
    """pytest loads it through the entry point in this repository too: fixtures only, nothing autouse."""
    assert pytestconfig.pluginmanager.hasplugin("swf_lite")
    assert not any(name.startswith("swf_") for name in request.fixturenames)
    assert any(line.startswith("swf_lite_subprocess:") for line in pytestconfig.getini("markers"))


def test_plain_tests_start_no_server(pytester: pytest.Pytester):
    pytester.makepyfile("def test_nothing(request):\n    assert 'swf_monitor' not in request.fixturenames\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    basetemp = pytester.path.parent / "basetemp"
    assert not [p for p in basetemp.rglob("swf-lite*")]


def test_agent_module_passes_with_the_fixture(agent_project: pytest.Pytester):
    agent_project.makepyfile(
        test_agent="""
        import os

        import requests

        from agent import Agent


        def test_environment(swf_monitor, monkeypatch):
            env = swf_monitor.apply_env(monkeypatch)
            assert set(env) == {"SWF_MONITOR_URL", "SWF_MONITOR_HTTP_URL", "SWF_API_TOKEN",
                                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
            assert env["SWF_MONITOR_URL"] == swf_monitor.https_url == swf_monitor.url
            assert env["SWF_MONITOR_HTTP_URL"] == swf_monitor.http_url
            assert env["SWF_API_TOKEN"] == swf_monitor.token and len(swf_monitor.token) == 40
            assert env["REQUESTS_CA_BUNDLE"] == str(swf_monitor.ca_bundle) and swf_monitor.ca_bundle.exists()
            assert os.environ["SWF_ENV_LOADED"] == "1" and "127.0.0.1" in os.environ["NO_PROXY"]
            assert swf_monitor.data_dir.is_dir() and swf_monitor.pid == os.getpid()
            # HTTPS verified against the bundle, as requests does with REQUESTS_CA_BUNDLE exported
            assert requests.get(swf_monitor.https_url + "/health/", timeout=10).status_code == 200


        def test_agent_talks_to_it(swf_monitor, monkeypatch):
            swf_monitor.apply_env(monkeypatch)
            run = Agent("data-agent-me-1").take_data()
            assert run["run_number"] == 100010
            assert [r["run_id"] for r in swf_monitor.records("runs")] == [run["run_id"]]
            assert [r["run_number"] for r in swf_monitor.records("runs", run_number=100010)] == [100010]
            assert swf_monitor.records("runs", run_number=5) == []
            assert [a["instance_name"] for a in swf_monitor.agents()] == ["data-agent-me-1"]
            assert [m["message_type"] for m in swf_monitor.messages()] == ["run_imminent"]
            assert [m["run_id"] for m in swf_monitor.messages(message_type="run_imminent")] == ["100010"]
            assert [entry["message"] for entry in swf_monitor.logs(instance_name="data-agent-me-1")] == [
                "run 100010 started"]


        def test_request_helper(swf_monitor):
            resp = swf_monitor.request("POST", "/api/state/next-agent-id/")
            assert resp.status_code == 200 and resp.json()["agent_id"] == 1
            assert swf_monitor.request("GET", "/_swf_lite/config/").json()["settings"]["tls"] is True
        """
    )
    result = agent_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


ISOLATION = """
        from agent import Agent


        def test_1_writes(swf_monitor, monkeypatch):
            swf_monitor.apply_env(monkeypatch)
            Agent().take_data()
            Agent().take_data()
            assert len(swf_monitor.records("runs")) == 2


        def test_2_sees_nothing_of_it(swf_monitor, monkeypatch):
            for name in ("runs", "systemagents", "workflow-messages", "logs"):
                assert swf_monitor.records(name) == [], name
            swf_monitor.apply_env(monkeypatch)
            assert Agent().take_data()["run_number"] == 100010  # counters restarted too
            assert swf_monitor.request("POST", "/api/state/next-agent-id/").json()["agent_id"] == 1


        def test_3_reset_inside_a_test_with_counters(swf_monitor, monkeypatch):
            swf_monitor.apply_env(monkeypatch)
            Agent().take_data()
            swf_monitor.reset({"next_run_number": 200000, "next_agent_id": 40})
            assert swf_monitor.records("runs") == []
            assert Agent().take_data()["run_number"] == 200000
            assert swf_monitor.request("POST", "/api/state/next-agent-id/").json()["agent_id"] == 40


        def test_4_explicit_seed(swf_monitor):
            loaded = swf_monitor.seed({"runs": [{"run_number": 7, "start_time": "2026-03-31T12:00:00Z"}],
                                       "counters": {"next_run_number": 8}})
            assert loaded == {"runs": 1}
            assert [r["run_number"] for r in swf_monitor.records("runs")] == [7]
            assert swf_monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 8
"""


def test_each_test_starts_clean(agent_project: pytest.Pytester):
    agent_project.makepyfile(test_isolation=ISOLATION)
    result = agent_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_the_fixture_runs_on_a_given_postgresql_database(agent_project: pytest.Pytester, pg_cluster):
    """``--swf-lite-db``: the same agent tests, isolated the same way, on PostgreSQL (the rows land there)."""
    url = pg_cluster.database()
    agent_project.makepyfile(test_isolation=ISOLATION)
    result = agent_project.runpytest("-p", "no:cacheprovider", f"--swf-lite-db={url}")
    result.assert_outcomes(passed=4)
    import psycopg

    with psycopg.connect(url) as con:
        assert con.execute('SELECT run_number FROM "runs"').fetchall() == [(7,)]  # test_4's seed, left behind
    pg_cluster.drop(url)


def test_settings_fixtures_can_be_overridden(agent_project: pytest.Pytester):
    seed = {"runs": [{"run_number": 555, "start_time": "2026-03-31T12:00:00Z"}],
            "counters": {"next_run_number": 556}}  # fmt: skip
    agent_project.path.joinpath("seed.json").write_text(json.dumps(seed))
    agent_project.makeconftest(
        """
        from pathlib import Path

        import pytest


        @pytest.fixture(scope="session")
        def swf_lite_tls():
            return False


        @pytest.fixture(scope="session")
        def swf_lite_seed():
            return Path(__file__).parent / "seed.json"


        @pytest.fixture(scope="session")
        def swf_lite_settings():
            return {"stale_agent_seconds": 5, "user": "tester"}
        """
    )
    agent_project.makepyfile(
        test_overrides="""
        from agent import Agent


        def test_1_plain_http_and_seeded(swf_monitor, monkeypatch):
            assert swf_monitor.https_url is None and swf_monitor.ca_bundle is None
            assert swf_monitor.url == swf_monitor.http_url
            assert set(swf_monitor.env) == {"SWF_MONITOR_URL", "SWF_MONITOR_HTTP_URL", "SWF_API_TOKEN"}
            settings = swf_monitor.request("GET", "/_swf_lite/config/").json()["settings"]
            assert settings["stale_agent_seconds"] == 5 and settings["user"] == "tester"
            swf_monitor.apply_env(monkeypatch)
            assert Agent().take_data()["run_number"] == 556  # the seed's counters
            assert sorted(r["run_number"] for r in swf_monitor.records("runs")) == [555, 556]


        def test_2_seed_is_back_after_reset(swf_monitor, monkeypatch):
            assert [r["run_number"] for r in swf_monitor.records("runs")] == [555]
            swf_monitor.reset({"next_run_number": 900})  # explicit counters win over the seed's
            assert [r["run_number"] for r in swf_monitor.records("runs")] == [555]
            swf_monitor.apply_env(monkeypatch)
            assert Agent().take_data()["run_number"] == 900
        """
    )
    result = agent_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_demo_seed_by_name(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import pytest


        @pytest.fixture(scope="session")
        def swf_lite_seed():
            return "demo"
        """
    )
    pytester.makepyfile(
        """
        def test_demo_data(swf_monitor):
            assert len(swf_monitor.records("runs")) == 3
            assert swf_monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 100013
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


ISOLATION_TESTS = """
import os

import pytest

from agent import Agent


@pytest.mark.parametrize("n", range({count}))
def test_isolated(swf_monitor, monkeypatch, n):
    swf_monitor.apply_env(monkeypatch)
    assert swf_monitor.records("runs") == []
    assert Agent().take_data()["run_number"] == 100010
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join({out!r}, f"{{worker}}-{{n}}"), "w") as fh:
        fh.write(f"{{swf_monitor.http_url}} {{swf_monitor.pid}}")
"""


def _servers_by_worker(out: Path) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for f in out.iterdir():
        seen.setdefault(f.name.split("-")[0], set()).add(f.read_text())
    return seen


def test_xdist_gives_each_worker_its_own_server(agent_project: pytest.Pytester, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    agent_project.makepyfile(test_xdist=ISOLATION_TESTS.format(count=6, out=str(out)))
    result = agent_project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=180)
    result.assert_outcomes(passed=6)
    seen = _servers_by_worker(out)
    assert set(seen) == {"gw0", "gw1"}  # xdist's load scheduler hands both workers tests from the start
    assert all(len(urls) == 1 for urls in seen.values())  # one session server per worker
    assert len({u for urls in seen.values() for u in urls}) == len(seen)  # not shared between workers


def test_subprocess_option(agent_project: pytest.Pytester, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    agent_project.makepyfile(test_sub=ISOLATION_TESTS.format(count=2, out=str(out)))
    agent_project.makepyfile(
        test_sub_more="""
        import os


        def test_runs_elsewhere_and_reset_goes_over_http(swf_monitor, monkeypatch):
            assert not swf_monitor.in_process and swf_monitor.pid != os.getpid()
            assert swf_monitor.ca_bundle.exists() and swf_monitor.https_url.startswith("https://")
            swf_monitor.apply_env(monkeypatch)
            assert swf_monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 100010
            swf_monitor.reset({"next_run_number": 42})
            assert swf_monitor.request("POST", "/api/state/next-run-number/").json()["run_number"] == 42
            assert swf_monitor.seed({"runs": [{"run_number": 1, "start_time": "2026-03-31T12:00:00Z"}]}) == {"runs": 1}
            assert len(swf_monitor.records("runs")) == 1
        """
    )
    result = agent_project.runpytest("--swf-lite-subprocess", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    (urls,) = _servers_by_worker(out).values()
    (line,) = urls
    assert int(line.split()[1]) != os.getpid()


def test_subprocess_marker(agent_project: pytest.Pytester):
    agent_project.makepyfile(
        test_marker="""
        import os

        import pytest

        from agent import Agent


        @pytest.mark.swf_lite_subprocess
        def test_marked(swf_monitor, monkeypatch):
            assert swf_monitor.pid != os.getpid()
            swf_monitor.apply_env(monkeypatch)
            assert Agent().take_data()["run_number"] == 100010


        def test_unmarked(swf_monitor):
            assert swf_monitor.pid == os.getpid() and swf_monitor.records("runs") == []
        """
    )
    result = agent_project.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_subprocess_that_cannot_start_fails_with_its_stderr(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import pytest


        @pytest.fixture(scope="session")
        def swf_lite_settings():
            return {"threads": 0}
        """
    )
    pytester.makepyfile("def test_x(swf_monitor):\n    pass\n")
    result = pytester.runpytest("--swf-lite-subprocess", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*swf-lite token command failed*threads must be at least 1*"])


def test_readme_example_runs(pytester: pytest.Pytester):
    text = README.read_text(encoding="utf-8")
    section = text.split("## Use it in your agent's tests", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README section has a python example"
    code = match.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 14
    pytester.makepyfile(test_readme=textwrap.dedent(code))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
