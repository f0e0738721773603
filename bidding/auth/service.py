"""Accounts: creating users and organizations, self-registration by email, signing in with
throttling, issuing tokens."""

import math
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, delete, exists, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth import mail, names, uscc
from bidding.auth.exceptions import (
    ActivationInvalid,
    EmailTaken,
    InvalidCredentials,
    OrganizationLookalike,
    OrganizationMismatch,
    OrganizationRegistered,
)
from bidding.auth.models import (
    NAME_KEY_MAX_LENGTH,
    AccessToken,
    LoginFailure,
    Organization,
    OutboxMessage,
    Role,
    SignInAddress,
    User,
)
from bidding.auth.names import clean_name
from bidding.auth.passwords import hash_password, needs_rehash, verify_password
from bidding.auth.tokens import hash_token, new_token
from bidding.db import iso_utc, utcnow
from bidding.errors import (
    Conflict,
    InvalidInput,
    TooManyRequests,
    Unprocessable,
)
from bidding.settings import Settings

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
DISPLAY_NAME_MAX_LENGTH = 100
ORGANIZATION_NAME_MAX_LENGTH = 200
CLIENT_MAX_LENGTH = 64

# Roles whose work is done on behalf of an organization: a bidder bids as a company, an
# officer publishes tenders for a buyer.
ROLES_WITH_ORGANIZATION = frozenset({Role.bidder, Role.officer})

INVALID_CREDENTIALS = "invalid email or password"
_PRUNE_BATCH = 100


# --- rules on input, shared by the HTTP schemas and the command line -----------------------


def normalize_email(email: str) -> str:
    """The stored form of an email address: checked for syntax only, lower-cased."""
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return checked.normalized.lower()


def login_email(email: str) -> str:
    """The form an email typed at sign-in is looked up in; never refused, only normalized."""
    typed = unicodedata.normalize("NFC", email.strip()).lower()[:EMAIL_MAX_LENGTH]
    # No stored email holds a NUL, and PostgreSQL cannot even compare one (it was a 500).
    return typed.replace("\x00", "\ufffd")


