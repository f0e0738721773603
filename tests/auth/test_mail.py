"""The outbox on its way out: a real SMTP server on 127.0.0.1 (aiosmtpd), with and without TLS,
down and back, two deliverers at once, the log in development, and `bidding serve` end to end."""

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import re
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bidding.auth import mail
from bidding.auth.models import OutboxMessage
from bidding.db import create_session_factory, utcnow
from bidding.settings import Settings
from tests.factories import credit_code
from tests.support.processes import free_port, platform_serving

SENDER = "bids@example.cn"
SITE = "https://bidding.example.cn"
LINK = re.compile(r"https://bidding\.example\.cn/#/activate/([A-Za-z0-9_-]+)")
LOGIN, SECRET = "bids", "p@ss word:/"


# --- a real SMTP server --------------------------------------------------------------------


@dataclass
class Inbox:
    """What the SMTP server received, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def wait_for(self, count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} arrived"
            time.sleep(0.1)


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        LOGIN.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=good)


@contextmanager
def smtp_server(port: int | None = None, **options: Any) -> Iterator[tuple[int, Inbox]]:
    """aiosmtpd on 127.0.0.1 in its own thread, until the block ends."""
    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@dataclass(frozen=True)
class Tls:
    """A certificate authority the client is told to trust, and a server certificate for
    127.0.0.1 that it signed."""

    ca: Path
    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test mail CA")])
    ca = certificate("Test mail CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    files = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- the outbox ----------------------------------------------------------------------------


@pytest.fixture
def sessions(committing_app: object, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on real transactions, as the deliverer has them; emptied afterwards."""
    return create_session_factory(engine)


async def queued(sessions: async_sessionmaker[AsyncSession], to: str = "") -> OutboxMessage:
    """An activation message in the outbox, committed."""
    letter = mail.activation_letter(
        link=f"{SITE}/#/activate/{uuid.uuid4().hex}",
        organization_name="闽江建设有限公司 Minjiang Builders",
        organization_code=credit_code(),
        expires_at=utcnow() + timedelta(hours=48),
    )
    async with sessions() as session, session.begin():
        return await mail.queue(
            session=session,
            to_address=to or f"bids-{uuid.uuid4().hex[:6]}@example.com",
            letter=letter,
            site=SITE,
        )


async def stored(sessions: async_sessionmaker[AsyncSession], message_id: uuid.UUID) -> Any:
    async with sessions() as session:
        return await session.get(OutboxMessage, message_id)


def smtp(url: str) -> mail.SmtpTransport:
    return mail.SmtpTransport(url, sender=SENDER, timeout=10)


