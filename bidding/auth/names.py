"""Display and organization names: what may be stored, and when two names look the same.

A bidder's organization name is read by the whole hall at an opening, so a name must show
what it says: no invisible characters, nothing that turns the text around, one form for what
Unicode spells in several ways (NFKC). Two organization names that a person cannot tell apart
have the same key, and the key is unique in the database (docs/security.md).
"""

import unicodedata
from functools import cache

import icu  # type: ignore[import-untyped]

# Characters that show nothing or change the direction of what follows: bidi controls
# (U+061C, U+200E/F, U+202A-E, U+2066-9), zero-width ones (U+200B-D, U+2060, U+FEFF) and the
# rest of Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), which renderers
# draw as nothing: Hangul fillers, variation selectors, tags, the soft hyphen.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),  # BRAILLE PATTERN BLANK: a symbol, but a blank one
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_BIDI = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})
_ZERO_WIDTH = frozenset({0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF})
# Control, format, surrogate, private-use and unassigned characters, and line or paragraph
# separators: none belongs in a name shown on one line.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def _problem(character: str) -> str | None:
    """Why this character may not be in a name, or None if it may."""
    point = ord(character)
    if point in _BIDI:
        return "a bidirectional control"
    if point in _ZERO_WIDTH:
        return "a zero-width character"
    category = unicodedata.category(character)
    if category in _REFUSED_CATEGORIES:
        return _REFUSED_CATEGORIES[category]
    if any(low <= point <= high for low, high in _INVISIBLE_RANGES):
        return "an invisible character"
    return None


def clean_name(value: str, *, max_length: int) -> str:
    """The stored form of a display or organization name: NFKC, inner whitespace collapsed,
    not empty, not too long; ValueError naming the first refused character otherwise."""
    # Checked before and after NFKC: a character refused in one form is refused in both.
    for form in (value, unicodedata.normalize("NFKC", value)):
        for position, character in enumerate(form, start=1):
            problem = _problem(character)
            if problem is not None:
                raise ValueError(
                    f"must not hold {problem} (U+{ord(character):04X} at position {position})"
                )
    cleaned = " ".join(unicodedata.normalize("NFKC", value).split())
    if not cleaned:
        raise ValueError("must not be empty")
    if len(cleaned) > max_length:
        raise ValueError(f"use at most {max_length} characters")
    return cleaned


@cache
def _spoof_checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


def _skeleton(text: str) -> str:
    # UTS #39 section 4: NFD, each character replaced by its prototype in confusables.txt, NFD.
    skeleton: str = _spoof_checker().getSkeleton(0, text)
    return skeleton


# What is left out of a key: spaces, and punctuation of every script (（）、，. - and the like).
_IGNORED_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})


def name_key(name: str) -> str:
    """The key of an organization name: equal for names that look the same.

    NFKC (full-width and half-width, compatibility forms), case folding, the UTS #39 skeleton
    (0 and O, Cyrillic а and Latin a), case folding again (the skeleton maps 0 to a capital O),
    and no whitespace or punctuation, so that "Co., Ltd" and "Co Ltd" are one name.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    # Until nothing changes: folding a prototype's case may give a character with another one.
    for _ in range(4):
        folded = unicodedata.normalize("NFC", _skeleton(text)).casefold()
        if folded == text:
            break
        text = folded
    return "".join(c for c in text if unicodedata.category(c) not in _IGNORED_CATEGORIES)


def confusables_version() -> str:
    """The Unicode version of the confusables data the keys are made with (ICU's)."""
    return str(icu.UNICODE_VERSION)
