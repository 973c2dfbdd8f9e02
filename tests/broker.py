"""A real ActiveMQ broker for the bridge tests: Debian's ``activemq`` package, run as a plain child
process in a temporary directory (not the packaged service).

The package lays out ``/usr/share/activemq/bin/activemq.jar`` (the launcher, ``org.apache.activemq.
console.Main``) and ``/usr/share/activemq/lib`` (the broker jars it loads); ``/usr/bin/activemq`` is
upstream's start script, which only adds ``-Dactivemq.*`` properties and daemonizes. This helper runs
the launcher's ``start`` task in the foreground with those properties pointing into its own
directory and a minimal configuration: one STOMP connector on 127.0.0.1 and a free port, no
persistence, no JMX, no advisories, no web console, a small heap. Java takes ~1-2 s to be ready.

``SWF_LITE_TEST_ACTIVEMQ_HOME`` points at another ActiveMQ 5.x install (its ``bin/activemq.jar``).
Install on Debian/Ubuntu: ``apt-get install -y activemq`` (or ``.ci/install-activemq``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HOME = Path(os.environ.get("SWF_LITE_TEST_ACTIVEMQ_HOME") or "/usr/share/activemq")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

CONFIG = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="swf-lite-test" useJmx="false"
          persistent="false" advisorySupport="false" schedulerSupport="false" dataDirectory="{data}">
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage limit="32 mb"/></memoryUsage>
      <tempUsage><tempUsage limit="64 mb"/></tempUsage>
    </systemUsage></systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"""
LOG4J = """log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d %-5p %c - %m%n
"""


def missing() -> str | None:
    """Why no broker can be started here (for a skip), or None."""
    if not (HOME / "bin" / "activemq.jar").exists():
        return f"no ActiveMQ at {HOME} (apt-get install -y activemq, or set SWF_LITE_TEST_ACTIVEMQ_HOME)"
    if shutil.which("java") is None:
        return "no java on PATH (the ActiveMQ broker needs a JRE)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stomp_ready(port: int, timeout: float = 1.0) -> bool:
    """Whether a STOMP CONNECT on ``port`` is answered with CONNECTED."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"CONNECT\naccept-version:1.1\nhost:localhost\n\n\x00")
            reply = b""
            while b"\x00" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            s.sendall(b"DISCONNECT\n\n\x00")
            return reply.startswith(b"CONNECTED")
    except OSError:
        return False


class Broker:
    """One broker in ``workdir`` on ``port`` (a free one by default): start, stop, restart (same port)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "broker.log"
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        conf, data = self.workdir / "conf", self.workdir / "data"
        return [shutil.which("java") or "java", "-Xms32m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dactivemq.home={HOME}", f"-Dactivemq.base={self.workdir}", f"-Dactivemq.conf={conf}",
                f"-Dactivemq.data={data}", f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
                "-jar", str(HOME / "bin" / "activemq.jar"), "start", f"xbean:file:{conf / 'activemq.xml'}"]  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> Broker:
        conf, data = self.workdir / "conf", self.workdir / "data"
        conf.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        (conf / "activemq.xml").write_text(CONFIG.format(port=self.port, data=data), encoding="utf-8")
        (conf / "log4j.properties").write_text(LOG4J, encoding="utf-8")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._command(), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not stomp_ready(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"ActiveMQ did not start on port {self.port} within {timeout:g} s: {tail}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (the broker closes its connections), SIGKILL after ``timeout``; waits for the port."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def kill(self) -> None:
        """Gone at once (SIGKILL): its clients see the connection drop."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    def __enter__(self) -> Broker:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
