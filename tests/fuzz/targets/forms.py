"""The opening's reader of a decrypted bid: a JSON form or a ZIP with bid.json."""

from decimal import Decimal

from bidding.crypto.canonical import canonical_json
from bidding.opening import decryption
from bidding.rules import forms
from bidding.rules.money import money_text

# A tender's bid form as the schemas store it, with a field of every kind.
BID_FIELDS: list[dict[str, object]] = [
    {"name": "price", "type": "decimal", "required": True, "min": "1", "max": "9000000"},
    {"name": "duration_days", "type": "integer", "required": True, "min": "1", "max": "3650"},
    {"name": "warranty", "type": "text", "required": False, "min": None, "max": None},
    {"name": "local_supplier", "type": "boolean", "required": False, "min": None, "max": None},
    {"name": "discount", "type": "decimal", "required": False, "min": "0", "max": "100"},
]
CEILING = Decimal("5000000.00")
FLOOR = Decimal("100.00")


def bid_form(data: bytes) -> None:
    """A decrypted bid, JSON or ZIP: FormError, or a form that keeps the tender's rules and
    that the opening can publish."""
    try:
        form = forms.read_bid_form(data, bid_fields=BID_FIELDS, ceiling=CEILING, floor=FLOOR)
    except forms.FormError as exc:
        assert exc.reason in ("form_invalid", "above_ceiling", "below_floor")
        return
    assert FLOOR <= form.price <= CEILING
    assert set(form.fields) <= {str(field["name"]) for field in BID_FIELDS}
    for document in form.documents:
        assert forms._name_problem(document.name) is None
        assert document.name != forms.BID_FORM_NAME
    # What the opening then publishes of the bid, signed: it must encode.
    canonical_json({"price": money_text(form.price), "fields": decryption._json_fields(form)})
