"""Command line: ``serve`` (the default), ``token``/``get_token``, ``env``, ``demo-agents``, ``mcp-config``.

Flags are derived from :class:`swf_lite.config.Settings`; every flag also has an
``SWF_LITE_<NAME>`` environment variable.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import logging
import os
import re
import shlex
import signal
import sys
import time
from typing import TYPE_CHECKING

from swf_lite import __version__
from swf_lite.config import AGENT_ENV, ENV_PREFIX, LOG_FORMAT, Settings, mask_url

if TYPE_CHECKING:  # imported where used: the server pulls in the whole stack
    from swf_lite.server import SwfLiteServer

READY = "swf-lite ready"
READY_RE = re.compile(rf"^{READY} http=(?P<http>\S+) https=(?P<https>\S+) pid=(?P<pid>\d+)\s*$")  # parsers use this
COMMANDS = ("serve", "token", "get_token", "env", "demo-agents", "mcp-config")


def _settings_parser(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        also = f", else {AGENT_ENV[f.name]}" if f.name in AGENT_ENV else ""  # the agents' own variable
        help_text = f"{f.metadata.get('help', '')} [env {env}{also}]"
        if f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swf-lite",
        description="A local SWF Monitor: the testbed's REST API, counters and live stream in one process.",
        epilog="Commands: serve (default), token USER (alias get_token), env, demo-agents, "
        "mcp-config [https] [variable]. Example: python -m swf_lite --http-port 0 --https-port 0",
    )
    parser.add_argument("--version", action="version", version=f"swf-lite {__version__}")
    parser.add_argument("command", nargs="?", default="serve", choices=COMMANDS, help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    _settings_parser(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns, unknown = parser.parse_known_args(argv)
    if unknown and ns.command != "demo-agents":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    overrides = {f.name: getattr(ns, f.name) for f in dataclasses.fields(Settings)}
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    if settings.db_url.startswith("sqlite"):
        skip_unused_drivers()
    if ns.command in ("token", "get_token"):
        return cmd_token(settings, ns.args)
    if ns.command == "env":
        return cmd_env(settings)
    if ns.command == "mcp-config":
        return cmd_mcp_config(settings, ns.args)
    if ns.command == "demo-agents":
        from swf_lite import demo

        return demo.main(settings, ns.args + unknown)
    limit_malloc_arenas()  # a server's many threads; the one-shot commands above need nothing
    return cmd_serve(settings)


UNUSED_BY_SQLITE = ("psycopg", "psycopg2", "psycopg2cffi", "pymysql", "MySQLdb")


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Two malloc arenas for this process, as ``MALLOC_ARENA_MAX=2`` would give (unless that is set):
    glibc gives every thread that meets a busy arena one of its own, up to 8 per CPU, and each keeps
    the memory freed in it — with a worker per stream that was ~20 MB of a server's RSS. Python's
    small objects come from its own allocator and the GIL serializes most of the rest, so the
    threads lose nothing by sharing. Linux with glibc only; elsewhere nothing happens."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc (musl has no arenas)
        pass


M_ARENA_MAX = -8  # glibc's malloc.h


def skip_unused_drivers() -> None:
    """peewee imports every database driver it can find when it is imported; a SQLite process needs
    none of them (psycopg alone is ~0.15 s of the start when the [postgres] extra is installed). Drivers
    already imported stay; only this process is affected."""
    for name in UNUSED_BY_SQLITE:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # "import name" now raises ImportError


def cmd_token(settings: Settings, args: list[str]) -> int:
    from swf_lite import auth

    if len(args) != 1:
        print("usage: python -m swf_lite token <username>", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # the default user (--user, "admin") is the staff user the server prints at start
    print(auth.token_from_url(settings.db_url, args[0], is_staff=args[0].strip() == settings.user))
    return 0


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def cmd_env(settings: Settings) -> int:
    """Export lines for an existing data dir (the ports are the configured ones)."""
    from swf_lite.server import configured_client_env

    env = configured_client_env(settings)
    if env is None:
        print(f"no swf-lite data in {settings.data_dir}; start the server once first", file=sys.stderr)
        return 1
    print("\n".join(export_lines(env)))
    return 0


def cmd_mcp_config(settings: Settings, args: list[str]) -> int:
    """The ``.mcp.json`` entry that points an AI assistant (Claude Code) at this swf-lite's ``/mcp/``:
    plain HTTP by default (``https``: the TLS port, whose CA a Node client trusts only through
    ``NODE_EXTRA_CA_CERTS``); ``variable``: the header names ``${SWF_MONITOR_MCP_TOKEN}``, as the
    testbed's own file does, instead of holding the token."""
    from swf_lite.mcp.config import client_config

    unknown = [a for a in args if a not in ("https", "variable")]
    if unknown:
        print(f"usage: python -m swf_lite mcp-config [https] [variable] (not {' '.join(unknown)})", file=sys.stderr)
        return 2
    try:
        config, notes = client_config(settings, https="https" in args, variable="variable" in args)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(config)
    for note in notes:
        print(note, file=sys.stderr)
    return 0


def cmd_serve(settings: Settings) -> int:
    from swf_lite import tlschild

    certificates = tlschild.start(settings) if settings.tls else None  # made meanwhile, on another core
    from swf_lite.server import PortInUse, StartupError, SwfLiteServer

    server = SwfLiteServer(settings, certificates)
    try:
        server.start()
    except (PortInUse, StartupError, OSError, ValueError) as exc:
        # one line the user can act on; the traceback only for --log-level DEBUG
        logging.getLogger("swf_lite").debug("start-up failed", exc_info=True)
        server.stop()
        if certificates is not None:
            certificates.close()
        text = str(exc) if isinstance(exc, (PortInUse, StartupError)) else f"cannot start: {exc}"
        print(f"swf-lite: {' '.join(text.split())}", file=sys.stderr)
        return 1
    received = note_stop_signals()  # before the ready line: a SIGTERM right after it is a clean stop too
    print_banner(server)
    try:
        while not received:
            time.sleep(0.1)  # a signal cuts the sleep short; its handler has noted it by then
    finally:
        server.stop()
    if not settings.quiet:
        print("swf-lite stopped", flush=True)
    return 0


def note_stop_signals() -> list[int]:
    """SIGINT and SIGTERM handlers that only append the signal to the list returned. A handler runs in
    the main thread between two bytecodes, wherever that thread is: one that set a ``threading.Event``
    needed the Event's lock, which the main thread's own ``Event.wait`` may hold at that moment — a server
    stopped right after its ready line once hung there for good, ignoring every further SIGTERM."""
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    return received


def print_banner(server: SwfLiteServer) -> None:
    s = server.settings
    env = server.client_env()
    if not s.quiet:
        lines = [
            f"swf-lite {__version__}",
            f"  data dir   {s.data_dir}",
            f"  database   {mask_url(s.db_url)}",
            f"  http       {server.http_url}",
        ]
        if server.https_url:
            lines.append(f"  https      {server.https_url}")
            lines.append(f"  CA bundle  {server.ca_bundle}")
        if server.bridge is not None:
            state = "connected" if server.bridge.connected else "not reachable yet, retrying"
            lines.append(f"  broker     stomp://{s.stomp} {server.bridge.destination} ({state})")
        lines += [f"  token      {server.token}  (user {s.user})", "", "Point agents here:"]
        lines += ["  " + line for line in export_lines(env)]
        lines.append("")
        print("\n".join(lines), flush=True)
    https = server.https_url or "-"
    print(f"{READY} http={server.http_url} https={https} pid={os.getpid()}", flush=True)
