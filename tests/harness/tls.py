"""Certificates for the Kafka TLS tests, made by the test with `cryptography`: a CA, a broker
certificate for localhost and 127.0.0.1 (with its key in one PEM, as Kafka's PEM key store
reads it), a client certificate whose key is encrypted with a password (mTLS), and a second CA
that signed nothing here (the "wrong CA" case). Everything is PEM in one directory."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = datetime.timedelta(days=2)
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True,
    content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a pytest test class

    ca_cert: Path  # the CA both sides trust
    broker_keystore: Path  # broker key (PKCS#8, unencrypted) + certificate, one PEM
    client_cert: Path
    client_key: Path  # encrypted with client_key_password
    client_key_password: str
    other_ca_cert: Path  # a CA that signed neither certificate


@dataclass(frozen=True)
class _Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Issued(key, cert)


def _leaf(ca: _Issued, common_name: str, *, server_names: tuple[str, ...] = ()) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    return _Issued(key, builder.sign(ca.key, hashes.SHA256()))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def make_pki(
    directory: Path,
    *,
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    client_key_password: str = "client-key-password-4711",
) -> TestPki:
    """Write a fresh CA, broker and client certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("beaconwatch test CA")
    broker = _leaf(ca, "broker", server_names=server_names)
    client = _leaf(ca, "beaconwatch")
    other = _ca("some other CA")

    def write(name: str, data: bytes) -> Path:
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    return TestPki(
        ca_cert=write("ca.pem", _cert_pem(ca.cert)),
        broker_keystore=write("broker.pem", _key_pem(broker.key) + _cert_pem(broker.cert)),
        client_cert=write("client.pem", _cert_pem(client.cert)),
        client_key=write("client.key", _key_pem(client.key, client_key_password)),
        client_key_password=client_key_password,
        other_ca_cert=write("other-ca.pem", _cert_pem(other.cert)),
    )
