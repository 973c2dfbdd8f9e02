"""swf_lite.tls: real keys, real certificates, real TLS handshakes (no crypto mocks)."""

import datetime as dt
import http.server
import socket
import ssl
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from swf_lite import tls
from swf_lite.tls import TlsFiles, ensure_certificates

BEGIN = b"-----BEGIN CERTIFICATE-----"
SYSTEM_STORE = Path("/etc/ssl/certs/ca-certificates.crt")
TIMEOUT = 5


@pytest.fixture(autouse=True)
def _no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These point at the system store on this machine; each test sets them on purpose."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def files(data_dir: Path) -> TlsFiles:
    return ensure_certificates(data_dir)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def _server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


def _strict_client(cafile: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


# --- generation and reuse -------------------------------------------------------------


def test_first_call_creates_files_with_private_keys(files: TlsFiles, data_dir: Path):
    names = {p.name for p in data_dir.iterdir() if not p.name.startswith(".")}
    assert names == {
        "ca_cert.pem",
        "ca_key.pem",
        "ssl_cert.pem",
        "ssl_key.pem",
        "ca_bundle.pem",
    }
    assert files == TlsFiles(
        data_dir / "ssl_cert.pem",
        data_dir / "ssl_key.pem",
        data_dir / "ca_cert.pem",
        data_dir / "ca_bundle.pem",
    )
    for key in (files.key, data_dir / "ca_key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for public in (files.cert, files.ca_cert, files.ca_bundle):
        assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert not [p for p in data_dir.iterdir() if p.name.endswith(".tmp")]


def test_second_call_reuses_everything(files: TlsFiles, data_dir: Path):
    before = {p: p.read_bytes() for p in data_dir.glob("*.pem")}
    bundle_inode = files.ca_bundle.stat().st_ino
    assert ensure_certificates(data_dir) == files
    assert {p: p.read_bytes() for p in data_dir.glob("*.pem")} == before
    assert files.ca_bundle.stat().st_ino == bundle_inode  # unchanged bundle not rewritten


def test_certificate_contents(files: TlsFiles):
    server, ca = _cert(files.cert), _cert(files.ca_cert)
    san = _ext(server, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
    }
    ca_bc = _ext(ca, x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca and ca_bc.value.path_length == 0
    ca_ku = _ext(ca, x509.KeyUsage)
    assert ca_ku.critical and ca_ku.value.key_cert_sign and ca_ku.value.crl_sign
    leaf_bc = _ext(server, x509.BasicConstraints)
    assert leaf_bc.critical and not leaf_bc.value.ca
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in _ext(server, x509.ExtendedKeyUsage).value
    aki = _ext(server, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == _ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    server.verify_directly_issued_by(ca)
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert dt.timedelta(days=800) < lifetime < dt.timedelta(days=830)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=9 * 365)


def test_concurrent_first_calls_agree(data_dir: Path):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ensure_certificates(data_dir), range(8)))
    assert len(set(results)) == 1
    pair = tls._load_pair(results[0].cert, results[0].key)
    assert pair is not None
    pair[0].verify_directly_issued_by(_cert(results[0].ca_cert))


# --- real handshakes --------------------------------------------------------------------


@pytest.fixture
def tls_port(files: TlsFiles) -> Iterator[int]:
    """A bare `ssl` server socket on 127.0.0.1 that completes handshakes and hangs up."""
    ctx = _server_context(files)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(TIMEOUT)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except OSError:  # a client that rejected our certificate
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(TIMEOUT)
    listener.close()


def _handshake(port: int, server_hostname: str, cafile: Path) -> dict:
    ctx = _strict_client(cafile)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as conn,
    ):
        return conn.getpeercert()


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_strict_ssl_client_accepts_chain(files: TlsFiles, tls_port: int, hostname: str):
    peer = _handshake(tls_port, hostname, files.ca_bundle)
    assert ("DNS", "localhost") in peer["subjectAltName"]


