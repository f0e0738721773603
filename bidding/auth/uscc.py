"""The unified social credit code (统一社会信用代码) of GB 32100-2015, check character included."""

# The code's alphabet: digits and upper-case letters without I, O, S, V and Z.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(first17) != 17 or any(c not in _VALUES for c in first17):
        raise ValueError("17 characters from the code alphabet are needed")
    total = sum(_VALUES[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate(code: str) -> str:
    """The code, upper-cased, if valid; ValueError naming what is wrong otherwise."""
    code = code.strip().upper()
    if len(code) != 18:
        raise ValueError(f"a unified social credit code has 18 characters, not {len(code)}")
    bad = sorted({c for c in code if c not in _VALUES})
    if bad:
        raise ValueError(f"invalid characters {''.join(bad)!r} (I, O, S, V and Z are never used)")
    if check_character(code[:17]) != code[17]:
        raise ValueError("check character does not match: the code is mistyped")
    return code
