"""The C2SP age test vectors (CCTV): every X25519 vector gives exactly its labelled outcome."""

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from bidding.crypto import age
from tests.conftest import shared_testdata

ENV_VAR = "BIDDING_AGE_CCTV_DIR"


@dataclass(frozen=True)
class Vector:
    name: str
    expect: str
    payload_sha256: str | None
    identities: tuple[str, ...]
    passphrases: tuple[str, ...]
    armored: bool
    file_key: str | None
    body: bytes

    @property
    def skip_reason(self) -> str | None:
        if self.armored:
            return "ASCII armor is not supported"
        x25519 = [i for i in self.identities if i.startswith("AGE-SECRET-KEY-1")]
        if x25519 or (not self.identities and not self.passphrases):
            return None
        if self.passphrases:
            return "passphrase (scrypt) recipients are not supported"
        return "post-quantum recipients are not supported"


def load_vector(path: Path) -> Vector:
    raw = path.read_bytes()
    text_header, body = raw.split(b"\n\n", 1)
    fields: dict[str, list[str]] = {}
    for line in text_header.decode().splitlines():
        key, value = line.split(": ", 1)
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(
        name=path.name,
        expect=fields["expect"][0],
        payload_sha256=fields.get("payload", [None])[0],
        identities=tuple(fields.get("identity", [])),
        passphrases=tuple(fields.get("passphrase", [])),
        armored=fields.get("armored") == ["yes"],
        file_key=fields.get("file key", [None])[0],
        body=body,
    )


def vector_paths() -> list[Path]:
    folder = shared_testdata("age-cctv", ENV_VAR)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "README.md")


def outcome(vector: Vector) -> tuple[str, bytes]:
    """Unseal the vector; return the outcome label and every byte released to the caller."""
    identities = [
        age.Identity.parse(i) for i in vector.identities if i.startswith("AGE-SECRET-KEY-1")
    ]
    released = io.BytesIO()
    try:
        age.unseal(io.BytesIO(vector.body), released, identities)
    except age.HeaderError:
        return "header failure", released.getvalue()
    except age.NoIdentityMatchError:
        return "no match", released.getvalue()
    except age.HeaderMacError:
        return "HMAC failure", released.getvalue()
    except age.PayloadError:
        return "payload failure", released.getvalue()
    return "success", released.getvalue()


def check(vector: Vector) -> None:
    label, released = outcome(vector)
    assert label == vector.expect
    if vector.payload_sha256 is not None:
        assert hashlib.sha256(released).hexdigest() == vector.payload_sha256
    else:
        assert released == b""


@pytest.fixture(scope="module")
def vectors() -> list[Vector]:
    return [load_vector(p) for p in vector_paths()]


class TestVectors:
    def test_each_vector_gives_its_labelled_outcome(
        self, vectors: list[Vector], capsys: pytest.CaptureFixture[str]
    ) -> None:
        passed, skipped, failures = 0, {}, []
        for vector in vectors:
            reason = vector.skip_reason
            if reason is not None:
                skipped[vector.name] = reason
                continue
            try:
                check(vector)
            except AssertionError:
                failures.append(
                    f"{vector.name}: expected {vector.expect}, got {outcome(vector)[0]}"
                )
            else:
                passed += 1
        with capsys.disabled():
            reasons: dict[str, int] = {}
            for reason in skipped.values():
                reasons[reason] = reasons.get(reason, 0) + 1
            print(f"\nage CCTV vectors: {passed} as labelled, {len(skipped)} skipped,", end=" ")
            print(f"{len(failures)} wrong")
            for reason, count in sorted(reasons.items()):
                print(f"  skipped {count}: {reason}")
        assert not failures, "\n".join(failures)
        # The set must be the real one (69 X25519 vectors), not an empty or truncated folder.
        assert passed >= 65

    def test_header_round_trips_byte_for_byte(self, vectors: list[Vector]) -> None:
        checked = 0
        for vector in vectors:
            if vector.skip_reason or vector.expect == "header failure":
                continue
            header = age.read_header(io.BytesIO(vector.body))
            assert vector.body.startswith(header.encode()), vector.name
            checked += 1
        assert checked >= 30

    def test_file_key_is_recovered_from_the_header_alone(self, vectors: list[Vector]) -> None:
        for vector in vectors:
            if vector.skip_reason or vector.expect not in ("success", "payload failure"):
                continue
            identities = [age.Identity.parse(i) for i in vector.identities]
            # Only the header is given: the payload is not needed to learn the file key.
            header_only = age.read_header(io.BytesIO(vector.body)).encode()
            key = age.recover_file_key(io.BytesIO(header_only), identities)
            assert key.hex() == vector.file_key, vector.name

    def test_unsealing_with_the_file_key_matches_unsealing_with_the_identity(
        self, vectors: list[Vector]
    ) -> None:
        for vector in vectors:
            if vector.skip_reason or vector.expect != "success":
                continue
            out = io.BytesIO()
            assert vector.file_key is not None
            age.unseal_with_file_key(io.BytesIO(vector.body), out, bytes.fromhex(vector.file_key))
            assert hashlib.sha256(out.getvalue()).hexdigest() == vector.payload_sha256