def test_strict_ssl_client_still_checks_names_and_trust(files: TlsFiles, tls_port: int):
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_port, "not-us.example", files.ca_bundle)
    system_only = files.ca_bundle.with_name("system_only.pem")
    system_only.write_bytes(files.ca_bundle.read_bytes().replace(files.ca_cert.read_bytes().strip(), b""))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_port, "localhost", system_only)


class _Hello(http.server.BaseHTTPRequestHandler):
    timeout = TIMEOUT

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """Handshakes that a test's client rejects on purpose are expected: no traceback noise."""


@pytest.fixture
def https_url(files: TlsFiles) -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Hello)
    # Handshake lazily in the handler thread, so a rejecting client never stalls accept().
    server.socket = _server_context(files).wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT)


def test_requests_verify_with_bundle(files: TlsFiles, https_url: str):
    response = requests.get(https_url, verify=str(files.ca_bundle), timeout=TIMEOUT)
    assert response.status_code == 200 and response.text == "ok"


@pytest.mark.parametrize("var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_requests_env_bundle(files: TlsFiles, https_url: str, monkeypatch: pytest.MonkeyPatch, var: str):
    monkeypatch.setenv(var, str(files.ca_bundle))
    with requests.Session() as session:
        assert session.get(https_url, timeout=TIMEOUT).text == "ok"


def test_requests_rejects_without_local_ca(files: TlsFiles, https_url: str):
    system_only = files.ca_bundle.with_name("system_only.pem")
    system_only.write_bytes(files.ca_bundle.read_bytes().replace(files.ca_cert.read_bytes().strip(), b""))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_url, verify=str(system_only), timeout=TIMEOUT)


# --- bundle ---------------------------------------------------------------------------


def test_bundle_has_system_cas_and_local_ca_once(files: TlsFiles):
    bundle = files.ca_bundle.read_bytes()
    assert bundle.count(files.ca_cert.read_bytes().strip()) == 1
    certifi = pytest.importorskip("certifi")
    assert Path(certifi.where()).read_bytes().strip() in bundle
    assert bundle.count(BEGIN) > 100


def test_bundle_does_not_grow_when_env_points_at_it(files: TlsFiles, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    before = files.ca_bundle.read_bytes()
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(var, str(files.ca_bundle))
    ensure_certificates(data_dir)
    ensure_certificates(data_dir)
    assert files.ca_bundle.read_bytes() == before


def test_bundle_without_certifi_uses_system_store(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    if not SYSTEM_STORE.is_file():
        pytest.skip("no system CA store")
    monkeypatch.setitem(sys.modules, "certifi", None)  # import certifi -> ImportError
    files = ensure_certificates(data_dir)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_bundle))  # ssl's default cafile -> our bundle
    ensure_certificates(data_dir)
    bundle = files.ca_bundle.read_bytes()
    assert bundle.count(files.ca_cert.read_bytes().strip()) == 1
    assert bundle.count(BEGIN) == SYSTEM_STORE.read_bytes().count(BEGIN) + 1


# --- regeneration ---------------------------------------------------------------------


def _expiring(files: TlsFiles) -> None:
    ca = tls._load_pair(files.ca_cert, files.ca_cert.with_name("ca_key.pem"))
    assert ca is not None
    tls._save_pair(*tls._make_server(*ca, tls.DEFAULT_HOSTS, days=5), files.cert, files.key)


def _foreign(files: TlsFiles) -> None:
    other = ensure_certificates(files.cert.parent.parent / "other")
    files.cert.write_bytes(other.cert.read_bytes())
    files.key.write_bytes(other.key.read_bytes())


def _other_key(files: TlsFiles) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files.key.write_bytes(pem)


BREAKAGES: dict[str, Callable[[TlsFiles], object]] = {
    "garbage cert": lambda f: f.cert.write_bytes(b"garbage"),
    "garbage key": lambda f: f.key.write_bytes(b"garbage"),
    "missing cert": lambda f: f.cert.unlink(),
    "key does not match": _other_key,
    "signed by another CA": _foreign,
    "expiring in 5 days": _expiring,
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_broken_server_cert_is_regenerated_ca_kept(files: TlsFiles, data_dir: Path, breakage: str):
    ca_before = files.ca_cert.read_bytes()
    BREAKAGES[breakage](files)
    broken = files.cert.read_bytes() if files.cert.exists() else b""
    ensure_certificates(data_dir)
    assert files.ca_cert.read_bytes() == ca_before
    assert files.cert.read_bytes() != broken
    pair = tls._load_pair(files.cert, files.key)
    assert pair is not None
    pair[0].verify_directly_issued_by(_cert(files.ca_cert))
    assert pair[0].not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=800)


