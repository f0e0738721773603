"""The live room's origin check, shared with the sign-in's (bidding.security.own_origin),
given an Origin that is no URL: the cookie is ignored, as from any other site, and nothing
fails."""

from datetime import timedelta

from tests.support.live import PRICES, form, refused, stored_token
from tests.support.scene import LiveServer, Scene


class TestHostileOrigin:
    async def test_an_origin_that_is_no_url_is_another_sites(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()
        bidder = await scene.bidder()
        await scene.bid(tender, form(PRICES[0]), party=bidder)
        token = await stored_token(scene, bidder.user, expires_in=timedelta(hours=1))
        cookie = {"Cookie": f"bidding_session={token}"}
        for origin in ("http://[::1", "http://[", "null"):
            answer = await refused(
                live_server.room(tender),
                '{"type": "ping"}',
                additional_headers=cookie,
                origin=origin,
            )
            assert answer == (4401, "the first message must be the auth message"), origin