class TestSmtp:
    async def test_a_message_reaches_the_server_and_its_text_leaves_the_outbox(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        message = await queued(sessions)
        with smtp_server() as (port, inbox):
            sent = await mail.deliver_due(
                session_factory=sessions, transport=smtp(f"smtp://127.0.0.1:{port}")
            )
        assert sent == 1
        (received,) = inbox.messages
        assert inbox.recipients == [[message.to_address]]
        assert received["From"] == SENDER and received["To"] == message.to_address
        assert received["Subject"] == message.subject  # Chinese, encoded and decoded back
        text = received.get_content()
        assert message.body is not None and LINK.search(text)
        assert LINK.search(text).group(1) == LINK.search(message.body).group(1)  # type: ignore[union-attr]
        assert "闽江建设有限公司" in text
        after = await stored(sessions, message.id)
        assert (after.sent_via, after.attempts, after.last_error) == ("smtp", 1, None)
        assert after.sent_at is not None
        assert after.body is None, "the link is not kept in clear once the server has it"

    async def test_starttls_with_a_login_and_a_trusted_certificate(
        self, sessions: async_sessionmaker[AsyncSession], tls: Tls, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
        message = await queued(sessions)
        options = {
            "tls_context": tls.server_context(),
            "require_starttls": True,
            "authenticator": _authenticator,
            "auth_required": True,
        }
        credentials = "bids:p%40ss%20word%3A%2F@"  # the URL form of LOGIN and SECRET
        with smtp_server(**options) as (port, inbox):
            url = f"smtp+starttls://{credentials}127.0.0.1:{port}"
            assert await mail.deliver_due(session_factory=sessions, transport=smtp(url)) == 1
        assert inbox.recipients == [[message.to_address]]

    async def test_implicit_tls(
        self, sessions: async_sessionmaker[AsyncSession], tls: Tls, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
        message = await queued(sessions)
        with smtp_server(ssl_context=tls.server_context()) as (port, inbox):
            url = f"smtps://127.0.0.1:{port}"
            assert await mail.deliver_due(session_factory=sessions, transport=smtp(url)) == 1
        assert inbox.recipients == [[message.to_address]]

    async def test_a_server_whose_certificate_is_not_trusted_gets_nothing(
        self, sessions: async_sessionmaker[AsyncSession], tls: Tls
    ) -> None:
        message = await queued(sessions)
        options = {"tls_context": tls.server_context(), "require_starttls": True}
        with smtp_server(**options) as (port, inbox):
            url = f"smtp+starttls://127.0.0.1:{port}"
            assert await mail.deliver_due(session_factory=sessions, transport=smtp(url)) == 0
        assert inbox.messages == []
        after = await stored(sessions, message.id)
        assert after.sent_at is None and "CERTIFICATE_VERIFY_FAILED" in after.last_error
        assert after.body == message.body, "kept until it is delivered"

    async def test_a_server_that_is_down_is_tried_again_later(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        message = await queued(sessions)
        port = free_port()  # nothing listens there yet
        transport = smtp(f"smtp://127.0.0.1:{port}")
        before = utcnow()
        assert await mail.deliver_due(session_factory=sessions, transport=transport) == 0
        failed = await stored(sessions, message.id)
        assert failed.sent_at is None and failed.attempts == 1
        assert "ConnectionRefusedError" in failed.last_error
        assert failed.next_attempt_at - before >= mail.RETRY_FIRST
        # Not due yet: nothing is tried.
        with smtp_server(port) as (_, inbox):
            assert await mail.deliver_due(session_factory=sessions, transport=transport) == 0
            later = failed.next_attempt_at + timedelta(seconds=1)
            sent = await mail.deliver_due(
                session_factory=sessions, transport=transport, clock=lambda: later
            )
        assert sent == 1 and len(inbox.messages) == 1
        assert (await stored(sessions, message.id)).attempts == 2

    async def test_two_deliverers_at_once_send_each_message_once(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        messages = [await queued(sessions) for _ in range(12)]
        with smtp_server() as (port, inbox):
            transport = smtp(f"smtp://127.0.0.1:{port}")
            counts = await asyncio.gather(
                *(mail.deliver_due(session_factory=sessions, transport=transport) for _ in range(2))
            )
            # What one batch left (a claim lost to the other) is picked up by the next round.
            while await mail.deliver_due(session_factory=sessions, transport=transport):
                pass
        assert sorted(r[0] for r in inbox.recipients) == sorted(m.to_address for m in messages)
        assert sum(counts) <= 12


class TestDevelopmentLog:
    async def test_without_smtp_the_message_is_written_to_the_log_and_kept(
        self, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="bidding.auth.mail")
        message = await queued(sessions)
        sent = await mail.deliver_due(session_factory=sessions, transport=mail.LogTransport())
        assert sent == 1
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert message.to_address in logged
        assert message.body is not None and message.body in logged
        after = await stored(sessions, message.id)
        assert (after.sent_via, after.body) == ("log", message.body)

    def test_the_way_out_follows_the_settings(self, tmp_path: Path) -> None:
        development = Settings(data_dir=tmp_path)
        assert isinstance(mail.transport_for(development), mail.LogTransport)
        production = Settings(data_dir=tmp_path, environment="production")
        assert mail.transport_for(production) is None
        assert not production.registration_open
        with_smtp = Settings(
            data_dir=tmp_path,
            environment="production",
            smtp_url="smtps://u:p@mail.example.cn",
            public_url=SITE,
            mail_from=SENDER,
        )
        assert isinstance(mail.transport_for(with_smtp), mail.SmtpTransport)
        assert with_smtp.registration_open


class TestSettings:
    @pytest.mark.parametrize(
        ("values", "problem"),
        [
            ({"smtp_url": "smtp://user:pw@mail.example.cn"}, "no TLS"),
            ({"smtp_url": "http://mail.example.cn"}, "an SMTP URL is"),
            ({"smtp_url": "smtps://mail.example.cn/path"}, "no path"),
            ({"smtp_url": "smtps://mail.example.cn:99999"}, "ort"),
            ({"smtp_url": "smtps://mail.example.cn", "mail_from": SENDER}, "BIDDING_PUBLIC_URL"),
            ({"smtp_url": "smtps://mail.example.cn", "public_url": SITE}, "BIDDING_MAIL_FROM"),
            ({"public_url": "javascript:alert(1)"}, "http(s)://host"),
            ({"public_url": "https://bidding.example.cn/#x"}, "http(s)://host"),
            ({"mail_from": "not an address"}, "no email address"),
        ],
    )
    def test_a_bad_mail_setting_stops_the_start(
        self, tmp_path: Path, values: dict[str, str], problem: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]
        assert problem in str(refused.value)


@pytest.mark.process
class TestServed:
    def test_bidding_serve_mails_the_link_and_does_not_log_it(self, tmp_path: Path) -> None:
        with smtp_server() as (port, inbox):
            settings = {
                "BIDDING_SMTP_URL": f"smtp://127.0.0.1:{port}",
                "BIDDING_PUBLIC_URL": SITE,
                "BIDDING_MAIL_FROM": SENDER,
            }
            with platform_serving(tmp_path / "var", **settings) as served:
                body = {
                    "email": "served@example.com",
                    "password": "a long enough passphrase",
                    "display_name": "Served",
                    "organization": {"name": "Served Works Ltd", "code": credit_code()},
                }
                with httpx.Client(base_url=served.url, timeout=30) as http:
                    answer = http.post("/api/v1/auth/register", json=body)
                    assert answer.status_code == 202, answer.text
                    inbox.wait_for(1)
                    found = LINK.search(inbox.messages[0].get_content())
                    assert found is not None
                    activated = http.post(
                        "/api/v1/auth/activate",
                        json={"token": found.group(1), "password": body["password"]},
                    )
                    assert activated.status_code == 200, activated.text
                output = served.output()
        assert inbox.recipients == [["served@example.com"]]
        assert found.group(1) not in output
