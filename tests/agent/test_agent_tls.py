"""TLS: verification is on by default, a CA file narrows trust, and a pin is checked before any byte
(or the bearer key) is sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soclite.collectors.agent.client import PinMismatch, ServerClient
from soclite.errors import ConnectorError

from .agent_support import FakeSoc, ServerThread


def self_signed(tmp: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soclite-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ServerThread, FakeSoc, Path, str]]:
    cert, key, pin = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    soc = FakeSoc()
    srv = ServerThread(soc, ssl_context=context).start()
    yield srv, soc, cert, pin
    srv.stop()


def test_untrusted_certificate_is_refused(tls_server: tuple[ServerThread, FakeSoc, Path, str]) -> None:
    srv, soc, _, _ = tls_server
    client = ServerClient(srv.url, api_key="sl_agent1_secret", timeout=5)
    with pytest.raises(ConnectorError, match="CERTIFICATE_VERIFY_FAILED"):
        client.request("GET", "/api/v1/agents/commands")
    assert soc.requests == 0


def test_ca_file_is_trusted_and_a_matching_pin_passes(
    tls_server: tuple[ServerThread, FakeSoc, Path, str],
) -> None:
    srv, _, cert, pin = tls_server
    client = ServerClient(srv.url, ca_file=cert, pin_sha256=pin, api_key="sl_agent1_secret", timeout=5)
    assert client.request("GET", "/api/v1/agents/commands").json() == {"items": []}
    client.close()


def test_wrong_pin_sends_nothing(tls_server: tuple[ServerThread, FakeSoc, Path, str]) -> None:
    srv, soc, cert, _ = tls_server
    client = ServerClient(srv.url, ca_file=cert, pin_sha256="0" * 64, api_key="sl_agent1_secret", timeout=5)
    with pytest.raises(PinMismatch):
        client.request("POST", "/api/v1/ingest", b"x", {"X-Batch-Id": "b"})
    assert soc.requests == 0 and soc.records == []
