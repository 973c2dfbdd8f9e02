"""TLS material for the HTTPS server: a local CA, a server certificate it signs, and a CA bundle.

A private CA (instead of a bare self-signed leaf) lets clients verify strictly: trust the CA
once (or point REQUESTS_CA_BUNDLE at ``ca_bundle.pem``) and regenerated server certs keep
working. EC P-256 keys keep generation to milliseconds.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import logging
import os
import secrets
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swf_lite.config import (
    BUNDLE_FILE,
    CA_CERT_FILE,
    CA_KEY_FILE,
    CERT_FILE,
    KEY_FILE,
    LOG_FORMAT,
    TLS_HOSTS,
    TLS_LOCK_FILE,
    TlsFiles,
)

log = logging.getLogger("swf_lite.tls")  # also when run as python -m swf_lite.tls

DEFAULT_HOSTS = TLS_HOSTS
CA_DAYS = 3650
SERVER_DAYS = 825  # the maximum Apple/Chrome accept for TLS server certificates
_WILDCARD_BINDS = {"", "0.0.0.0", "::"}
BUNDLE_NAME = BUNDLE_FILE  # the name callers have used; the file names live in swf_lite.config
_SYSTEM_CA_FALLBACK = "/etc/ssl/certs/ca-certificates.crt"


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Temp file in the same dir + os.replace: readers never see a partial file.

    The temp file is created with `mode` already set, so a key is never readable by others.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have narrowed it
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o644)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _save_pair(cert: x509.Certificate, key: PrivateKeyTypes, cert_path: Path, key_path: Path) -> None:
    """Key first: a crash in between leaves a mismatching pair, which the next call regenerates."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    _write_public(cert_path, _pem(cert))


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
    """Parsed (cert, key), or None if either is missing, unparsable, encrypted or they don't match."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return (cert, key) if cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki) else None


def _load_ca(
    cert_path: Path, key_path: Path, min_valid_days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The local CA if it is still fit to sign: a matching pair with the EC key ``_make_ca`` makes
    (anything else could not sign the server certificate), not near expiry."""
    pair = _load_pair(cert_path, key_path)
    if pair is None:
        return None
    cert, key = pair
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _fresh(cert, min_valid_days):
        return None
    return cert, key


def _fresh(cert: x509.Certificate, min_valid_days: int) -> bool:
    now = dt.datetime.now(dt.timezone.utc)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > dt.timedelta(days=min_valid_days)


