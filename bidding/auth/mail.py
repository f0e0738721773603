"""Messages to email addresses: written to the outbox in the transaction of what they tell,
then delivered by SMTP, or, in development without SMTP, written to the server's log.

The outbox makes a message as durable as the account it is about: a registration that commits
has its message, one that rolls back has none, and a message the SMTP server refused is tried
again later, by whichever instance claims it first (a conditional UPDATE: losers see 0 rows).
"""

import asyncio
import contextlib
import logging
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.auth.models import OutboxMessage
from bidding.db import iso_utc, utcnow
from bidding.settings import Settings

logger = logging.getLogger(__name__)

# A claimed message whose sender died is tried again after this.
CLAIM_LEASE = timedelta(minutes=2)
RETRY_FIRST = timedelta(seconds=30)
RETRY_MOST = timedelta(hours=1)
# About a day of tries (30 s doubling to an hour); an activation link lapses soon after.
MAX_ATTEMPTS = 30
SMTP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 5.0
_BATCH = 20


# --- what the messages say -----------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """A message before it has an address: its kind (for an administrator), subject, text."""

    kind: str
    subject: str
    body: str


_SIGNATURE = "\n--\n不见面开标平台 Contactless bidding platform\n{site}/\n"


def activation_letter(
    *, link: str, organization_name: str, organization_code: str, expires_at: datetime
) -> Letter:
    """To a new registrant: the one-time link that activates the account."""
    until = iso_utc(expires_at)
    body = (
        f"有人（希望是您）用本邮箱在不见面开标平台注册了投标人账号，所属单位："
        f"{organization_name}（统一社会信用代码 {organization_code}）。\n"
        f"请在 {until}（UTC）之前打开下面的链接，并输入注册时设置的密码以激活账号：\n\n"
        f"{link}\n\n"
        "如果不是您本人注册，请忽略本邮件：未激活的注册到期自动作废。\n\n"
        "Someone, we hope you, registered a bidder account on the contactless bidding "
        f"platform with this address, for the organization {organization_name} (unified "
        f"social credit code {organization_code}).\n"
        f"To activate it, open this link before {until} (UTC) and enter the password chosen "
        f"at registration:\n\n{link}\n\n"
        "If it was not you, ignore this message: a registration that is not activated lapses "
        "by itself.\n"
    )
    return Letter("activation", "激活您的投标人账号 Activate your bidder account", body)


def email_taken_letter(*, site: str) -> Letter:
    """To the owner of an account: someone tried to register a new one with its address."""
    body = (
        "有人尝试用本邮箱在不见面开标平台注册新的投标人账号，但本邮箱已有账号。"
        "我们没有做任何更改。\n"
        f"如果是您本人，请直接登录：{site}/#/sign-in 。忘记密码请联系平台管理员。"
        "如果不是您，无需任何操作。\n\n"
        "Someone tried to register a new bidder account on the contactless bidding platform "
        "with this address, which already has an account. Nothing was changed.\n"
        f"If it was you, sign in at {site}/#/sign-in (the platform's administrator resets "
        "forgotten passwords). If it was not you, there is nothing to do.\n"
    )
    return Letter("email_taken", "注册尝试 A registration with your address", body)


def organization_registered_letter(*, organization_code: str) -> Letter:
    """To a registrant whose organization (by credit code) already has accounts."""
    body = (
        f"统一社会信用代码为 {organization_code} 的单位已在不见面开标平台注册，"
        "本次注册未创建任何账号。\n"
        "同一单位的其他账号由平台管理员开设：请联系贵单位已有的账号使用人，"
        "或携营业执照联系平台管理员。\n\n"
        f"The organization with the unified social credit code {organization_code} already "
        "has accounts on the contactless bidding platform, so this registration created "
        "nothing.\n"
        "Further accounts of an organization are opened by the platform's administrator: ask "
        "your organization's existing users, or write to the administrator with your business "
        "licence.\n"
    )
    return Letter("organization_registered", "注册未完成 Your registration", body)


def organization_lookalike_letter(*, organization_name: str) -> Letter:
    """To a registrant whose organization name looks the same as a registered one's."""
    body = (
        f"您填写的单位名称“{organization_name}”与平台上已注册单位的名称看起来相同"
        "（形近字符如数字 0 与字母 O、不同文字中外形相同的字母、大小写、全角半角、"
        "空格和标点的差别，均视为相同）。开标时所有人都会看到投标单位名称，"
        "因此本次注册未创建任何账号。\n"
        "如果该单位就是贵单位，请联系平台管理员开设账号；如果不是，"
        "请按营业执照上的名称重新注册，或联系平台管理员。\n\n"
        f"The organization name you gave, {organization_name}, looks the same as the name of "
        "an organization already registered on the platform (characters that look alike, "
        "such as the digit 0 and the letter O or the same letter in another script, and "
        "differences of case, width, spacing and punctuation count as the same). Everyone "
        "at an opening reads the bidders' names, so this registration created nothing.\n"
        "If that organization is yours, ask the platform's administrator for an account in "
        "it; if not, register with the name exactly as on your business licence, or write "
        "to the administrator.\n"
    )
    return Letter("organization_lookalike", "注册未完成 Your registration", body)


