"""The relay over STARTTLS and implicit TLS to aiosmtpd with a test CA (loopback)."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings, SmtpSecurity
from notifications.outbox import enqueue_message
from notifications.relay import RelayOptions, relay_once
from notifications.sink import free_port
from tests.integration.relay_db import clear_outbox, fresh_database
from tests.integration.smtp_servers import ScriptedHandler

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "duban test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("security", [SmtpSecurity.starttls, SmtpSecurity.tls])
async def test_relay_over_tls(security: SmtpSecurity, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    handler = ScriptedHandler()
    port = free_port()
    tls_kwargs: dict[str, object] = (
        {"tls_context": server_context, "require_starttls": True}
        if security is SmtpSecurity.starttls
        else {"ssl_context": server_context}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port, **tls_kwargs)
    db = fresh_database("sqlite", tmp_path)
    _, engine = next(db)
    clear_outbox(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        enqueue_message(
            session=session,
            key="tls",
            kind="request",
            to=["a@example.org"],
            subject="加密",
            text_body="x",
            now=NOW,
        )
    settings = Settings(smtp_port=port, smtp_security=security, smtp_timeout_seconds=5)
    controller.start()
    try:
        untrusted = await relay_once(sessions=sessions, settings=settings, now=NOW)
        trusted = await relay_once(
            sessions=sessions,
            settings=settings,
            now=NOW + timedelta(hours=2),
            options=RelayOptions(tls_context=client_context),
        )
    finally:
        controller.stop()
    with sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
    engine.dispose()
    db.close()
    assert (untrusted.retried, untrusted.dead) == (1, 0)
    assert (trusted.sent, row.status, row.attempts) == (1, "sent", 2)
    assert len(handler.deliveries) == 1
