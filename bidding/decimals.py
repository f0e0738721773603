"""Decimal text as the platform reads it: plain positional notation in a JSON string.

No floats, exponents or infinities, so that the text a client sends, seals or signs is
exactly the number it means. One rule for the tender API and the opening's bid forms.
"""

import re
from decimal import Decimal

DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
MAX_DECIMAL_CHARS = 40
CENT = Decimal("0.01")


def is_decimal_text(value: str) -> bool:
    """Whether the text is a plainly written decimal of bounded length."""
    return len(value) <= MAX_DECIMAL_CHARS and DECIMAL_TEXT.fullmatch(value) is not None
