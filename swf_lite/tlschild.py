"""The HTTPS server's certificates, made (or checked) by a child process while the server starts.

Only certificate work needs ``cryptography``, and only at start; loaded into the server it stayed
for the process's life: ~8 MB resident (its Rust extension carries its own OpenSSL) and ~0.1 s of
imports. ``python -m swf_lite`` starts ``python -m swf_lite.tls`` first thing, imports and opens the
database meanwhile (on another core), and takes the paths when it needs them. The in-process
:func:`swf_lite.tls.ensure_certificates` stays the way for embedders and the pytest plugin.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from swf_lite.config import Settings, TlsFiles

log = logging.getLogger(__name__)

WAIT = 60.0  # seconds: generating two EC keys takes milliseconds; a loaded machine, more


class CertificateChild:
    """``python -m swf_lite.tls`` running for one server start. Call it for the files; :meth:`close`
    ends it unasked (a start that failed before it needed them)."""

    def __init__(self, settings: Settings):
        package_parent = str(Path(__file__).resolve().parent.parent)  # `python swf_lite.py` from a checkout too
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "swf_lite.tls", str(settings.data_dir), "--log-level", settings.log_level]
        for host in settings.tls_hosts:
            cmd += ["--host", host]
        if settings.cert and settings.key:
            cmd += ["--cert", str(settings.cert), "--key", str(settings.key)]
        # stderr (its log lines) is passed on when the files are taken: not after a failed start's one line
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)  # fmt: skip

    def __call__(self) -> TlsFiles:
        """The files, once the child is done; ``ValueError`` with its reason if it could not make them."""
        try:
            out, err = self.process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.close()
            raise ValueError(f"making the certificates took over {WAIT:g} s") from None
        if err:
            sys.stderr.write(err.decode(errors="replace"))
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ValueError(f"the certificate process ended with status {self.process.returncode}") from None
        if "error" in answer:
            raise ValueError(answer["error"])
        return TlsFiles(cert=Path(answer["cert"]), key=Path(answer["key"]),
                        ca_cert=Path(answer["ca_cert"]) if answer["ca_cert"] else None,
                        ca_bundle=Path(answer["ca_bundle"]))  # fmt: skip

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def start(settings: Settings) -> CertificateChild | None:
    """Start the child for ``settings``, or None when none can be started (an interpreter without a
    usable ``sys.executable``): the server then makes the files itself."""
    try:
        return CertificateChild(settings)
    except OSError as exc:
        log.debug("no certificate child process (%s): made in process", exc)
        return None
