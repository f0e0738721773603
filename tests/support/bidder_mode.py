"""Tenders opened by their bidders, on the scene: bids sealed to each bidder's own key, and
the reveal of a bid's file key."""

import base64
from typing import Any

from bidding.crypto import age
from tests.support.scene import Party, Scene
from tests.tenders.conftest import TENDERS

PRICES = ("1000000.00", "950000.00", "1100000.00")


async def bidder_mode_tender(
    scene: Scene, *, backup: bool
) -> tuple[dict[str, Any], list[age.Identity]]:
    """A bidder-mode tender with three bids, each sealed to its bidder's own key."""
    tender = await scene.tender(
        opening_mode="bidder", backup_decryption=backup, decryption_window_minutes=30
    )
    identities = []
    for price in PRICES:
        own = age.Identity.generate()
        identities.append(own)
        recipients = [own.recipient]
        if backup:
            recipients.append(age.Recipient.parse(tender["opening_recipient"]))
        await scene.bid(tender, {"price": price, "duration_days": 100}, recipients=recipients)
    return tender, identities


async def reveal(scene: Scene, tender: dict[str, Any], party: Party, file_key: bytes) -> Any:
    return await scene.client.post(
        f"{TENDERS}/{tender['id']}/opening/reveal",
        json={"file_key": base64.b64encode(file_key).decode()},
        headers=party.headers,
    )


async def file_key_of(
    scene: Scene, tender: dict[str, Any], party: Party, identity: age.Identity
) -> bytes:
    """What `bidding reveal` does: the bid's header from the platform, the key computed here."""
    answer = await scene.client.get(
        f"{TENDERS}/{tender['id']}/bids/mine/header", headers=party.headers
    )
    assert answer.status_code == 200, answer.text
    header = age.parse_header(base64.b64decode(answer.json()["header"]))
    return header.file_key([identity])
