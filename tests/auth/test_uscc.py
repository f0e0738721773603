"""Unified social credit codes: the GB 32100-2015 check character catches any one-character typo."""

import secrets

import pytest

from bidding.auth import uscc

# Codes as printed on business licences (their check characters match, as a real code must).
PUBLISHED = [
    "91350100M000100Y43",
    "91110000802100433B",
    "91440300708461136T",
]


def random_code() -> str:
    first17 = "".join(secrets.choice(uscc.ALPHABET) for _ in range(17))
    return first17 + uscc.check_character(first17)


class TestValidate:
    @pytest.mark.parametrize("code", PUBLISHED)
    def test_published_codes_are_valid(self, code: str) -> None:
        assert uscc.validate(code) == code

    def test_lower_case_and_spaces_are_tolerated(self) -> None:
        assert uscc.validate("  91350100m000100y43 ") == "91350100M000100Y43"

    @pytest.mark.parametrize(
        ("code", "problem"),
        [
            ("91350100M000100Y4", "18 characters"),
            ("91350100M000100Y433", "18 characters"),
            ("91350100M000100I43", "'I'"),
            ("91350100M000100Y44", "check character"),
        ],
    )
    def test_a_wrong_code_says_what_is_wrong(self, code: str, problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            uscc.validate(code)

    def test_every_single_character_substitution_is_detected(self) -> None:
        # 31 is prime and no weight is a multiple of it, so changing any one character
        # (check character included) changes the sum mod 31.
        for code in [*PUBLISHED, *(random_code() for _ in range(20))]:
            for position in range(18):
                for replacement in uscc.ALPHABET:
                    if replacement == code[position]:
                        continue
                    typo = code[:position] + replacement + code[position + 1 :]
                    with pytest.raises(ValueError):
                        uscc.validate(typo)
