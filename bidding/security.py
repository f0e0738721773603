"""Hardening at the edge: security headers, body limits, rate limits, the client's address.

Everything here is plain ASGI or a small FastAPI dependency, wired by create_app().
"""

import asyncio
import base64
import hashlib
import ipaddress
import math
import re
from collections.abc import Collection, Hashable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bidding.errors import BodyRefused, Forbidden, TooManyRequests, error_body
from bidding.ratelimit import RateLimiter, RateLimits
from bidding.settings import AppSettings, Settings

# What an answer of the API may do in a browser: nothing. A page sets its own policy.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
# Every answer's headers, unless it sets its own (a page's policy and referrer policy).
HEADERS = {
    "content-security-policy": API_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}
# The API documentation pages (Swagger UI, ReDoc) load their code, styles and fonts from the
# CDNs FastAPI names; their one inline script each is allowed by its hash (see _docs_policy).
_DOCS_SOURCES = {
    "script-src": "https://cdn.jsdelivr.net",
    # Swagger UI and ReDoc style their own elements from script.
    "style-src": "https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'",
    "font-src": "https://fonts.gstatic.com",
    "img-src": "'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
    "worker-src": "blob:",
    "connect-src": "'self'",
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


def _docs_policy(html: bytes) -> str:
    """The docs pages' policy, allowing exactly the inline scripts of this page."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    sources = dict(_DOCS_SOURCES)
    sources["script-src"] = " ".join([sources["script-src"], *hashes])
    directives = ["default-src 'none'", *(f"{name} {value}" for name, value in sources.items())]
    directives += ["frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]
    return "; ".join(directives)


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SecurityHeaders:
    """Adds the security headers to every HTTP answer: a policy that forbids everything
    unless the answer brings its own (the pages, documents), nosniff, no referrer, no
    framing, an opener policy, and HSTS over HTTPS (or always, in production)."""

    def __init__(self, app: ASGIApp, *, always_hsts: bool, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.always_hsts = always_hsts
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The scheme is https behind a trusted proxy that says so (uvicorn's proxy headers).
        hsts = self.always_hsts or scope.get("scheme") == "https"

        def secured(message: Message, policy: str = API_POLICY) -> Message:
            headers = MutableHeaders(raw=list(message.get("headers", [])))
            for name, value in (HEADERS | {"content-security-policy": policy}).items():
                headers.setdefault(name, value)
            if hsts:
                headers.setdefault("strict-transport-security", HSTS)
            return {**message, "headers": headers.raw}

        if _route_path(scope) not in self.docs_paths:

            async def send_secured(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = secured(message)
                await send(message)

            await self.app(scope, receive, send_secured)
            return

        # A docs page is small: held until complete, so its policy can name its scripts.
        held: list[Message] = []

        async def send_docs(message: Message) -> None:
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                html = b"".join(m.get("body", b"") for m in held[1:])
                await send(secured(held[0], _docs_policy(html)))
                await send({"type": "http.response.body", "body": html})

        await self.app(scope, receive, send_docs)


# --- request bodies ------------------------------------------------------------------------


class BodyTooLarge(BodyRefused):
    """413: more body than the limit, declared or sent."""

    status_code = 413
    type = "payload_too_large"


class BadLength(BodyRefused):
    """400: a Content-Length that is not one non-negative integer."""

    type = "bad_length"


class BodyStalled(BodyRefused):
    """400: the body stopped coming."""

    type = "body_stalled"


_BODY_LIMIT = "bidding.body_limit"


class BodyLimit:
    """Refuses a request body larger than the limit while it is read, whatever its
    Content-Length says (413), and a Content-Length that is not a number (400).

    Endpoints that stream a large body to disk with a limit of their own lift this one
    (lift_body_limit) before they read. A body that stops coming for `idle_seconds` is
    refused (400): its request would otherwise wait for it for ever.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, idle_seconds: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = [name.lower() for name, _ in scope.get("headers", [])]
        if b"content-length" in names and b"transfer-encoding" in names:
            # Two framings of one body, the mark of request smuggling: refused, and the
            # connection closed (RFC 9112 6.1), where the HTTP server read it as chunks and
            # would have kept the connection for the next request.
            refusal = JSONResponse(
                error_body("bad_length", "send Content-Length or Transfer-Encoding, not both"),
                status_code=400,
                headers={"Connection": "close"},
            )
            await refusal(scope, receive, send)
            return
        scope[_BODY_LIMIT] = self.max_bytes
        received = 0
        checked = False
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, checked, complete
            limit: int | None = scope[_BODY_LIMIT]
            if limit is None:
                return await receive()
            if not checked:
                checked = True
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    raise _too_large(limit)
            if complete:
                return await receive()  # waiting for the client to leave: no body, no limit
            try:
                async with asyncio.timeout(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyStalled(
                    f"the body stopped coming: nothing arrived for {self.idle_seconds:g} s"
                ) from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the body may be at most {limit} bytes", limit=limit)


def _declared_length(scope: Scope) -> int | None:
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
    if not values:
        return None
    text = values[0].decode("latin-1").strip()
    if len(values) > 1 or not (text.isascii() and text.isdigit()):
        raise BadLength("Content-Length must be one non-negative integer")
    return int(text)


def lift_body_limit(request: Request) -> None:
    """For an endpoint that enforces its own limit while it streams the body."""
    request.scope[_BODY_LIMIT] = None


# --- who is asking, and how often ----------------------------------------------------------


def client_address(request: Request) -> str:
    """The client's address as rate limits count it: IPv4 as is, IPv6 by its /64, since one
    subscriber commonly holds a whole /64. Behind a proxy, uvicorn's proxy headers give the
    real client (see `bidding serve --forwarded-allow-ips`)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def rate_limits(connection: HTTPConnection) -> RateLimits:
    """Dependency: the platform's rate limiters."""
    limits: RateLimits = connection.app.state.rate_limits
    return limits


Limits = Annotated[RateLimits, Depends(rate_limits)]


def _spend(limiter: RateLimiter, key: Hashable, what: str) -> None:
    wait = limiter.take(key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(f"too many {what}; try again in {seconds} s", retry_after=seconds)


async def limit_sign_in(request: Request, limits: Limits) -> None:
    """Dependency: a sign-in attempt, counted per client address."""
    _spend(limits.sign_in, client_address(request), "sign-ins from this address")


async def limit_registration(request: Request, limits: Limits) -> None:
    """Dependency: a registration, counted per client address."""
    _spend(limits.registration, client_address(request), "registrations from this address")


def limit_submission(limits: RateLimits, *, uploader: Hashable, tender_id: Hashable) -> None:
    """A bid upload, counted per uploader (the bidding organization, or the bidder) and tender."""
    _spend(limits.submission, (uploader, tender_id), "uploads for this tender")


# --- who may start a browser session ------------------------------------------------------


class CrossSiteRequest(Forbidden):
    """403: a sign-in that another site's page made the browser send."""

    type = "cross_site_request"


def own_origin(origin: str, *, host: str | None, listed: Collection[str] = ()) -> bool:
    """Whether an Origin header names this app (the host the request was sent to) or one of
    the listed origins. "null" (a sandboxed or data: page) names neither."""
    if origin in listed:
        return True
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:  # "http://[" and the like: no origin of anyone
        return False
    return bool(netloc) and host is not None and netloc == host.lower()


def refuse_cross_site(request: Request, settings: Settings, *, cookie: bool) -> None:
    """Forbidden for a sign-in that another site's page made the browser send.

    A cookie sign-in (login CSRF: the victim's browser left in the attacker's session) must
    come from the app's own page: `Sec-Fetch-Site: cross-site` is refused, and `Origin` must
    be the app's own or one of BIDDING_CORS_ORIGINS, so a same-site page (a sibling
    subdomain) counts only if listed. Without Origin only `Sec-Fetch-Site` same-origin or none
    passes: browsers that send neither header do send Origin on a POST, so a request with
    neither is no page's. A bearer sign-in (the command line, no header of either kind) is
    refused only when a page of a site that is not listed sent it: that page could otherwise
    spend the throttle of the victim's own address on the victim's account.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host")
        allowed = own_origin(origin, host=host, listed=settings.cors_origins)
        if cookie and fetch_site == "cross-site":
            allowed = False
    elif cookie:
        allowed = fetch_site in ("same-origin", "none")
    else:
        allowed = fetch_site != "cross-site"
    if not allowed:
        raise CrossSiteRequest(
            "a sign-in must come from the platform's own pages "
            "(Origin or Sec-Fetch-Site says another site's)"
        )


async def refuse_other_sites(request: Request, settings: AppSettings) -> None:
    """Dependency: a sign-in sent by another site's page, refused before it counts for anything
    (the address's rate limit included); the cookie sign-in's stricter rules come after."""
    refuse_cross_site(request, settings, cookie=False)


def secure_cookies(request: Request, settings: Settings) -> bool:
    """Whether cookies are Secure: as set (true in production), and always over HTTPS,
    including HTTPS that a trusted proxy reports."""
    return settings.secure_cookies or request.url.scheme == "https"