def check_password(password: str) -> str:
    """The password if the policy accepts it; ValueError saying why not otherwise."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"use at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"use at most {PASSWORD_MAX_LENGTH} characters")
    if len(set(password)) == 1:
        raise ValueError("a single repeated character is not a password")
    return password


def _field_error(field: str, exc: ValueError) -> Unprocessable:
    # The same shape as a refused request body, so callers handle one kind of 422.
    message = str(exc)
    return InvalidInput(
        f"{field}: {message}",
        errors=[{"field": field, "message": message}],
    )


def _checked(field: str, check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise _field_error(field, exc) from None


def check_organization_name(value: str) -> tuple[str, str]:
    """An organization name as stored, and its key (names.name_key); ValueError if refused."""
    name = clean_name(value, max_length=ORGANIZATION_NAME_MAX_LENGTH)
    key = names.name_key(name)
    if not key:
        raise ValueError("must hold a letter or a digit")
    if len(key) > NAME_KEY_MAX_LENGTH:
        raise ValueError("is too long once its compatibility characters are spelled out")
    return name, key


# --- accounts ------------------------------------------------------------------------------


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    """The user with this (already normalized) email, active or not."""
    user = await session.scalar(select(User).where(User.email == email))
    return user


async def get_organization_by_code(*, session: AsyncSession, code: str) -> Organization | None:
    """The organization with this (already validated) credit code."""
    organization = await session.scalar(select(Organization).where(Organization.code == code))
    return organization


async def get_organization_by_name_key(*, session: AsyncSession, key: str) -> Organization | None:
    """The organization whose name looks the same as a name of this key."""
    organization = await session.scalar(select(Organization).where(Organization.name_key == key))
    return organization


async def _why_not_unique(
    *, session: AsyncSession, email: str, code: str | None, key: str | None
) -> str:
    """Which unique rule a refused insert broke: what a concurrent request took first."""
    if await get_user_by_email(session=session, email=email) is not None:
        return "email_taken"
    if code is not None and await get_organization_by_code(session=session, code=code):
        return "organization_registered"
    return "organization_lookalike"


async def create_user(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    display_name: str,
    role: Role,
    organization_name: str | None = None,
    organization_code: str | None = None,
    via: str | None = None,
) -> User:
    """Create an active account for a trusted caller (the command line, the demo), and its
    organization unless the credit code is already registered, in which case the account
    joins it (if a name is given, it must look the same as the registered one).

    A new organization's name follows the rules of a self-registration: refused if it looks
    the same as a registered organization's (409 organization_lookalike). The audit trail says
    `auth.user_created`, with the trusted caller named by `via` ("cli", "demo").
    """
    email = _checked("email", normalize_email, email)
    _checked("password", check_password, password)
    display_name = _checked(
        "display_name", lambda v: clean_name(v, max_length=DISPLAY_NAME_MAX_LENGTH), display_name
    )

    organization: Organization | None = None
    new_organization: Organization | None = None
    code: str | None = None
    key: str | None = None
    if organization_code is not None:
        code = _checked("organization.code", uscc.validate, organization_code)
        name: str | None = None
        if organization_name is not None:
            try:
                name, key = check_organization_name(organization_name)
            except ValueError as exc:
                raise _field_error("organization.name", exc) from None
        organization = await get_organization_by_code(session=session, code=code)
        if organization is not None:
            if key is not None and key != names.name_key(organization.name):
                raise OrganizationMismatch(
                    f"the code {code} belongs to {organization.name!r}, not {name!r}",
                )
        elif name is None or key is None:
            raise _field_error("organization.name", ValueError("a new organization needs a name"))
        else:
            lookalike = await get_organization_by_name_key(session=session, key=key)
            if lookalike is not None:
                raise OrganizationLookalike(
                    f"{name!r} looks the same as the name of the registered organization "
                    f"{lookalike.name!r} ({lookalike.code}): a bidder named like another "
                    "would mislead everyone at an opening",
                )
            new_organization = organization = Organization(name=name, code=code, name_key=key)
    elif organization_name is not None:
        raise _field_error("organization.code", ValueError("the credit code is missing"))
    if organization is None and role in ROLES_WITH_ORGANIZATION:
        raise _field_error("organization", ValueError(f"a {role.value} needs an organization"))

    user = User(
        email=email,
        display_name=display_name,
        # Argon2 takes tens of milliseconds: off the event loop, where uploads stream.
        password_hash=await anyio.to_thread.run_sync(hash_password, password),
        role=role,
        is_active=True,
    )
    try:
        # A savepoint, so that losing a race on a unique key leaves the caller's transaction
        # usable (the command line reports the conflict and goes on).
        async with session.begin_nested():
            if new_organization is not None:
                session.add(new_organization)
                await session.flush()
            user.organization_id = organization.id if organization is not None else None
            session.add(user)
            await session.flush()
    except IntegrityError:
        reason = await _why_not_unique(session=session, email=email, code=code, key=key)
        error, detail = _CONFLICTS[reason]
        raise error(detail) from None
    await session.refresh(user)
    details: dict[str, object] = {
        "user_id": str(user.id),
        "email": user.email,
        "role": user.role.value,
        "organization_id": None if organization is None else str(organization.id),
        "organization_created": new_organization is not None,
    }
    if via is not None:
        details["via"] = via
    await audit.record(
        session=session, action="auth.user_created", details=details, actor=audit.SESSION_ACTOR
    )
    return user


_CONFLICTS: dict[str, tuple[type[Conflict], str]] = {
    "email_taken": (EmailTaken, "an account with this email exists"),
    "organization_registered": (
        OrganizationRegistered,
        "an organization with this code was registered at the same moment",
    ),
    "organization_lookalike": (
        OrganizationLookalike,
        "an organization whose name looks the same was registered at the same moment",
    ),
}


# --- self-registration ---------------------------------------------------------------------


async def _drop_registrations(*, session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> None:
    """Remove pending accounts, and the organizations nobody else belongs to."""
    if not user_ids:
        return
    organization_ids = (
        await session.scalars(
            select(User.organization_id).where(
                User.id.in_(user_ids), User.organization_id.is_not(None)
            )
        )
    ).all()
    # Core statements: a row another request removed first is simply not there any more.
    await session.execute(
        delete(User)
        .where(User.id.in_(user_ids), User.is_active.is_(False))
        .where(User.activation_expires_at.is_not(None))
        .execution_options(synchronize_session=False)
    )
    if organization_ids:
        await session.execute(
            delete(Organization)
            .where(
                Organization.id.in_(organization_ids),
                ~exists().where(User.organization_id == Organization.id),
            )
            .execution_options(synchronize_session=False)
        )


async def _lapse_expired(
    *, session: AsyncSession, now: datetime, email: str, code: str, key: str
) -> None:
    """Remove registrations whose link expired: those in this one's way, and a few more."""
    expired = (
        select(User.id)
        .outerjoin(Organization, User.organization_id == Organization.id)
        .where(User.is_active.is_(False), User.activation_expires_at <= now)
    )
    in_the_way = expired.where(
        or_(User.email == email, Organization.code == code, Organization.name_key == key)
    )
    user_ids = {*(await session.scalars(in_the_way)).all()}
    user_ids |= {*(await session.scalars(expired.limit(_PRUNE_BATCH))).all()}
    if user_ids:
        await _drop_registrations(session=session, user_ids=sorted(user_ids))
        await audit.record(
            session=session,
            action="auth.registrations_lapsed",
            details={"user_ids": sorted(str(user_id) for user_id in user_ids)},
            actor=None,
        )


