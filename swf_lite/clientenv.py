"""What a client needs to reach a swf-lite: URL hosts and the agent environment.

Standard library only: the server, the CLI (``python -m swf_lite env``) and :mod:`swf_lite.testing`
(the pytest fixtures' subprocess server) all build the environment with :func:`client_env`.
"""

from __future__ import annotations

from pathlib import Path

URL_VAR = "SWF_MONITOR_URL"  # HTTPS when served, else HTTP
HTTP_URL_VAR = "SWF_MONITOR_HTTP_URL"
TOKEN_VAR = "SWF_API_TOKEN"
CA_BUNDLE_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def url_host(host: str) -> str:
    """The host as it goes into a URL (wildcards become loopback; IPv6 gets brackets)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def client_env(http_url: str, https_url: str | None, token: str, ca_bundle: Path | None) -> dict[str, str]:
    """``SWF_MONITOR_URL``, ``SWF_MONITOR_HTTP_URL``, ``SWF_API_TOKEN`` and, with TLS, the CA bundle
    variables (requests reads them instead of its own trust store)."""
    env = {URL_VAR: https_url or http_url, HTTP_URL_VAR: http_url, TOKEN_VAR: token}
    if ca_bundle:
        for var in CA_BUNDLE_VARS:
            env[var] = str(ca_bundle)
    return env
