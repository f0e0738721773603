"""Accounts over HTTP: register and activate, sign in and out, who am I, a bidder's own key,
the outbox of messages (administrators)."""

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from bidding import security
from bidding.auth import bidder_keys
from bidding.auth import service as auth_service
from bidding.auth.dependencies import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Admin,
    Bidder,
    CurrentUser,
    LiveSessions,
    Outbox,
    optional_access_token,
)
from bidding.auth.exceptions import RegistrationUnavailable
from bidding.auth.models import AccessToken, OutboxMessage, User
from bidding.auth.schemas import (
    Activation,
    BidderKeyRead,
    BidderKeys,
    KeyChallenge,
    KeyChallengeAnswer,
    KeyRegistration,
    OutboxMessageRead,
    Registration,
    RegistrationAccepted,
    TokenRead,
    UserRead,
)
from bidding.db import Session
from bidding.errors import Unauthorized
from bidding.settings import AppSettings, Settings

router = APIRouter(tags=["auth"])

DbSession = Session


def registration_open(settings: AppSettings) -> None:
    """Dependency: refuse registration on a production platform that cannot send mail."""
    if not settings.registration_open:
        raise RegistrationUnavailable(
            "self-registration is closed on this platform (it sends no email); ask the "
            "platform's administrator for an account"
        )


def _site(request: Request, settings: Settings) -> str:
    # Without a public address only the log sees the links (the settings require one with
    # SMTP): the address this request came to is then good enough.
    return settings.public_url or str(request.base_url).rstrip("/")


@router.post(
    "/auth/register",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(registration_open), Depends(security.limit_registration)],
    responses={
        429: {"description": "too many registrations from this address"},
        503: {"description": "registration is closed: the platform sends no email"},
    },
)
async def register(
    body: Registration,
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: AppSettings,
    outbox: Outbox,
) -> RegistrationAccepted:
    """Sign up as a bidder with its organization. The answer is always the same; what came
    of it goes by message to the email address: a one-time link (valid for
    BIDDING_ACTIVATION_TTL_SECONDS) that activates the new account with its password, or why
    nothing was created (the address or the organization is already registered, or the name
    looks the same as a registered organization's)."""
    await auth_service.register(
        session=session,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        organization_name=body.organization.name,
        organization_code=body.organization.code,
        site=_site(request, settings),
        activation_ttl=timedelta(seconds=settings.activation_ttl_seconds),
    )
    if outbox is not None:
        # After the answer, so after the commit: the message is there to be delivered.
        background.add_task(outbox.wake)
    return RegistrationAccepted()


@router.post(
    "/auth/activate",
    # Each try spends an Argon2 hash, and a wrong password is a guess: counted as a sign-in.
    dependencies=[Depends(security.limit_sign_in)],
    responses={
        404: {"description": "the link is unknown, already used or expired"},
        401: {"description": "not the password chosen at registration"},
        429: {"description": "too many tries from this address"},
    },
)
async def activate(body: Activation, session: DbSession) -> UserRead:
    """Activate a registered account with the token of the link mailed to it and the
    password chosen at registration; then sign in as usual."""
    user = await auth_service.activate(session=session, token=body.token, password=body.password)
    return UserRead.model_validate(user)


