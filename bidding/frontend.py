"""The web pages: the bundle of frontend/, served with a strict Content Security Policy."""

from pathlib import Path

from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

PACKAGE = Path(__file__).resolve().parent
# A wheel carries the bundle in the package (hatch_build.py); a source tree, editable
# installs included, serves what `npm run build` last wrote.
PAGE_DIRECTORIES = (PACKAGE / "pages", PACKAGE.parent / "frontend" / "dist")

# Everything from this origin, nothing inline, no framing: the pages hold no script of their own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Pages(StaticFiles):
    """The built pages, each answer with the pages' own policy (bidding.security adds the
    headers every answer carries)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"referrer-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def pages() -> Pages | None:
    """The pages, if the front end has been built (the wheel, make run and make test build it)."""
    for directory in PAGE_DIRECTORIES:
        if (directory / "index.html").is_file():
            return Pages(directory=directory, html=True)
    return None
