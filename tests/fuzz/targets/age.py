"""The age header readers, the payload stream reader, and key parsing."""

import io
from collections.abc import Callable
from typing import Any

from bidding.crypto import age
from tests.fuzz.keys import IDENTITY


class _Trickle(io.RawIOBase):
    """A stream that hands out at most a few bytes per read, as a slow socket or pipe does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._step, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gives: ("ok", value) or ("error", its AgeError type)."""
    try:
        return "ok", call()
    except age.AgeError as exc:
        return "error", type(exc)


def age_header(data: bytes) -> None:
    """The three header readers agree, raise only HeaderError, and accept only canonical text."""
    try:
        header = age.parse_header(data)
    except age.HeaderError:
        pass
    else:
        assert header.encode() == data, "a header parsed that is not in its canonical form"
    try:
        length = age.header_length(data)
    except age.HeaderError:
        length = -1
    read = outcome(lambda: age.read_header(io.BytesIO(data)))
    assert read[0] == "ok" or read[1] is age.HeaderError, read
    if length is not None and length >= 0:
        parsed = outcome(lambda: age.parse_header(data[:length]))
        assert read == parsed, ("read_header and header_length + parse_header differ", read)
    if read[0] == "ok":
        assert length == len(read[1].encode()), "read_header read a header header_length missed"


def age_unseal(data: bytes) -> None:
    """Unsealing with the right identity raises only AgeError, whatever the reads return."""
    out = io.BytesIO()
    whole = outcome(lambda: age.unseal(io.BytesIO(data), out, [IDENTITY]))
    trickled = io.BytesIO()
    step = 1 + len(data) % 4093
    slow = outcome(lambda: age.unseal(_Trickle(data, step), trickled, [IDENTITY]))  # type: ignore[arg-type]
    assert slow == whole, ("a short read changed the outcome", whole, slow)
    assert trickled.getvalue() == out.getvalue(), "a short read changed what was released"
    if whole[0] != "ok":
        return
    assert whole[1] == len(out.getvalue())
    file_key = age.recover_file_key(io.BytesIO(data), [IDENTITY])
    again = io.BytesIO()
    age.unseal_with_file_key(io.BytesIO(data), again, file_key)
    assert again.getvalue() == out.getvalue()


def age_keys(data: bytes) -> None:
    """Recipient and identity text: KeyFormatError or a key that writes back as it was read."""
    text = data.decode("utf-8", "surrogateescape")
    for kind in (age.Recipient, age.Identity):
        try:
            key = kind.parse(text)
        except age.KeyFormatError:
            continue
        assert kind.parse(str(key)) == key
        assert str(key) == text.strip(), "a key read from text that is not its canonical form"
        if isinstance(key, age.Recipient):
            key.wrap(bytes(age.FILE_KEY_SIZE))  # a recipient read is one a file can be sealed to
    try:
        identities = age.parse_identities(text)
    except age.KeyFormatError:
        return
    assert identities, "an identity file parsed to no identity"
