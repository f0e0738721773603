"""Decimal text as the platform reads and writes it: plain positional notation in a JSON string.

No floats, exponents or infinities, so that the text a client sends, seals or signs is
exactly the number it means. One rule for the tender API, the opening's bid forms and records.
"""

import re
from decimal import Context, Decimal
from typing import Final

DECIMAL_TEXT: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?")
MAX_DECIMAL_CHARS: Final = 40
CENT: Final = Decimal("0.01")
# Wide enough that quantizing any decimal of MAX_DECIMAL_CHARS digits is exact.
_EXACT: Final = Context(prec=MAX_DECIMAL_CHARS + 10)


def is_decimal_text(value: str) -> bool:
    """Whether the text is a plainly written decimal of bounded length."""
    return len(value) <= MAX_DECIMAL_CHARS and DECIMAL_TEXT.fullmatch(value) is not None


def is_whole_cents(value: Decimal) -> bool:
    """Whether an amount has at most two decimal places."""
    return value == value.quantize(CENT, context=_EXACT)


def plain_decimal_text(value: Decimal) -> str:
    """The canonical text of a decimal: positional, no trailing zeros, no negative zero."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money_text(value: Decimal) -> str:
    """The canonical text of an amount, as stored and sent: exactly two decimal places."""
    return f"{value.quantize(CENT):f}"
