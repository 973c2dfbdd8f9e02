"""DNS-rebinding protection: answer only requests whose ``Host`` header names this server.

A web page on ``evil.example`` whose name is re-pointed at 127.0.0.1 can make the browser send
requests to swf-lite that carry ``Host: evil.example`` (and read the answers). :class:`HostCheck`,
a plain WSGI wrapper around the application, refuses them with a 400 JSON ``{"detail": "Unknown
host ..."}`` before anything runs. It admits:

- the bound address (as configured and as it appears in the URLs), with any port;
- ``localhost`` (and ``*.localhost``) and loopback addresses (127.0.0.0/8, ``::1``, ``[::1]``);
- with a wildcard bind (``0.0.0.0``/``::``), the machine's host name and FQDN and any IP address
  (an IP literal cannot be rebound, and such a server answers on all of the machine's addresses);
- the names of ``--allowed-hosts`` (comma list, e.g. ``host.docker.internal``; ``*`` admits any);
- a request without ``Host`` (HTTP/1.0).

It also stamps ``X-Content-Type-Options: nosniff`` on every JSON response that lacks it (the
middleware's and bottle's own errors too, not only ``json_response``): JSON, which may echo
input, is never sniffed as HTML.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from typing import Any

from swf_lite.config import Settings

WILDCARDS = ("", "0.0.0.0", "::")
LOOPBACK_NAMES = ("localhost",)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def split_host(value: str) -> str | None:
    """The name or address of a ``Host`` value without port or brackets, lower case; None if it is
    malformed (``[::1]:80`` -> ``::1``, ``Example.org:8443`` -> ``example.org``)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, port = value[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
        if not port.isdigit():
            return None
    else:  # a bare name, or an IPv6 address without brackets
        name = value
    name = name.rstrip(".")  # "localhost." is "localhost"
    return name or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    if ip is None:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def allowed_names(settings: Settings) -> tuple[frozenset[str], bool, bool]:
    """(names admitted besides loopback, whether any name is, whether any IP literal is)."""
    bound = settings.host.strip().lower().strip("[]")
    names = {bound} if bound else set()
    wildcard = bound in WILDCARDS
    if wildcard:
        for get in (socket.gethostname, socket.getfqdn):
            try:
                names.add(get().lower().rstrip("."))
            except OSError:  # pragma: no cover - no name is fine
                pass
    extra = settings.allowed_host_list
    names |= {split_host(h) or h for h in extra if h != "*"}
    names.discard("")
    return frozenset(names), "*" in extra, wildcard


class HostCheck:
    """WSGI wrapper: requests for an unknown ``Host`` get 400 JSON; the rest go to ``app``."""

    def __init__(self, app: WsgiApp, names: Iterable[str] = (), any_host: bool = False, any_ip: bool = False):
        self.app = app
        self.names = frozenset(n.lower() for n in names)
        self.any_host = any_host
        self.any_ip = any_ip

    @classmethod
    def for_settings(cls, app: WsgiApp, settings: Settings) -> HostCheck:
        names, any_host, any_ip = allowed_names(settings)
        return cls(app, names, any_host=any_host, any_ip=any_ip)

    def allows(self, host: str | None) -> bool:
        if host is None or self.any_host:
            return True
        name = split_host(host)
        if name is None:
            return False
        return name in self.names or is_loopback(name) or (self.any_ip and _ip(name) is not None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if self.allows(host):
            return self.app(environ, _nosniff_json(start_response))
        shown = (host or "")[:100]
        detail = (f"Unknown host {shown!r}: swf-lite answers only for its own address and loopback names; "
                  "add this name with --allowed-hosts (env SWF_LITE_ALLOWED_HOSTS)")  # fmt: skip
        body = json.dumps({"detail": detail}).encode()
        start_response("400 Bad Request", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
        ])  # fmt: skip
        _close_after(environ, start_response)
        return [body]


def _close_after(environ: dict[str, Any], start_response: Callable[..., Any]) -> None:
    """Read nothing more of a refused request: cheroot would drain (into memory) the rest of its body
    and keep the connection for the next request; a ``Connection: close`` header from the app
    changes neither. So the body reader is marked done and cheroot's request (the gateway behind
    ``start_response``: this wrapper is the outermost application) closes the connection."""
    wire: Any = environ.get("wsgi.input")
    if isinstance(getattr(wire, "remaining", None), int):
        wire.remaining = 0
    req: Any = getattr(getattr(start_response, "__self__", None), "req", None)
    if hasattr(req, "close_connection"):
        req.close_connection = True


def _nosniff_json(start_response: Callable[..., Any]) -> Callable[..., Any]:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        names = {k.lower(): v for k, v in headers}
        ctype = names.get("content-type", "").split(";")[0].strip().lower()
        if (ctype == "application/json" or ctype.endswith("+json")) and "x-content-type-options" not in names:
            headers = [*headers, ("X-Content-Type-Options", "nosniff")]
        return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

    return start
