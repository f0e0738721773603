"""Login CSRF in a real browser: a page of another origin auto-submits a form with the
attacker's credentials to the sign-in; the victim's browser must not end up signed in."""

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.conftest import PASSWORD, Platform, sign_in


def attacker_page(platform: Platform, email: str) -> bytes:
    """A page that posts the attacker's credentials to the platform as soon as it loads."""
    action = html.escape(f"{platform.url}/api/v1/auth/token")
    fields = {"username": email, "password": PASSWORD, "session": "cookie"}
    inputs = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    return (
        "<!doctype html><title>Win a prize</title>"
        f'<form id="f" method="post" action="{action}">{inputs}</form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()


@pytest.fixture
def other_origin(platform: Platform) -> Iterator[tuple[ThreadingHTTPServer, list[bytes]]]:
    """A web server on another 127.0.0.1 port, serving whatever page the test puts first."""
    pages: list[bytes] = [b""]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class TestLoginCsrf:
    # 127.0.0.1 on another port is the same site but another origin; localhost is another site.
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    def test_a_form_posted_by_another_origin_leaves_the_victim_signed_out(
        self,
        new_page,
        platform: Platform,
        other_origin: tuple[ThreadingHTTPServer, list[bytes]],
        host: str,
    ) -> None:
        server, pages = other_origin
        attacker = f"csrf-attacker-{host.replace('.', '-')}"
        platform.add_account(attacker, "bidder", f"Attacker {host} Ltd")
        pages[0] = attacker_page(platform, platform.accounts[attacker])

        victim = new_page()
        with victim.expect_response(lambda r: r.url.endswith("/api/v1/auth/token")) as posted:
            victim.goto(f"http://{host}:{server.server_address[1]}/")
        answer = posted.value
        assert answer.status == 403
        assert answer.json()["type"] == "cross_site_request"
        cookies = {c["name"] for c in victim.context.cookies(platform.url)}
        assert "bidding_session" not in cookies and "bidding_csrf" not in cookies
        me = victim.context.request.get(f"{platform.url}/api/v1/me")
        assert me.status == 401

        # The platform's own sign-in page, in the same browser, still signs in (any account).
        sign_in(victim, platform.accounts[attacker])
        assert "bidding_session" in {c["name"] for c in victim.context.cookies(platform.url)}
