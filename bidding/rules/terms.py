"""A tender's terms for the opening: its bid form, its price range and its scoring method."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from bidding.rules import forms
from bidding.rules.money import money_text
from bidding.rules.scoring import Method, parse_method


def price_range_problem(ceiling: Decimal, floor: Decimal | None) -> str | None:
    """Why a floor does not fit under a ceiling, or None when it does."""
    if floor is not None and floor > ceiling:
        return f"must not be above the ceiling price {money_text(ceiling)}"
    return None


@dataclass(frozen=True, slots=True)
class Terms:
    """What the opening holds a bid to: the tender's bid form, price range and scoring."""

    bid_fields: Sequence[Mapping[str, object]]
    ceiling: Decimal
    floor: Decimal | None
    scoring: Mapping[str, object]

    @classmethod
    def of(
        cls,
        *,
        bid_fields: Sequence[Mapping[str, object]],
        ceiling_price: object,
        floor_price: object,
        scoring: Mapping[str, object],
    ) -> "Terms":
        """The terms of a tender as stored or sent: prices as decimal text, the rest as JSON.

        ArithmeticError if a price is not a decimal.
        """
        return cls(
            bid_fields=bid_fields,
            ceiling=Decimal(str(ceiling_price)),
            floor=None if floor_price is None else Decimal(str(floor_price)),
            scoring=scoring,
        )

    @property
    def method(self) -> Method:
        """The typed scoring method; ValueError if the stored config is malformed."""
        return parse_method(self.scoring)

    def read_bid(self, plaintext: BinaryIO | bytes) -> forms.BidForm:
        """Check a decrypted bid against these terms; forms.FormError if it is refused."""
        return forms.read_bid_form(
            plaintext, bid_fields=self.bid_fields, ceiling=self.ceiling, floor=self.floor
        )