@router.get("/outbox", responses={403: {"description": "not an administrator"}})
async def read_outbox(
    admin: Admin,
    session: DbSession,
    to: Annotated[str | None, Query(max_length=320, description="only to this address")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[OutboxMessageRead]:
    """The latest messages of the outbox, newest first (administrators). In development
    without SMTP the messages are not sent, only written to the log: their text is here."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if to is not None:
        query = query.where(OutboxMessage.to_address == auth_service.login_email(to))
    messages = (await session.scalars(query)).all()
    return [OutboxMessageRead.model_validate(message) for message in messages]


@router.post(
    "/auth/token",
    response_model_exclude_none=True,
    # Before anything else: a flood of sign-ins must not spend an Argon2 hash each, and
    # another site's page must not spend the limit of the address its visitor shares.
    dependencies=[Depends(security.refuse_other_sites), Depends(security.limit_sign_in)],
    responses={
        401: {"description": "invalid email or password"},
        403: {"description": "sent by another site's page (cross_site_request)"},
        429: {"description": "too many sign-ins or failures from this address"},
    },
)
async def sign_in(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: DbSession,
    settings: AppSettings,
    limits: security.Limits,
    session_kind: Annotated[
        Literal["bearer", "cookie"],
        Form(
            alias="session",
            description="`cookie` for a browser: the token also comes as an HttpOnly cookie",
        ),
    ] = "bearer",
) -> TokenRead:
    """Sign in with the OAuth2 password form (username = email) and get a bearer token.

    With the extra form field `session=cookie` (a browser sign-in) the token is also set as the
    HttpOnly cookie `bidding_session`, and the answer carries a `csrf_token` (also readable by
    the page in the cookie `bidding_csrf`): every request other than GET, HEAD and OPTIONS that
    relies on the cookie must send it back in the `X-CSRF-Token` header. A cookie sign-in must
    come from the platform's own page (its `Origin`, or `Sec-Fetch-Site: same-origin`), and no
    sign-in may come from a page of another site that is not in BIDDING_CORS_ORIGINS: 403
    `cross_site_request`.

    Failures are throttled per address (429 with Retry-After); failures on the account from
    elsewhere may make the answer wait up to `BIDDING_LOGIN_DELAY_MAX_SECONDS`.
    """
    with_cookie = session_kind == "cookie"
    if with_cookie:
        # Another site's page could post its own credentials here and leave the victim's
        # browser in the attacker's session (login CSRF: the bid sealed next would be theirs).
        security.refuse_cross_site(request, settings, cookie=True)
    client = security.client_address(request)
    attempt = await auth_service.begin_sign_in(
        session=session, email=form.username, client=client, settings=settings
    )
    # Committed before the wait: other instances count the attempt at once, and no connection
    # of the pool (nor SQLite's write lock) is held while it waits.
    await session.commit()
    if attempt.delay > 0:
        await limits.pause(attempt.delay)
    try:
        user = await auth_service.finish_sign_in(
            session=session, attempt=attempt, password=form.password, settings=settings
        )
    except Unauthorized:
        # The failure just recorded must outlive this failing request, or nothing is throttled.
        await session.commit()
        raise
    token, csrf_token, _ = await auth_service.issue_token(
        session=session, user=user, ttl_seconds=settings.token_ttl_seconds, with_csrf=with_cookie
    )
    # A token is for this client alone: no cache along the way keeps the answer.
    response.headers["Cache-Control"] = "no-store"
    if with_cookie:
        assert csrf_token is not None
        secure = security.secure_cookies(request, settings)
        _set_cookie(response, SESSION_COOKIE, token, settings=settings, secure=secure)
        _set_cookie(response, CSRF_COOKIE, csrf_token, settings=settings, secure=secure)
    return TokenRead(
        access_token=token, expires_in=settings.token_ttl_seconds, csrf_token=csrf_token
    )


def _set_cookie(
    response: Response, name: str, value: str, *, settings: Settings, secure: bool
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=settings.token_ttl_seconds,
        path="/",
        secure=secure,
        # The page reads the CSRF token from its cookie; the session stays out of its reach.
        httponly=name == SESSION_COOKIE,
        samesite="lax",
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    background: BackgroundTasks,
    live_sessions: LiveSessions,
    access_token: Annotated[AccessToken | None, Depends(optional_access_token)],
) -> None:
    """Revoke the token of this request and clear the browser's cookies; safe to repeat.

    The live-room connections the token opened close (4401): at once on this instance,
    within BIDDING_SESSION_CHECK_SECONDS on the others."""
    if access_token is not None:
        await auth_service.revoke_token(session=session, access_token=access_token)
        if live_sessions is not None:
            # After the commit, so that a connection closed for it finds the token revoked.
            background.add_task(live_sessions.end_session, access_token.id)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", secure=security.secure_cookies(request, settings),
            httponly=name == SESSION_COOKIE, samesite="lax",
        )  # fmt: skip


@router.get("/me")
async def me(user: CurrentUser) -> UserRead:
    """The signed-in account and its organization."""
    return UserRead.model_validate(user)


# --- the bidder's own key ------------------------------------------------------------------

_KEYS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in"},
    403: {"description": "not a bidder of an organization"},
}


async def _keys_body(session: DbSession, bidder: User) -> BidderKeys:
    keys = await bidder_keys.keys_of(session=session, bidder=bidder)
    current = next((key for key in keys if key.retired_at is None), None)
    return BidderKeys(
        current=None if current is None else BidderKeyRead.model_validate(current),
        history=[BidderKeyRead.model_validate(key) for key in keys if key is not current],
    )


@router.get("/me/keys", responses=_KEYS)
async def my_keys(bidder: Bidder, session: DbSession) -> BidderKeys:
    """The organization's recipient for bids it opens itself, and the ones it had before."""
    return await _keys_body(session, bidder)


@router.put("/me/keys", responses=_KEYS | {422: {"description": "not an X25519 age recipient"}})
async def register_key(body: KeyRegistration, bidder: Bidder, session: DbSession) -> BidderKeys:
    """Register the organization's age recipient (make it with `bidding keygen`); the one
    before is retired and kept in the history. The identity never leaves the bidder."""
    await bidder_keys.register(session=session, bidder=bidder, recipient=body.recipient)
    return await _keys_body(session, bidder)


@router.post("/me/keys/challenge", responses=_KEYS | {409: {"description": "no key registered"}})
async def key_challenge(bidder: Bidder, session: DbSession) -> KeyChallenge:
    """A random value sealed to the registered recipient: unseal it and answer, days before an
    opening, to prove the identity is at hand (`bidding check-key` does both)."""
    challenge, expires_at = await bidder_keys.challenge(session=session, bidder=bidder)
    return KeyChallenge(challenge=challenge, expires_at=expires_at)


@router.post(
    "/me/keys/challenge/answer",
    responses=_KEYS
    | {
        409: {"description": "no challenge asked, or it expired"},
        422: {"description": "not the sealed value"},
    },
)
async def answer_key_challenge(
    body: KeyChallengeAnswer, bidder: Bidder, session: DbSession
) -> BidderKeys:
    """The challenge's plaintext: the key in use is then marked verified."""
    await bidder_keys.answer(session=session, bidder=bidder, plaintext=body.answer)
    return await _keys_body(session, bidder)