def test_expiry_threshold_is_min_valid_days(files: TlsFiles, data_dir: Path):
    _expiring(files)
    short = files.cert.read_bytes()
    ensure_certificates(data_dir, min_valid_days=3)
    assert files.cert.read_bytes() == short
    ensure_certificates(data_dir, min_valid_days=7)
    assert files.cert.read_bytes() != short


def test_extra_hosts_regenerate_and_get_sans(files: TlsFiles, data_dir: Path):
    ca_before, cert_before = files.ca_cert.read_bytes(), files.cert.read_bytes()
    hosts = (
        "localhost",
        "127.0.0.1",
        "::1",
        "MyHost.local",
        "10.1.2.3",
        "[fe80::1%eth0]",
    )
    ensure_certificates(data_dir, hosts=hosts)
    assert files.ca_cert.read_bytes() == ca_before
    assert files.cert.read_bytes() != cert_before
    san = _ext(_cert(files.cert), x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "myhost.local"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "fe80::1",
    }
    with_extra = files.cert.read_bytes()
    ensure_certificates(data_dir, hosts=hosts)
    ensure_certificates(data_dir)  # a superset of the default hosts is still fine
    assert files.cert.read_bytes() == with_extra


def test_wildcard_binds_need_no_san(files: TlsFiles, data_dir: Path):
    before = files.cert.read_bytes()
    ensure_certificates(data_dir, hosts=("0.0.0.0", "::", "localhost"))
    assert files.cert.read_bytes() == before


def test_broken_ca_regenerates_ca_and_server_cert(files: TlsFiles, data_dir: Path):
    old_ca, old_cert = files.ca_cert.read_bytes(), files.cert.read_bytes()
    files.ca_cert.write_bytes(b"garbage")
    ensure_certificates(data_dir)
    new_ca = files.ca_cert.read_bytes()
    assert new_ca != old_ca and files.cert.read_bytes() != old_cert
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca_cert))
    bundle = files.ca_bundle.read_bytes()
    assert bundle.count(new_ca.strip()) == 1 and old_ca.strip() not in bundle


# --- user-provided certificate --------------------------------------------------------


def test_user_cert_and_key_used_as_is(tmp_path: Path, data_dir: Path):
    user = ensure_certificates(tmp_path / "user")
    cert_bytes = user.cert.read_bytes()
    files = ensure_certificates(data_dir, cert=user.cert, key=user.key)
    assert files == TlsFiles(user.cert, user.key, None, data_dir / "ca_bundle.pem")
    assert user.cert.read_bytes() == cert_bytes
    assert sorted(p.name for p in data_dir.glob("*.pem")) == ["ca_bundle.pem"]
    bundle = files.ca_bundle.read_bytes()
    assert bundle.count(cert_bytes.strip()) == 1 and bundle.count(BEGIN) > 1


@pytest.mark.parametrize("given", ["cert", "key"])
def test_user_cert_or_key_alone_is_rejected(tmp_path: Path, data_dir: Path, given: str):
    user = ensure_certificates(tmp_path / "user")
    with pytest.raises(ValueError, match="together"):
        ensure_certificates(data_dir, **{given: getattr(user, given)})


def test_user_files_must_exist_load_and_match(tmp_path: Path, data_dir: Path):
    user = ensure_certificates(tmp_path / "user")
    with pytest.raises(ValueError, match="not found"):
        ensure_certificates(data_dir, cert=tmp_path / "nope.pem", key=user.key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="mismatch"):
        ensure_certificates(data_dir, cert=garbage, key=user.key)
    with pytest.raises(ValueError, match="mismatch"):
        ensure_certificates(data_dir, cert=user.cert, key=tmp_path / "user" / "ca_key.pem")
