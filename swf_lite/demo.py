"""``python -m swf_lite demo-agents``: a DAQ simulator, a data agent and a processing agent, played
through the HTTP API of a running swf-lite (or any SWF Monitor), slowly enough to watch live.

What it does, in the order real testbed agents do it: agent ids from ``next-agent-id``, heartbeats
and ActiveMQ subscriber rows, a namespace, a run number from ``next-run-number``, the workflow
messages ``run_imminent`` -> ``start_run`` -> ``stf_gen``/``stf_ready`` per STF -> ``end_run``, the
run record, each STF file registered and PATCHed to ``processed`` with its fast-monitoring (TF)
files, and REST log records from each agent. It uses only ``requests`` and the public API.

Where it connects: ``--url``/``--http-url``/``--token``/``--ca-bundle``, else the variables agents
read (``SWF_MONITOR_URL``, ``SWF_MONITOR_HTTP_URL``, ``SWF_API_TOKEN``, ``REQUESTS_CA_BUNDLE``/
``CURL_CA_BUNDLE``), else the local swf-lite configured by the usual flags (``--data-dir``, ports).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import ipaddress
import os
import random
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swf_lite.config import Settings

TOPIC = "/topic/epictopic"
TIMEOUT = 10


class DemoError(RuntimeError):
    """An API call failed; the message names the call and the answer."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m swf_lite demo-agents",
        description="Play a DAQ simulator, a data agent and a processing agent against a running "
        "swf-lite through its HTTP API: one run with a few STF files, workflow messages, heartbeats "
        "and REST logs, paced so you can watch the API lists and the stream fill in.",
        epilog="Connection: flags, else SWF_MONITOR_URL / SWF_MONITOR_HTTP_URL / SWF_API_TOKEN / "
        "REQUESTS_CA_BUNDLE, else the local swf-lite of --data-dir on the configured ports. "
        "Through the main command pass options after '--', e.g. "
        "python -m swf_lite demo-agents -- --interval 0.5 --stf-count 3",
    )
    p.add_argument("--url", help="token API base (default $SWF_MONITOR_URL)")
    p.add_argument("--http-url", help="plain-HTTP base for REST logs (default $SWF_MONITOR_HTTP_URL)")
    p.add_argument("--token", help="API token (default $SWF_API_TOKEN, else the local admin token)")
    p.add_argument("--ca-bundle", help="CA bundle for HTTPS (default $REQUESTS_CA_BUNDLE or $CURL_CA_BUNDLE)")
    p.add_argument("--interval", type=_non_negative_float, default=1.0,
                   help="seconds between steps (default 1; 0 runs flat out)")  # fmt: skip
    p.add_argument("--stf-count", type=_stf_count, default=5, help="STF files in the run (1-1000, default 5)")
    p.add_argument("--tf-per-stf", type=_tf_count, default=2, help="fast-monitoring TF files per STF (default 2)")
    p.add_argument("--namespace", default="swf-lite-demo", help="namespace the agents work in")
    p.add_argument("--user", default=None, help="user in agent names (default: your login name)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary line")
    return p


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600")
    return value


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


_stf_count = _bounded_int(1, 1000)
_tf_count = _bounded_int(0, 50)


# -- connection ------------------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    http_url: str
    token: str
    verify: str | bool