async def register(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    display_name: str,
    organization_name: str,
    organization_code: str,
    site: str,
    activation_ttl: timedelta,
) -> OutboxMessage:
    """A bidder's self-registration: whatever comes of it goes by message to the email
    address, and the caller learns nothing of it (the same answer, about the same time).

    A new email with a new organization: a pending account (inactive) and its organization,
    and an activation link valid for `activation_ttl`. A registered email: its owner is told
    that someone tried; nothing is created. A registered credit code, or an organization name
    that looks the same as a registered one's: the new address is told so; nothing is created.
    Registering again while pending replaces the pending registration (a fresh link).
    `site` is the pages' address, for the links.
    """
    email = _checked("email", normalize_email, email)
    _checked("password", check_password, password)
    display_name = _checked(
        "display_name", lambda v: clean_name(v, max_length=DISPLAY_NAME_MAX_LENGTH), display_name
    )
    code = _checked("organization.code", uscc.validate, organization_code)
    try:
        name, key = check_organization_name(organization_name)
    except ValueError as exc:
        raise _field_error("organization.name", exc) from None

    # Spent whatever the outcome, so that the time taken does not tell which it was.
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    now = utcnow()
    await _lapse_expired(session=session, now=now, email=email, code=code, key=key)

    replaced: User | None = None
    existing = await get_user_by_email(session=session, email=email)
    if existing is not None and not existing.is_active and existing.activation_expires_at:
        replaced, existing = existing, None
        await _drop_registrations(session=session, user_ids=[replaced.id])

    reason: str | None = None
    if existing is not None:
        reason = "email_taken"
    elif await get_organization_by_code(session=session, code=code) is not None:
        reason = "organization_registered"
    elif await get_organization_by_name_key(session=session, key=key) is not None:
        reason = "organization_lookalike"

    user: User | None = None
    token = new_token()
    if reason is None:
        expires_at = now + activation_ttl
        organization = Organization(name=name, code=code, name_key=key)
        user = User(
            email=email,
            display_name=display_name,
            password_hash=password_hash,
            role=Role.bidder,
            is_active=False,
            activation_token_hash=hash_token(token),
            activation_expires_at=expires_at,
        )
        try:
            async with session.begin_nested():
                session.add(organization)
                await session.flush()
                user.organization_id = organization.id
                session.add(user)
                await session.flush()
        except IntegrityError:
            # A concurrent registration took the email, the code or the name first.
            user = None
            reason = await _why_not_unique(session=session, email=email, code=code, key=key)

    if user is not None:
        letter = mail.activation_letter(
            link=f"{site}/#/activate/{token}",
            organization_name=name,
            organization_code=code,
            expires_at=user.activation_expires_at or now,
        )
        details: dict[str, object] = {
            "user_id": str(user.id),
            "email": email,
            "role": Role.bidder.value,
            "organization_id": str(user.organization_id),
            "organization_created": True,
            "pending_until": iso_utc(user.activation_expires_at or now),
        }
        if replaced is not None:
            details["replaced_user_id"] = str(replaced.id)
        await audit.record(
            session=session, action="auth.registered", details=details, actor=user.actor
        )
    else:
        assert reason is not None
        if reason == "email_taken":
            letter = mail.email_taken_letter(site=site)
        elif reason == "organization_registered":
            letter = mail.organization_registered_letter(organization_code=code)
        else:
            letter = mail.organization_lookalike_letter(organization_name=name)
        # For an administrator (the platform's chain is theirs alone), never for the caller.
        await audit.record(
            session=session,
            action="auth.registration_refused",
            details={"email": email, "organization_code": code, "reason": reason},
            actor=None,
        )
    return await mail.queue(session=session, to_address=email, letter=letter, site=site)


