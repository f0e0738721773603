"""Canonical JSON: one byte string per value, as RFC 8785 spells it, and no floats."""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidding.crypto.canonical import MAX_SAFE_INTEGER, canonical_json

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


def utf16_units(text: str) -> list[int]:
    """The UTF-16 code units of text, computed by hand from the code points."""
    units: list[int] = []
    for char in text:
        point = ord(char)
        if point > 0xFFFF:
            point -= 0x10000
            units += [0xD800 + (point >> 10), 0xDC00 + (point & 0x3FF)]
        else:
            units.append(point)
    return units


class TestKnownOutputs:
    def test_rfc8785_sorting_example(self) -> None:
        # RFC 8785 §3.2.3: the emoji sorts before U+FB33 by UTF-16 code units.
        value = {
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\U0001f600": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        }
        expected = (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        )
        assert canonical_json(value) == expected.encode("utf-8")

    def test_astral_key_order_differs_from_code_point_order(self) -> None:
        assert canonical_json({"\U0001f600": 1, "\uff01": 2}) == '{"😀":1,"！":2}'.encode()

    def test_rfc8785_string_example(self) -> None:
        # RFC 8785 §3.2.2: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
        value = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
        assert canonical_json(value) == '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()

    def test_receipt_body_bytes(self) -> None:
        body = {
            "version": 2,
            "tender_id": "T-2026-001",
            "kind": "bid",
            "size": 1024,
            "price": "1234567.89",
            "withdrawn": False,
            "note": None,
            "tags": ("a", ["b"]),
            "nested": {"b": [], "a": {}},
        }
        assert canonical_json(body) == (
            b'{"kind":"bid","nested":{"a":{},"b":[]},"note":null,"price":"1234567.89",'
            b'"size":1024,"tags":["a",["b"]],"tender_id":"T-2026-001","version":2,'
            b'"withdrawn":false}'
        )

    def test_non_ascii_is_raw_utf8(self) -> None:
        assert canonical_json({"名称": "招标"}) == '{"名称":"招标"}'.encode()

    @pytest.mark.parametrize(
        ("char", "escaped"),
        [
            ("\b", "\\b"),
            ("\t", "\\t"),
            ("\n", "\\n"),
            ("\f", "\\f"),
            ("\r", "\\r"),
            ('"', '\\"'),
            ("\\", "\\\\"),
            ("\x00", "\\u0000"),
            ("\x1f", "\\u001f"),
            ("\x0b", "\\u000b"),
            ("\x7f", "\x7f"),
            ("/", "/"),
            ("\u2028", "\u2028"),
            ("<", "<"),
        ],
    )
    def test_escaping(self, char: str, escaped: str) -> None:
        assert canonical_json(char) == f'"{escaped}"'.encode()

    def test_integer_limits(self) -> None:
        assert canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0]) == (
            b"[9007199254740991,-9007199254740991,0]"
        )

    def test_literals(self) -> None:
        assert canonical_json([True, False, None]) == b"[true,false,null]"


class TestRefusals:
    @pytest.mark.parametrize(
        "value",
        [1.5, 1.0, float("nan"), float("inf"), -0.0, Decimal("1.50"), {"price": [2.5]}],
    )
    def test_decimal_numbers_must_be_strings(self, value: object) -> None:
        with pytest.raises(TypeError, match="decimals travel as strings"):
            canonical_json(value)

    @pytest.mark.parametrize("key", [1, None, True, ("a",), b"a"])
    def test_keys_must_be_strings(self, key: object) -> None:
        with pytest.raises(TypeError, match="keys must be strings"):
            canonical_json({key: 1})

    @pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()])
    def test_other_types(self, value: object) -> None:
        with pytest.raises(TypeError):
            canonical_json(value)

    @pytest.mark.parametrize("value", ["a\ud800", {"\udc00": 1}, ["\ud83d"]])
    def test_lone_surrogates(self, value: object) -> None:
        with pytest.raises(ValueError, match="lone surrogate"):
            canonical_json(value)

    @pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30])
    def test_unsafe_integers(self, value: int) -> None:
        with pytest.raises(ValueError, match="outside"):
            canonical_json({"n": value})


class TestProperties:
    @given(JSON_VALUES)
    def test_round_trip(self, value: object) -> None:
        assert json.loads(canonical_json(value)) == value

    @given(JSON_VALUES)
    def test_reencoding_is_stable(self, value: object) -> None:
        encoded = canonical_json(value)
        assert canonical_json(json.loads(encoded)) == encoded

    @given(st.dictionaries(st.text(), st.integers(0, 9)))
    def test_keys_sorted_by_utf16_code_units(self, value: dict[str, int]) -> None:
        pairs = json.loads(canonical_json(value), object_pairs_hook=list)
        keys = [key for key, _ in pairs]
        assert keys == sorted(value, key=utf16_units)

    @given(
        st.recursive(
            JSON_SCALARS,
            lambda children: (
                st.lists(children, max_size=5)
                | st.dictionaries(st.text(st.characters(max_codepoint=0xD7FF)), children)
            ),
            max_leaves=30,
        )
    )
    def test_matches_python_json_when_orders_agree(self, value: object) -> None:
        # Below U+D800 code point order and UTF-16 order agree, and the escapes must match.
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(value) == expected.encode("utf-8")
