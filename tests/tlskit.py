"""A local certificate authority for HTTPS and mutual-TLS tests (tests only).

``TestCA(folder)`` makes a self-signed CA (EC P-256, valid from an hour ago for a day) and
writes ``ca.pem``; :meth:`TestCA.server` and :meth:`TestCA.client` issue certificates
from it, :meth:`TestCA.stranger` from a fresh CA nobody trusts. Keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(common_name: str, issuer: x509.Name, key, ca: bool) -> x509.CertificateBuilder:
    """What a CA and a leaf certificate share: names, key, serial, a validity from an
    hour ago for a day, the CA flag and the key usage that goes with it."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def _self_signed_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca_cert.subject, key, ca=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


class TestCA:
    """A CA in ``folder``: ``ca`` is its certificate's path (``ca.pem``)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, folder: Path, name: str = "riskcontrol test CA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cert, self._key = _self_signed_ca(name)
        self.ca = self.folder / "ca.pem"
        _write_cert(self.ca, self._cert)

    def _save(self, stem: str, cert, key) -> tuple[Path, Path]:
        cert_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}-key.pem"
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
        return cert_path, key_path

    def server(self, name: str = "localhost") -> tuple[Path, Path]:
        """(cert, key) for a server reached as ``localhost`` or ``127.0.0.1``."""
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        if name != "localhost":
            names.insert(0, x509.DNSName(name))
        cert, key = _issue(self._cert, self._key, name, ExtendedKeyUsageOID.SERVER_AUTH, names)
        return self._save(f"server-{name}", cert, key)

    def client(self, name: str) -> tuple[Path, Path]:
        """(cert, key) of a client whose certificate's CN is ``name``."""
        cert, key = _issue(self._cert, self._key, name, ExtendedKeyUsageOID.CLIENT_AUTH)
        return self._save(f"client-{name}", cert, key)

    def stranger(self, name: str) -> tuple[Path, Path]:
        """(cert, key) of a client certificate issued by a fresh CA this one does not
        know: a server trusting only this CA must refuse it."""
        other_cert, other_key = _self_signed_ca(f"stranger CA for {name}")
        cert, key = _issue(other_cert, other_key, name, ExtendedKeyUsageOID.CLIENT_AUTH)
        return self._save(f"stranger-{name}", cert, key)
