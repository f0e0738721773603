"""The tender's secrets, unwrapped from the master key's custody for its opening only: the
opening identity that decrypts the bids, and the committed seed of the benchmark coefficient."""

from bidding.crypto import age, custody
from bidding.crypto.custody import MasterKey
from bidding.tenders.models import Tender
from bidding.tenders.service import COEFFICIENT_SEED_PURPOSE, OPENING_IDENTITY_PURPOSE


def opening_identity(*, master: MasterKey, tender: Tender) -> age.Identity:
    """The tender's age identity, unwrapped: only the opening may call this."""
    if tender.opening_identity_wrapped is None:
        raise ValueError("the tender has not been published")
    raw = custody.unwrap(
        master,
        tender.opening_identity_wrapped,
        tender_id=str(tender.id),
        purpose=OPENING_IDENTITY_PURPOSE,
    )
    return age.Identity(raw)


def coefficient_seed(*, master: MasterKey, tender: Tender) -> bytes:
    """The tender's committed coefficient seed, unwrapped: revealed at the opening only."""
    if tender.coefficient_seed_wrapped is None:
        raise ValueError("the tender has not been published")
    return custody.unwrap(
        master,
        tender.coefficient_seed_wrapped,
        tender_id=str(tender.id),
        purpose=COEFFICIENT_SEED_PURPOSE,
    )
