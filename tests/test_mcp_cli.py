"""``python -m swf_lite mcp-config``: the ``.mcp.json`` entry for an AI assistant, in the testbed's shape."""

from __future__ import annotations

import json

import requests

from swf_lite import cli
from swf_lite.server import SwfLiteServer

from conftest import make_settings


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["mcp-config", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_entry_reaches_a_running_server(tmp_path, capsys):
    srv = SwfLiteServer(make_settings(tmp_path / "data")).start()
    try:
        code, out, err = run(capsys, "--data-dir", str(tmp_path / "data"))
        assert code == 0 and err == ""
        entry = json.loads(out)["mcpServers"]["swf-testbed"]
        assert entry == {"type": "http", "url": "http://127.0.0.1:8002/mcp/",  # the configured port
                         "headers": {"Authorization": f"Bearer {srv.token}"}}  # fmt: skip
        url = srv.http_url + "/mcp/"  # this server's port 0 resolved; same path, same header
        resp = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=entry["headers"],
                             timeout=10)  # fmt: skip
        assert resp.status_code == 200 and resp.json()["result"] == {}
    finally:
        srv.stop()


def test_https_and_a_token_variable(tmp_path, capsys):
    assert cli.main(["token", "admin", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    code, out, err = run(capsys, "https", "variable", "--data-dir", str(tmp_path), "--https-port", "9443")
    assert code == 0
    entry = json.loads(out)["mcpServers"]["swf-testbed"]
    assert entry["url"] == "https://127.0.0.1:9443/mcp/"
    assert entry["headers"] == {"Authorization": "Bearer ${SWF_MONITOR_MCP_TOKEN}"}
    assert f"export SWF_MONITOR_MCP_TOKEN={token}" in err and "NODE_EXTRA_CA_CERTS=" in err


def test_refusals(tmp_path, capsys):
    code, out, err = run(capsys, "--data-dir", str(tmp_path / "none"))
    assert code == 1 and out == "" and "start the server once first" in err
    assert cli.main(["token", "admin", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "bogus", "--data-dir", str(tmp_path))
    assert code == 2 and "usage: python -m swf_lite mcp-config" in err
    code, out, err = run(capsys, "https", "--no-tls", "--data-dir", str(tmp_path))
    assert code == 1 and "TLS is off" in err