async def activate(*, session: AsyncSession, token: str, password: str) -> User:
    """Activate the pending account of this link's token, given the password chosen at
    registration: the link proves the mailbox, the password the registrant. A link sent to
    an address that someone else registered activates nothing for its reader.
    """
    user = await session.scalar(select(User).where(User.activation_token_hash == hash_token(token)))
    # Spent whether the link is known or not, like a sign-in.
    valid = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password
    )
    if (
        user is None
        or user.is_active
        or user.activation_expires_at is None
        or user.activation_expires_at <= utcnow()
    ):
        raise ActivationInvalid(
            "this activation link is unknown, already used or expired: register again for a "
            "fresh one",
        )
    if not valid:
        raise InvalidCredentials("this is not the password chosen at registration")
    user.is_active = True
    user.activation_token_hash = None
    user.activation_expires_at = None
    await session.flush()
    await audit.record(
        session=session,
        action="auth.activated",
        details={"user_id": str(user.id)},
        actor=user.actor,
    )
    return user


# --- signing in ----------------------------------------------------------------------------
#
# Who can hold up whom (README, Security, "Sign-in throttle"). Failures count per (account,
# address) and per address: past the limits the address gets 429, the account does not. All
# failures on an account, from every address, make a sign-in to it wait a little longer, up
# to login_delay_max_seconds, but never refuse it; an address the account signed in from in
# the last login_known_address_days neither waits nor counts other accounts' failures.


@dataclass(frozen=True)
class SignInAttempt:
    """A sign-in let through the throttle, recorded as a failure until its password is right."""

    email: str
    client: str
    # Seconds to wait before the password is checked: failures on the account from elsewhere.
    delay: float


async def _retry_after(
    *,
    session: AsyncSession,
    where: ColumnElement[bool],
    limit: int,
    settings: Settings,
    now: datetime,
) -> int | None:
    """Seconds until a sign-in past these failures may be tried again; None if now."""
    since = now - timedelta(seconds=settings.login_window_seconds)
    recent = (
        await session.scalars(
            select(LoginFailure.at)
            .where(where, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc())
            .limit(limit)
        )
    ).all()
    if len(recent) < limit:
        return None
    # The count falls below the limit when the oldest of the last `limit` leaves the window.
    free_at = recent[-1] + timedelta(seconds=settings.login_window_seconds)
    return max(1, math.ceil((free_at - now).total_seconds()))