async def queue(
    *, session: AsyncSession, to_address: str, letter: Letter, site: str
) -> OutboxMessage:
    """Put a message in the outbox, in the session's transaction."""
    message = OutboxMessage(
        to_address=to_address,
        kind=letter.kind,
        subject=letter.subject,
        body=letter.body + _SIGNATURE.format(site=site),
        next_attempt_at=utcnow(),
        attempts=0,
    )
    session.add(message)
    await session.flush()
    return message


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, read out of its session."""

    id: uuid.UUID
    to_address: str
    subject: str
    body: str
    attempts: int


class Transport(Protocol):
    """Where a message goes: `via` names it in the outbox."""

    via: str

    async def send(self, message: Outgoing) -> None:
        """Deliver the message, or raise."""


class LogTransport:
    """Development without SMTP: the message is written to the server's log, and stays
    readable in the outbox (GET /api/v1/outbox, for an administrator)."""

    via = "log"

    async def send(self, message: Outgoing) -> None:
        logger.warning(
            "no SMTP server is set (BIDDING_SMTP_URL): message %s to %s is written here "
            "instead of being sent\nSubject: %s\n\n%s",
            message.id,
            message.to_address,
            message.subject,
            message.body,
        )


class SmtpTransport:
    """An SMTP server from BIDDING_SMTP_URL; smtplib in a worker thread."""

    via = "smtp"

    def __init__(self, url: str, *, sender: str, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self._url = urlsplit(url)
        self._sender = sender
        self._timeout = timeout

    def email(self, message: Outgoing) -> EmailMessage:
        """The message as sent: plain UTF-8 text."""
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to_address
        email["Subject"] = message.subject
        email["Date"] = format_datetime(utcnow())
        email["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        email.set_content(message.body)
        return email

    async def send(self, message: Outgoing) -> None:
        email = self.email(message)
        await anyio.to_thread.run_sync(self._send, email)

    def _send(self, email: EmailMessage) -> None:
        url = self._url
        host = url.hostname or ""
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, url.port or 465, timeout=self._timeout, context=context)
        else:
            default_port = 587 if url.scheme == "smtp+starttls" else 25
            client = smtplib.SMTP(host, url.port or default_port, timeout=self._timeout)
        with client:
            if url.scheme == "smtp+starttls":
                client.starttls(context=context)
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(email)


def transport_for(settings: Settings) -> Transport | None:
    """The settings' way out: SMTP when set, the log in development, none in production
    (where registration is closed without SMTP)."""
    if settings.smtp_url is not None:
        assert settings.mail_from is not None  # the settings require it with an SMTP URL
        return SmtpTransport(settings.smtp_url.get_secret_value(), sender=settings.mail_from)
    if settings.environment != "production":
        return LogTransport()
    return None


def _retry_delay(attempts: int) -> timedelta:
    delay: timedelta = RETRY_FIRST * 2 ** max(0, min(attempts - 1, 20))
    return min(delay, RETRY_MOST)


async def _claim(
    session_factory: async_sessionmaker[AsyncSession], now: datetime
) -> list[Outgoing]:
    claimed: list[Outgoing] = []
    async with session_factory() as session, session.begin():
        due = (
            await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.to_address,
                    OutboxMessage.subject,
                    OutboxMessage.body,
                    OutboxMessage.attempts,
                )
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.attempts < MAX_ATTEMPTS,
                )
                .order_by(OutboxMessage.next_attempt_at)
                .limit(_BATCH)
            )
        ).all()
        for message_id, to_address, subject, body, attempts in due:
            # The count of attempts is the row's version: another instance that claimed it
            # first has moved it on, and this UPDATE then matches nothing.
            won = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.attempts == attempts,
                )
                .values(next_attempt_at=now + CLAIM_LEASE, attempts=attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount == 1 and body is not None:  # type: ignore[attr-defined]
                claimed.append(Outgoing(message_id, to_address, subject, body, attempts + 1))
    return claimed


async def deliver_due(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    transport: Transport,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Claim the messages that are due and send them; the number sent. A failure is kept
    on the message, to be tried again later."""
    claimed = await _claim(session_factory, clock())
    sent = 0
    for message in claimed:
        try:
            await transport.send(message)
        except Exception as exc:  # any refusal of the server or the network: try again later
            logger.warning(
                "message %s not sent (attempt %d): %s", message.id, message.attempts, exc
            )
            values: dict[str, object] = {
                "next_attempt_at": clock() + _retry_delay(message.attempts),
                "last_error": f"{type(exc).__name__}: {exc}"[:500],
            }
        else:
            sent += 1
            values = {"sent_at": clock(), "sent_via": transport.via, "last_error": None}
            if transport.via != "log":
                values["body"] = None
        async with session_factory() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    return sent


class Deliverer:
    """Delivers the outbox in the background: woken after each request that queued a message,
    and every few seconds for retries and messages queued by other instances."""

    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        transport: Transport,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._session_factory = session_factory
        self._transport = transport
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    def wake(self) -> None:
        """Look at the outbox now (a request has just committed a message)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await deliver_due(
                    session_factory=self._session_factory, transport=self._transport
                ):
                    pass
            except Exception:
                # The database may be away for a moment: the messages wait in the outbox.
                logger.exception("the outbox could not be delivered; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
