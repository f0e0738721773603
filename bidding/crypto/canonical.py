"""Canonical JSON (RFC 8785 style): the one byte encoding of everything signed or hashed."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

# Beyond this a JavaScript verifier would silently round the number (RFC 8785 §3.2.2.3).
MAX_SAFE_INTEGER: Final = 2**53 - 1

_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\u{code:04x}" for code in range(0x20)},
    ord("\b"): "\\b",
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\f"): "\\f",
    ord("\r"): "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def canonical_json(value: object) -> bytes:
    """Return the canonical UTF-8 JSON bytes of a JSON-like value built without floats."""
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must not contain lone surrogates (not valid Unicode)") from None


def _utf16_order(item: tuple[str, object]) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the code units RFC 8785 §3.2.3 sorts by;
    # surrogatepass defers the lone-surrogate error to the final UTF-8 encoding.
    return item[0].encode("utf-16-be", "surrogatepass")


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, str):
        out.append('"' + value.translate(_ESCAPES) + '"')
    elif isinstance(value, int):
        number = int(value)
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            raise ValueError(
                f"integer {number} is outside ±(2**53-1), which JSON readers cannot hold "
                "exactly; send it as a string"
            )
        out.append(str(number))
    elif isinstance(value, float | Decimal):
        raise TypeError(
            f"{type(value).__name__} {value!r} is not allowed in canonical JSON: "
            'decimals travel as strings, e.g. "1234567.89"'
        )
    elif isinstance(value, Mapping):
        items: list[tuple[str, object]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__} {key!r}")
            items.append((key, item))
        items.sort(key=_utf16_order)
        out.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                out.append(",")
            _encode(key, out)
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not allowed in canonical JSON")
