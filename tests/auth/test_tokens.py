"""Session and activation tokens as a command line receives them."""

import pytest

from bidding.auth import tokens


def test_a_draw_beginning_with_a_dash_is_thrown_away(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(
        [
            "-Q5d68JN_ofVHX9HRTXGpQ75L17Q9w6_-2-nbAzHhzw",
            "Q5d68JN_ofVHX9HRTXGpQ75L17Q9w6_-2-nbAzHhzwA",
        ]
    )
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda n: next(draws))
    assert tokens.new_token() == "Q5d68JN_ofVHX9HRTXGpQ75L17Q9w6_-2-nbAzHhzwA"


def test_tokens_never_begin_with_a_dash_and_keep_their_length() -> None:
    # One draw in 64 begins with "-": 2000 draws meet it with near certainty.
    drawn = [tokens.new_token() for _ in range(2000)]
    assert not any(token.startswith("-") for token in drawn)
    assert {len(token) for token in drawn} == {43}
    assert len(set(drawn)) == len(drawn)
    assert any("-" in token[1:] for token in drawn)  # the alphabet is unchanged
