"""``python -m swf_lite mcp-config``: the client configuration that points an AI assistant at this
swf-lite's MCP endpoint, in the shape of the testbed's ``.mcp.json`` (an ``mcpServers`` entry named
``swf-testbed``: ``type`` http, the URL, an ``Authorization: Bearer`` header).

Built from the configured host and ports and the default user's token in the data dir, as ``env`` is.
"""

from __future__ import annotations

import json

from swf_lite import auth
from swf_lite.config import BUNDLE_FILE, Settings
from swf_lite.server import configured_urls, has_store

ENTRY = "swf-testbed"  # the testbed's .mcp.json entry name (its permissions refer to it)
TOKEN_VAR = "SWF_MONITOR_MCP_TOKEN"  # the variable the testbed's .mcp.json reads the token from
PATH = "/mcp/"


def client_config(settings: Settings, *, https: bool = False, variable: bool = False) -> tuple[str, list[str]]:
    """(the JSON to put in ``.mcp.json``, lines for the shell: the token's export with ``variable``,
    the CA for a Node client with ``https``). LookupError when there is no swf-lite to point at."""
    if not has_store(settings):
        raise LookupError(f"no swf-lite data in {settings.data_dir}; start the server once first")
    http_url, https_url = configured_urls(settings)
    if https and https_url is None:
        raise LookupError("TLS is off (--no-tls): there is no HTTPS URL; leave out 'https'")
    token = auth.token_from_url(settings.db_url, settings.user, is_staff=True)
    header = f"Bearer ${{{TOKEN_VAR}}}" if variable else f"Bearer {token}"
    entry = {"type": "http", "url": (https_url if https and https_url else http_url) + PATH,
             "headers": {"Authorization": header}}  # fmt: skip
    notes = [f"export {TOKEN_VAR}={token}"] if variable else []
    if https:
        notes.append(f"export NODE_EXTRA_CA_CERTS={settings.data_dir / BUNDLE_FILE}  # Node trusts swf-lite's CA")
    return json.dumps({"mcpServers": {ENTRY: entry}}, indent=2), notes