def sign_in_delay(*, failures: int, settings: Settings) -> float:
    """The wait before a sign-in to an account with this many recent failures is checked:
    none for the first login_max_failures, then 1 s doubling with each, at most the setting."""
    beyond = failures - settings.login_max_failures
    if beyond < 0:
        return 0.0
    return float(min(settings.login_delay_max_seconds, 2 ** min(beyond, 32)))


async def _account_failures(
    *, session: AsyncSession, email: str, settings: Settings, now: datetime
) -> int:
    # Counted only as far as the delay still grows: a flood costs no longer a count.
    enough = settings.login_max_failures + math.ceil(
        math.log2(settings.login_delay_max_seconds + 1)
    )
    since = now - timedelta(seconds=settings.login_window_seconds)
    recent = (
        select(LoginFailure.id)
        .where(LoginFailure.email == email, LoginFailure.at > since)
        .limit(enough + 1)
        .subquery()
    )
    count: int = await session.scalar(select(func.count()).select_from(recent)) or 0
    return count


async def _known_address(
    *, session: AsyncSession, user: User | None, client: str, settings: Settings, now: datetime
) -> bool:
    if user is None:
        return False
    since = now - timedelta(days=settings.login_known_address_days)
    found = await session.scalar(
        select(SignInAddress.id).where(
            SignInAddress.user_id == user.id,
            SignInAddress.client == client,
            SignInAddress.signed_in_at > since,
        )
    )
    return found is not None


async def _remember_address(
    *, session: AsyncSession, user: User, client: str, settings: Settings, now: datetime
) -> None:
    await session.execute(
        delete(SignInAddress).where(
            SignInAddress.user_id == user.id,
            SignInAddress.signed_in_at <= now - timedelta(days=settings.login_known_address_days),
        )
    )
    known = await session.scalar(
        select(SignInAddress).where(
            SignInAddress.user_id == user.id, SignInAddress.client == client
        )
    )
    if known is not None:
        known.signed_in_at = now
        return
    try:
        async with session.begin_nested():
            session.add(SignInAddress(user_id=user.id, client=client, signed_in_at=now))
            await session.flush()
    except IntegrityError:
        pass  # a sign-in from the same address at the same moment remembered it


async def _lock_address(*, session: AsyncSession, client: str) -> None:
    # The count and the new row must be one step, or attempts sent at once from one address
    # all pass a count that none of them is in yet. SQLite's transactions take the write lock
    # at their start (bidding.db); PostgreSQL takes this lock until the commit.
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"sign-in {client}"},
        )


async def _record_failure(
    *, session: AsyncSession, email: str, client: str, settings: Settings, now: datetime
) -> None:
    # Failures older than the window count for nothing. Each new failure drops a few, so the
    # table stays near the size of one window's traffic; SKIP LOCKED (PostgreSQL) keeps
    # concurrent failures from waiting on, or deadlocking over, the same stale rows.
    cutoff = now - timedelta(seconds=settings.login_window_seconds)
    stale = (
        select(LoginFailure.id)
        .where(LoginFailure.at <= cutoff)
        .limit(_PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(stale)))
    session.add(LoginFailure(email=email, client=client[:CLIENT_MAX_LENGTH], at=now))
    await session.flush()


