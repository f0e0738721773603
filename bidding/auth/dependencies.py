"""The request's identity: who is calling (bearer token or session cookie) and what they may do."""

import uuid
from collections.abc import Awaitable, Callable
from secrets import compare_digest
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth import mail
from bidding.auth.exceptions import CsrfFailed
from bidding.auth.models import AccessToken, Role, User
from bidding.auth.tokens import hash_token
from bidding.db import Session, utcnow
from bidding.errors import Forbidden, Unauthorized

SESSION_COOKIE = "bidding_session"
# Not HttpOnly: the page reads it and echoes it as the header; another site can do neither.
CSRF_COOKIE = "bidding_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declares the scheme in the OpenAPI document (the docs' Authorize button); it never refuses
# a request, bearer_token below reads the header.
_openapi_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_OpenAPIBearer = Annotated[str | None, Depends(_openapi_scheme)]


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header; Unauthorized if the header is malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


async def find_access_token(*, session: AsyncSession, token: str) -> AccessToken | None:
    """The live access token for this token text: not revoked, not expired, its user active."""
    access = await session.scalar(
        select(AccessToken)
        .join(AccessToken.user)
        .where(
            AccessToken.token_hash == hash_token(token),
            AccessToken.revoked_at.is_(None),
            AccessToken.expires_at > utcnow(),
            User.is_active.is_(True),
        )
    )
    return access


async def optional_access_token(
    request: Request,
    session: Session,
    _declared: _OpenAPIBearer = None,
) -> AccessToken | None:
    """The access token the request authenticates with, or None when it brings none.

    What the request records in the audit trail is then done by the token's user.
    """
    token = bearer_token(request)
    if token is not None:
        access = await find_access_token(session=session, token=token)
        if access is None:
            # A client that sends a token expects to be someone; serving it anonymously
            # would hide an expired session behind a confusing 403 or a partial page.
            raise Unauthorized("the token is invalid, expired or revoked")
        audit.act_as(session, access.user.actor)
        return access
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    access = await find_access_token(session=session, token=cookie)
    if access is None:
        # A stale cookie is ordinary (the browser outlived the session): anonymous it is.
        return None
    if request.method not in _SAFE_METHODS:
        # The browser attaches the cookie to any site's request; only our own page can
        # read the CSRF token from the login answer and echo it in a header.
        sent = request.headers.get(CSRF_HEADER)
        expected = access.csrf_token_hash
        if not sent or expected is None or not compare_digest(hash_token(sent), expected):
            raise CsrfFailed(f"the {CSRF_HEADER} header is missing or wrong")
    audit.act_as(session, access.user.actor)
    return access


async def optional_user(
    request: Request,
    session: Session,
    _declared: _OpenAPIBearer = None,
) -> User | None:
    """The signed-in user, or None for an anonymous request."""
    access = await optional_access_token(request, session)
    return access.user if access is not None else None


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The signed-in user; Unauthorized for an anonymous request."""
    if user is None:
        raise Unauthorized("sign in first")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def require_roles(*roles: Role) -> Callable[..., Awaitable[User]]:
    """A dependency that returns the signed-in user if they hold one of the roles."""
    if not roles:
        raise ValueError("name at least one role")
    needed = " or ".join(role.value for role in roles)

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"this needs the role {needed}", roles=list(roles))
        return user

    return dependency


Officer = Annotated[User, Depends(require_roles(Role.officer))]
Admin = Annotated[User, Depends(require_roles(Role.admin))]
Supervisor = Annotated[User, Depends(require_roles(Role.supervisor))]
Bidder = Annotated[User, Depends(require_roles(Role.bidder))]


# --- what the platform runs besides the requests -------------------------------------------


def outbox(request: Request) -> mail.Deliverer | None:
    """Dependency: the deliverer of the outbox's messages, if this platform sends any."""
    deliverer: mail.Deliverer | None = getattr(request.app.state, "outbox", None)
    return deliverer


Outbox = Annotated[mail.Deliverer | None, Depends(outbox)]


class SessionWatchers(Protocol):
    """Whoever keeps connections open on a session (the live rooms): told when one ends."""

    def end_session(self, token_id: uuid.UUID) -> None:
        """Close what the session opened: it was signed out."""


def live_sessions(connection: HTTPConnection) -> SessionWatchers | None:
    """Dependency: the live rooms of this instance, when it runs them."""
    watchers: SessionWatchers | None = getattr(connection.app.state, "hub", None)
    return watchers


LiveSessions = Annotated[SessionWatchers | None, Depends(live_sessions)]
