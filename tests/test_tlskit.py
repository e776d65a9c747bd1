"""The test CA works with the standard library's TLS: server auth and mutual TLS.

A tiny TLS server in a thread (``ssl`` with ``CERT_REQUIRED`` over the kit's CA) answers
each connection with the common name of the client's certificate. In TLS 1.3 the client
finishes its handshake before the server checks the client's certificate, so a refusal
shows on the client's first read: :func:`talk` reads the answer, and every test has a
timeout so nothing can hang.
"""

from __future__ import annotations

import datetime as dt
import queue
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tlskit import TestCA

TIMEOUT = 3.0
REFUSED = (ssl.SSLError, ConnectionError, TimeoutError)


class TinyServer:
    """Accepts connections one at a time until stopped; :meth:`outcome` gives, per
    connection in order, the client's CN or the exception that ended its handshake."""

    def __init__(self, ca: TestCA):
        cert, key = ca.server()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cafile=str(ca.ca))
        self.context.load_cert_chain(str(cert), str(key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._outcomes: queue.Queue[str | Exception] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(TIMEOUT)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    subject = dict(x[0] for x in tls.getpeercert()["subject"])
                    self._outcomes.put(subject["commonName"])
                    tls.sendall(subject["commonName"].encode())
            except Exception as exc:  # a refused handshake: what the test expects to see
                self._outcomes.put(exc)
            finally:
                conn.close()

    def outcome(self) -> str | Exception:
        """The next connection's outcome, once the server has it."""
        return self._outcomes.get(timeout=TIMEOUT)

    def idle(self) -> bool:
        return self._outcomes.empty()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT)
        self.sock.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def server(ca):
    s = TinyServer(ca)
    yield s
    s.stop()
    assert s.idle(), "a connection the test did not look at"
    assert not s._thread.is_alive()


def client_context(ca: TestCA | None, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """Trusts the kit's CA (or only the system's, with ``ca=None``); presents ``cert``."""
    ctx = ssl.create_default_context(cafile=str(ca.ca)) if ca else ssl.create_default_context()
    if cert:
        ctx.load_cert_chain(*map(str, cert))
    return ctx


def talk(server: TinyServer, ctx: ssl.SSLContext, host: str = "localhost") -> str:
    """The server's answer (the client's CN); raises when either side refuses."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        answer = tls.recv(1024)
    if not answer:
        raise ConnectionError("the server closed the connection without an answer")
    return answer.decode()


def test_a_client_certificate_from_the_ca_is_accepted(ca, server):
    ctx = client_context(ca, ca.client("channel-a"))
    assert talk(server, ctx) == "channel-a"
    assert talk(server, ctx, host="127.0.0.1") == "channel-a"  # the IP is in the SAN too
    assert [server.outcome(), server.outcome()] == ["channel-a", "channel-a"]


def test_a_client_without_a_certificate_is_refused(ca, server):
    with pytest.raises(REFUSED):
        talk(server, client_context(ca, None))
    assert isinstance(server.outcome(), ssl.SSLError)


def test_a_certificate_from_another_ca_is_refused(ca, server):
    with pytest.raises(REFUSED):
        talk(server, client_context(ca, ca.stranger("intruder")))
    refusal = server.outcome()
    assert isinstance(refusal, ssl.SSLError)
    assert "certificate verify failed" in str(refusal)


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(ca, server):
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(server, client_context(None, ca.client("channel-a")))
    assert isinstance(server.outcome(), (ssl.SSLError, ConnectionError))  # client broke off


def test_the_server_certificate_does_not_fit_another_host_name(ca, server):
    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname"):
        talk(server, client_context(ca, ca.client("channel-a")), host="example.com")
    assert isinstance(server.outcome(), ssl.SSLError)


def test_the_certificates_say_what_they_are_for(ca):
    now = dt.datetime.now(dt.UTC)
    root = x509.load_pem_x509_certificate(ca.ca.read_bytes())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert root.not_valid_before_utc <= now - dt.timedelta(minutes=59)
    assert now + dt.timedelta(hours=23) <= root.not_valid_after_utc <= now + dt.timedelta(days=1)

    cert_path, key_path = ca.server()
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.issuer == root.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    cert_path, key_path = ca.client("channel-b")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "channel-b"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    cert_path, _ = ca.stranger("intruder")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.issuer != root.subject