def resolve_target(settings: Settings, ns: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Target:
    """Flags, else the agents' environment variables, else the local swf-lite from ``settings``."""
    env = os.environ if environ is None else environ
    from swf_lite import tls
    from swf_lite.server import configured_urls

    local_http, local_https = configured_urls(settings)
    url = (ns.url or env.get("SWF_MONITOR_URL") or local_https or local_http).rstrip("/")
    local = not (ns.url or env.get("SWF_MONITOR_URL"))
    http_url = ns.http_url or env.get("SWF_MONITOR_HTTP_URL") or (local_http if local else url)
    token = ns.token or env.get("SWF_API_TOKEN") or _local_token(settings)
    if not token:
        raise DemoError("no API token: pass --token, set SWF_API_TOKEN, or start swf-lite once with this --data-dir")
    local_bundle = settings.data_dir / tls.BUNDLE_NAME
    if ns.ca_bundle:
        bundle = ns.ca_bundle
    elif local and local_bundle.exists():  # the local server's own CA (a global bundle would not know it)
        bundle = str(local_bundle)
    else:
        bundle = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    return Target(url, http_url.rstrip("/"), token, bundle or True)


def _local_token(settings: Settings) -> str | None:
    """The local admin token, if a server has ever started with these settings."""
    from swf_lite import auth
    from swf_lite.server import has_store

    return auth.token_from_url(settings.db_url, settings.user, is_staff=True) if has_store(settings) else None


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Monitor:
    """The two sessions agents use: token API (``url``) and anonymous REST logging (``http_url``)."""

    def __init__(self, target: Target) -> None:
        import requests

        self.target = target
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {target.token}"
        self.logs = requests.Session()
        for session, base in ((self.api, target.url), (self.logs, target.http_url)):
            if _is_loopback(base):
                session.trust_env = False  # no environment proxies for loopback (verify is set explicitly)

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, ok: tuple[int, ...] = (200, 201)
    ) -> Any:
        import requests

        url = self.target.url + path
        try:
            resp = self.api.request(method, url, json=body, timeout=TIMEOUT, verify=self.target.verify,
                                    allow_redirects=False)  # fmt: skip
        except requests.RequestException as exc:
            raise DemoError(f"{method} {url} failed: {exc}") from None
        if resp.status_code not in ok:
            raise DemoError(f"{method} {url} -> {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content else None

    def log(self, agent: Agent, level: str, message: str, funcname: str) -> None:
        import logging

        import requests

        record = {
            "app_name": agent.app_name, "instance_name": agent.name, "timestamp": _now(),
            "level": logging.getLevelName(level), "levelname": level, "message": message,
            "module": agent.module, "funcname": funcname, "lineno": 100 + len(message) % 300,
            "process": os.getpid(), "thread": threading.get_ident(), "extra_data": {"demo": True},
        }  # fmt: skip
        url = self.target.http_url + "/api/logs/"
        try:
            resp = self.logs.post(url, json=record, timeout=TIMEOUT, verify=self.target.verify,
                                  allow_redirects=False)  # fmt: skip
        except requests.RequestException as exc:
            raise DemoError(f"POST {url} failed: {exc}") from None
        if resp.status_code != 201:
            raise DemoError(f"POST {url} -> {resp.status_code} {resp.text[:300]}")

    def close(self) -> None:
        self.api.close()
        self.logs.close()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# -- the agents ------------------------------------------------------------------------------------


@dataclass
class Agent:
    kind: str  # agent_type on the monitor: daqsim, data, processing
    prefix: str  # first word of the instance name, as the real agents build it
    module: str
    name: str = ""
    app_name: str = "base_agent"
    processed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class DemoRun:
    """One scripted session; ``run()`` returns a summary dict."""

    def __init__(self, monitor: Monitor, ns: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.m = monitor
        self.ns = ns
        self.say = say
        self.user = ns.user or _login()
        self.daq = Agent("daqsim", "daq", "daq_simulator")
        self.data = Agent("data", "data", "data_agent")
        self.proc = Agent("processing", "processing", "processing_agent")
        self.agents = (self.daq, self.data, self.proc)
        self.hostname = socket.gethostname()[:100]
        self.rng = random.Random()

    def pause(self) -> None:
        if self.ns.interval:
            time.sleep(self.ns.interval)

    # steps ----------------------------------------------------------------------------------------

    def heartbeat(self, agent: Agent, state: str, status: str = "OK") -> None:
        self.m.call("POST", "/api/systemagents/heartbeat/", {
            "instance_name": agent.name, "agent_type": agent.kind, "status": status,
            "description": f"{agent.kind} agent (swf-lite demo)", "operational_state": state,
            "namespace": self.ns.namespace, "pid": os.getpid(), "hostname": self.hostname,
            "workflow_enabled": True, "total_stf_processed": agent.processed,
            "current_stf_count": 1 if state == "PROCESSING" else 0,
            "metadata": {"demo": True, **agent.extra},
        })  # fmt: skip

    def message(self, sender: Agent, recipient: Agent, msg_type: str, run_number: int, **content: Any) -> None:
        body = {"msg_type": msg_type, "run_id": str(run_number), "processed_by": sender.name,
                "namespace": self.ns.namespace, "timestamp": _now(), **content}  # fmt: skip
        self.m.call("POST", "/api/workflow-messages/", {
            "message_type": msg_type, "sender_agent": sender.name, "sender_type": sender.kind,
            "recipient_agent": recipient.name, "recipient_type": recipient.kind,
            "namespace": self.ns.namespace, "run_id": str(run_number), "message_content": body,
            "message_metadata": {"demo": True}, "queue_name": TOPIC, "is_successful": True,
        })  # fmt: skip

    def start_agents(self) -> None:
        self.m.call("POST", "/api/namespaces/ensure/", {"name": self.ns.namespace, "owner": self.user,
                                                         "description": "swf-lite demo-agents session"})  # fmt: skip
        for agent in self.agents:
            agent_id = self.m.call("POST", "/api/state/next-agent-id/")["agent_id"]
            agent.name = f"{agent.prefix}-agent-{self.user}-{agent_id}"[:100]
            self.heartbeat(agent, "STARTING")
            self.m.log(agent, "INFO", f"Agent {agent.name} starting (type={agent.kind}, "
                                      f"namespace={self.ns.namespace})", "__init__")  # fmt: skip
            # a 400 "already exists" is fine, as it is for the real agents
            self.m.call("POST", "/api/subscribers/", {
                "subscriber_name": f"{agent.name}-{TOPIC}", "fraction": 1.0, "is_active": True,
                "description": f"{agent.kind} agent subscriber on {TOPIC}", "delivery_type": "activemq",
                "client_location": self.hostname,
            }, ok=(200, 201, 400))  # fmt: skip
            self.heartbeat(agent, "READY")
            self.say(f"[{agent.prefix}] {agent.name} registered and READY")
            self.pause()

    def run(self) -> dict[str, Any]:
        self.start_agents()
        run_number = int(self.m.call("POST", "/api/state/next-run-number/")["run_number"])
        conditions = {"beam_energy": "10x100", "detector": "ePIC", "daq_state": "run", "daq_substate": "physics",
                      "namespace": self.ns.namespace, "source": "swf-lite demo-agents"}  # fmt: skip
        self.message(self.daq, self.data, "run_imminent", run_number, run_conditions=conditions)
        self.m.log(self.daq, "INFO", f"Run {run_number} imminent", "broadcast_run_imminent")
        self.say(f"[daq] run {run_number} imminent")
        self.pause()

        run = self.m.call("POST", "/api/runs/", {"run_number": run_number, "start_time": _now(),
                                                 "run_conditions": conditions})  # fmt: skip
        run_id = run["run_id"]
        self.m.log(self.data, "INFO", f"Created run record {run_number} (run_id={run_id})", "create_run_record")
        self.say(f"[data] run record {run_number} created (run_id {run_id})")
        self.pause()

        self.message(self.daq, self.data, "start_run", run_number, state="run", substate="physics")
        for agent in self.agents:
            self.heartbeat(agent, "PROCESSING")
        self.m.log(self.daq, "INFO", f"Run {run_number} started (state=run, substate=physics)", "start_run")
        self.say(f"[daq] run {run_number} started")
        self.pause()

        for seq in range(1, self.ns.stf_count + 1):
            self.one_stf(run_number, run_id, seq)

        self.message(self.daq, self.data, "end_run", run_number, total_stf=self.ns.stf_count)
        self.m.log(self.daq, "INFO", f"Run {run_number} ended after {self.ns.stf_count} STF files", "end_run")
        self.m.call("PATCH", f"/api/runs/{run_id}/", {"end_time": _now()})
        self.m.log(self.data, "INFO", f"Run {run_number} closed", "update_run_status")
        for agent in self.agents:
            self.heartbeat(agent, "READY")
        self.say(f"[daq] run {run_number} ended")
        return {"run_number": run_number, "run_id": run_id, "stf_files": self.ns.stf_count,
                "tf_files": self.ns.stf_count * self.ns.tf_per_stf,
                "agents": [a.name for a in self.agents]}  # fmt: skip

    def one_stf(self, run_number: int, run_id: int, seq: int) -> None:
        filename = f"swf.{run_number}.{seq:06d}.stf"
        start = dt.datetime.now(dt.timezone.utc)
        self.message(self.daq, self.data, "stf_gen", run_number, filename=filename, sequence=seq,
                     state="run", substate="physics", start=start.strftime("%Y%m%d%H%M%S"))  # fmt: skip
        self.daq.processed += 1
        self.m.log(self.daq, "INFO", f"Generated STF {filename}", "generate_stf")
        self.say(f"[daq] STF {seq}/{self.ns.stf_count}: {filename}")
        self.pause()

        size = self.rng.randint(1_700_000_000, 2_000_000_000)
        stf = self.m.call("POST", "/api/stf-files/", {
            "run": run_id, "stf_filename": filename, "file_size_bytes": size,
            "checksum": hashlib.md5(filename.encode()).hexdigest(), "machine_state": "physics",
            "status": "registered", "daq_state": "run", "daq_substate": "physics",
            "metadata": {"created_by": self.daq.name, "sequence": seq, "registered_by": self.data.name},
        })  # fmt: skip
        file_id = stf["file_id"]
        self.data.processed += 1
        self.m.log(self.data, "INFO", f"Registered STF {filename} ({size} bytes)", "register_stf_file")
        self.message(self.data, self.proc, "stf_ready", run_number, filename=filename, file_id=file_id)
        self.say(f"[data] {filename} registered, stf_ready sent")
        self.pause()

        self.m.call("PATCH", f"/api/stf-files/{file_id}/", {"status": "processing"})
        first = 1
        for k in range(1, self.ns.tf_per_stf + 1):
            count = self.rng.randint(40, 50)
            self.m.call("POST", "/api/fastmon-files/", {
                "stf_file": filename, "tf_filename": f"swf.{run_number}.{seq:06d}_tf_{k:03d}.tf",
                "tf_first": first, "tf_last": first + count - 1, "tf_count": count,
                "file_size_bytes": count * 786_432, "status": "registered",
                "metadata": {"created_by": self.proc.name, "run_number": run_number, "source_stf": filename},
            })  # fmt: skip
            first += count
        self.m.call("PATCH", f"/api/stf-files/{file_id}/", {
            "status": "processed",
            "metadata": {"created_by": self.daq.name, "sequence": seq, "registered_by": self.data.name,
                         "processed_by": self.proc.name, "tf_files": self.ns.tf_per_stf},
        })  # fmt: skip
        self.proc.processed += 1
        self.heartbeat(self.proc, "PROCESSING")
        self.m.log(self.proc, "INFO", f"Processed {filename}: {self.ns.tf_per_stf} TF files", "process_stf")
        self.say(f"[processing] {filename} processed ({self.ns.tf_per_stf} TF files)")
        self.pause()


def _login() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        name = ""
    return "".join(c for c in name if c.isalnum() or c in "._") or "demo"


def main(settings: Settings, args: list[str] | None = None) -> int:
    """Entry point for ``python -m swf_lite demo-agents``; returns the exit status."""
    parser = build_parser()
    ns = parser.parse_args(list(args or []))
    quiet = ns.quiet or bool(getattr(settings, "quiet", False))

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    try:
        target = resolve_target(settings, ns)
    except DemoError as exc:
        print(f"demo-agents: {exc}", file=sys.stderr)
        return 2
    if isinstance(target.verify, str) and not Path(target.verify).exists():
        print(f"demo-agents: CA bundle {target.verify} does not exist", file=sys.stderr)
        return 2
    say(f"demo-agents: driving {target.url} (logs to {target.http_url}), {ns.stf_count} STF files, "
        f"{ns.interval:g} s between steps")  # fmt: skip
    monitor = Monitor(target)
    try:
        summary = DemoRun(monitor, ns, say).run()
    except DemoError as exc:
        print(f"demo-agents: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo-agents: interrupted", file=sys.stderr)
        return 130
    finally:
        monitor.close()
    run = summary["run_number"]
    print(f"demo-agents: run {run} done: {summary['stf_files']} STF files processed, {summary['tf_files']} TF "
          f"files; see {target.http_url}/api/runs/?run_number={run}", flush=True)  # fmt: skip
    return 0
