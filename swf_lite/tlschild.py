"""The HTTPS server's certificates, made (or checked) by a child process while the server starts.

Only certificate work needs ``cryptography``, and only at start; loaded into the server it stayed
for the process's life: ~8 MB resident (its Rust extension carries its own OpenSSL) and ~0.1 s of
imports. ``python -m swf_lite`` starts the child first thing, imports and opens the database
meanwhile (on another core), and takes the paths when it needs them. On Linux the child is a fork
(no second interpreter start-up, ~0.05 s sooner); elsewhere it is ``python -m swf_lite.tls``, as
macOS's system libraries may not survive a fork without exec. The in-process
:func:`swf_lite.tls.ensure_certificates` stays the way for embedders and the pytest plugin.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from swf_lite.config import Settings, TlsFiles

if TYPE_CHECKING:  # imported where a child is spawned: a fork (Linux) needs none of it
    import subprocess

log = logging.getLogger(__name__)

WAIT = 60.0  # seconds: generating two EC keys takes milliseconds; a loaded machine, more
FORK = sys.platform == "linux"  # as multiprocessing: fork only where system libraries allow it


class CertificateChild:
    """The child making the files for one server start. Call it for the files; :meth:`close` ends it
    unasked (a start that failed before it needed them). The child writes its log lines and, last,
    the files as one JSON line (:func:`swf_lite.tls.main`) into one pipe."""

    def __init__(self, settings: Settings, fork: bool = FORK):
        argv = [str(settings.data_dir), "--log-level", settings.log_level]
        for host in settings.tls_hosts:
            argv += ["--host", host]
        if settings.cert and settings.key:
            argv += ["--cert", str(settings.cert), "--key", str(settings.key)]
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0
        if fork:
            sys.stdout.flush()  # nothing the parent buffered is written twice
            sys.stderr.flush()
            read, write = os.pipe()
            try:
                self.pid = os.fork()
            except OSError:
                os.close(read)
                os.close(write)
                raise
            if self.pid == 0:
                os.close(read)
                _forked(argv, write)
            os.close(write)
            self._out = read
        else:
            import subprocess

            package_parent = str(Path(__file__).resolve().parent.parent)  # `python swf_lite.py` from a checkout
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
            self.process = subprocess.Popen([sys.executable, "-m", "swf_lite.tls", *argv], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)  # fmt: skip
            assert self.process.stdout is not None
            self._out = self.process.stdout.fileno()
        self._code: int | None = None

    def __call__(self) -> TlsFiles:
        """The files, once the child is done; ``ValueError`` with its reason if it could not make them.
        Its log lines are passed on here (not after a failed start's one line)."""
        deadline = time.monotonic() + WAIT
        chunks = []
        while True:
            if not select.select([self._out], [], [], max(0.0, deadline - time.monotonic()))[0]:
                self.close()
                raise ValueError(f"making the certificates took over {WAIT:g} s")
            chunk = os.read(self._out, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        code = self._reap()
        *lines, last = b"".join(chunks).decode(errors="replace").rstrip("\n").split("\n")
        try:
            answer = json.loads(last)
        except ValueError:
            lines.append(last)
            answer = {"error": f"the certificate process ended with status {code}"}
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
        if "error" in answer:
            raise ValueError(answer["error"])
        return TlsFiles(cert=Path(answer["cert"]), key=Path(answer["key"]),
                        ca_cert=Path(answer["ca_cert"]) if answer["ca_cert"] else None,
                        ca_bundle=Path(answer["ca_bundle"]))  # fmt: skip

    def close(self) -> None:
        if self._code is None:
            if self.process is not None:
                self.process.kill()
            else:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:  # ended, not yet reaped
                    pass
            self._reap()

    def _reap(self) -> int:
        if self._code is None:
            if self.process is not None:
                self._code = self.process.wait()
                assert self.process.stdout is not None
                self.process.stdout.close()
            else:
                self._code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
                os.close(self._out)
        return self._code


def _forked(argv: list[str], out: int) -> NoReturn:
    """The forked child: :func:`swf_lite.tls.main` with stdout and stderr into the pipe; never returns."""
    code = 70
    try:
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        from swf_lite import tls

        code = tls.main(argv)
    except BaseException:  # noqa: BLE001  # whatever happened, the parent reads it and a status
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def start(settings: Settings) -> CertificateChild | None:
    """Start the child for ``settings``, or None when none can be started (no fork or pipe to be had,
    an interpreter without a usable ``sys.executable``): the server then makes the files itself."""
    try:
        return CertificateChild(settings)
    except OSError as exc:
        log.debug("no certificate child process (%s): made in process", exc)
        return None