def _san_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Default + extra hosts as SANs: IPs as IPAddress, names as DNSName, de-duplicated.

    Wildcard bind addresses (0.0.0.0, ::) are not what a client connects to: no SAN.
    """
    names: list[x509.GeneralName] = []
    for raw in (*DEFAULT_HOSTS, *hosts):
        host = raw.strip().strip("[]").partition("%")[0].lower()  # no IPv6 zone id
        if host in _WILDCARD_BINDS:
            continue
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        if name not in names:
            names.append(name)
    return names


def _covers(cert: x509.Certificate, hosts: Iterable[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return set(_san_names(hosts)) <= set(san.value)


def _key_usage(*enabled: str) -> x509.KeyUsage:
    flags = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{flag: flag in enabled for flag in flags})


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # ValueError: issuer mismatch
        return False
    return True


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    days: int,
    not_after_cap: dt.datetime | None = None,
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + dt.timedelta(days=days)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # tolerate small clock skew
        .not_valid_after(min(not_after, not_after_cap) if not_after_cap else not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _make_ca(
    days: int = CA_DAYS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swf-lite"),
            x509.NameAttribute(NameOID.COMMON_NAME, "swf-lite local CA"),
        ]
    )
    cert = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server(
    ca_cert: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    hosts: Iterable[str],
    days: int = SERVER_DAYS,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Leaf for every host; never outlives the CA, so the chain stays valid to the end."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swf-lite server")])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(
            subject,
            ca_cert.subject,
            key,
            days,
            not_after_cap=ca_cert.not_valid_after_utc,
        )
        .add_extension(x509.SubjectAlternativeName(_san_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _system_ca_pem(bundle: Path) -> bytes:
    """System trust roots. Never via REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (or our own bundle):
    those may point at the bundle we write, which would make it grow on every restart."""
    candidates: list[str | None] = []
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:
        pass
    candidates += [ssl.get_default_verify_paths().cafile, _SYSTEM_CA_FALLBACK]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        try:
            if path.is_file() and not (bundle.exists() and path.samefile(bundle)):
                return path.read_bytes()
        except OSError:
            continue
    return b""


def _write_bundle(bundle: Path, extra_pem: bytes) -> None:
    """System CAs + `extra_pem`, rewritten only when the content changed."""
    system = _system_ca_pem(bundle)
    data = (system.rstrip(b"\n") + b"\n\n" if system.strip() else b"") + extra_pem.rstrip(b"\n") + b"\n"
    try:
        if bundle.read_bytes() == data:
            return
    except OSError:
        pass
    _write_public(bundle, data)


def _user_files(data_dir: Path, cert: Path, key: Path, min_valid_days: int) -> TlsFiles:
    """Operator-supplied cert/key: validated and used as is, never regenerated."""
    for what, path in (("certificate", cert), ("private key", key)):
        if not path.is_file():
            raise ValueError(f"TLS {what} file not found: {path}")
    pair = _load_pair(cert, key)
    if pair is None:
        msg = f"TLS cert {cert} / key {key}: bad PEM, encrypted key or key/cert mismatch"
        raise ValueError(msg)
    if not _fresh(pair[0], min_valid_days):
        log.warning("TLS cert %s expires within %d days", cert, min_valid_days)
    bundle = data_dir / BUNDLE_FILE
    _write_bundle(bundle, cert.read_bytes())
    return TlsFiles(cert=cert, key=key, ca_cert=None, ca_bundle=bundle)


def ensure_certificates(
    data_dir: Path,
    hosts: Iterable[str] = DEFAULT_HOSTS,
    cert: Path | None = None,
    key: Path | None = None,
    min_valid_days: int = 30,
) -> TlsFiles:
    """Return usable TLS files in `data_dir`, (re)generating only what is missing or unfit."""
    if (cert is None) != (key is None):
        msg = f"TLS cert and key must be given together (got only the {'cert' if cert else 'key'})"
        raise ValueError(msg)
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if cert is not None and key is not None:
        return _user_files(data_dir, Path(cert), Path(key), min_valid_days)
    hosts = [hosts] if isinstance(hosts, str) else list(hosts)
    ca_cert_path, ca_key_path = data_dir / CA_CERT_FILE, data_dir / CA_KEY_FILE
    files = TlsFiles(data_dir / CERT_FILE, data_dir / KEY_FILE, ca_cert_path, data_dir / BUNDLE_FILE)
    with open(data_dir / TLS_LOCK_FILE, "a") as lock:  # serialise concurrent starters
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca = _load_ca(ca_cert_path, ca_key_path, min_valid_days)
        if ca is None:
            log.info("generating local CA in %s", data_dir)
            ca = _make_ca()
            _save_pair(*ca, ca_cert_path, ca_key_path)
        server = _load_pair(files.cert, files.key)
        if (
            server is None
            or not _fresh(server[0], min_valid_days)
            or not _signed_by(server[0], ca[0])
            or not _covers(server[0], hosts)
        ):
            log.info("generating server certificate for %s", hosts)
            _save_pair(*_make_server(*ca, hosts), files.cert, files.key)
        _write_bundle(files.ca_bundle, _pem(ca[0]))
    return files


def main(argv: list[str] | None = None) -> int:
    """``python -m swf_lite.tls DATA_DIR [--host H ...] [--cert C --key K]``: :func:`ensure_certificates`
    for a parent process (see :mod:`swf_lite.tlschild`); prints the files as one JSON line, or
    ``{"error": ...}``. Log lines go to stderr, formatted as the parent formats its own."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m swf_lite.tls")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--host", action="append", default=[])
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--log-level", default="INFO")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=ns.log_level, format=LOG_FORMAT)
    try:
        files = ensure_certificates(ns.data_dir, hosts=ns.host or DEFAULT_HOSTS, cert=ns.cert, key=ns.key)
    except (ValueError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    print(json.dumps({k: str(v) if v is not None else None for k, v in vars(files).items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