async def begin_sign_in(
    *, session: AsyncSession, email: str, client: str, settings: Settings
) -> SignInAttempt:
    """Let a sign-in through the throttle (TooManyRequests if not) and record it as a failure.

    Checked before the password, so a throttled guesser learns nothing, right or wrong. The
    caller commits, so that other instances count the attempt at once, then waits the
    attempt's delay, then calls finish_sign_in.
    """
    email = login_email(email)
    client = client[:CLIENT_MAX_LENGTH]
    now = utcnow()
    await _lock_address(session=session, client=client)
    user = await get_user_by_email(session=session, email=email)
    known = await _known_address(
        session=session, user=user, client=client, settings=settings, now=now
    )
    pair: ColumnElement[bool] = (LoginFailure.email == email) & (LoginFailure.client == client)
    limits = [(pair, settings.login_max_failures)]
    if not known:
        # A known address is held up by its own failures on this account alone: a guesser
        # sharing it (an office's NAT) cannot lock the account's user out by failing elsewhere.
        limits.append((LoginFailure.client == client, settings.login_max_failures_per_address))
    waits = [
        await _retry_after(session=session, where=where, limit=limit, settings=settings, now=now)
        for where, limit in limits
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise TooManyRequests(
            "too many failed sign-ins from this address; try again later", retry_after=wait
        )
    delay = 0.0
    if not known:
        failures = await _account_failures(session=session, email=email, settings=settings, now=now)
        delay = sign_in_delay(failures=failures, settings=settings)
    await _record_failure(session=session, email=email, client=client, settings=settings, now=now)
    return SignInAttempt(email=email, client=client, delay=delay)


async def finish_sign_in(
    *, session: AsyncSession, attempt: SignInAttempt, password: str, settings: Settings
) -> User:
    """The active user of the attempt's email with this password; Unauthorized otherwise.

    A failure leaves the attempt's row and an audit entry in the session: the caller commits
    them although the request fails, or the throttle never sees it.
    """
    email, client = attempt.email, attempt.client
    user = await get_user_by_email(session=session, email=email)
    # verify_password spends the same time on an unknown email as on a wrong password.
    valid = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password
    )
    if user is None or not valid or not user.is_active:
        # The caller shows none of this; the audit trail tells an administrator which it was.
        reason = (
            "unknown_account" if user is None else "wrong_password" if not valid else "inactive"
        )
        await audit.record(
            session=session,
            action="auth.sign_in_failed",
            # What was typed, made valid Unicode: a lone surrogate has no canonical JSON.
            details={
                "email": email.encode("utf-8", "replace").decode("utf-8"),
                "client": client,
                "reason": reason,
            },
            actor=None,
        )
        raise InvalidCredentials(INVALID_CREDENTIALS)

    if needs_rehash(user.password_hash):
        user.password_hash = await anyio.to_thread.run_sync(hash_password, password)
    # A success forgives this address's typos on this account, and this attempt's own row.
    # Failures from other addresses still count against the account: they may be a guesser.
    await session.execute(
        delete(LoginFailure).where(LoginFailure.email == email, LoginFailure.client == client)
    )
    await _remember_address(
        session=session, user=user, client=client, settings=settings, now=utcnow()
    )
    await audit.record(
        session=session, action="auth.signed_in", details={"client": client}, actor=user.actor
    )
    return user


async def authenticate(
    *, session: AsyncSession, email: str, password: str, client: str, settings: Settings
) -> User:
    """begin_sign_in and finish_sign_in in one transaction, without the wait: for callers
    in this process (the demo). The HTTP sign-in commits and waits in between."""
    attempt = await begin_sign_in(session=session, email=email, client=client, settings=settings)
    return await finish_sign_in(
        session=session, attempt=attempt, password=password, settings=settings
    )


# --- tokens --------------------------------------------------------------------------------


async def issue_token(
    *, session: AsyncSession, user: User, ttl_seconds: int, with_csrf: bool
) -> tuple[str, str | None, datetime]:
    """A new access token for the user, with a CSRF token for browser sessions; and its expiry."""
    token = new_token()
    csrf_token = new_token() if with_csrf else None
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(
        AccessToken(
            token_hash=hash_token(token),
            user_id=user.id,
            csrf_token_hash=hash_token(csrf_token) if csrf_token is not None else None,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token, csrf_token, expires_at


async def revoke_token(*, session: AsyncSession, access_token: AccessToken) -> None:
    """End a session: the token is refused from now on."""
    if access_token.revoked_at is None:
        access_token.revoked_at = utcnow()
        await audit.record(
            session=session,
            action="auth.signed_out",
            details={"token_id": str(access_token.id)},
            actor=access_token.user.actor,
        )
