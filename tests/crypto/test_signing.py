"""Ed25519 signing: standard signatures, canonical documents, and safe key files."""

import base64
import hashlib
import stat
from pathlib import Path

import pytest

from bidding.crypto.signing import (
    SigningKey,
    VerifyKey,
    key_id,
    load_or_create_signing_key,
    verify_document,
)

# RFC 8032 §7.1, TEST 1 (the empty message).
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

RECEIPT = {
    "kind": "bid",
    "tender_id": "T-2026-001",
    "bidder_id": "b-7",
    "bid_id": "bid-42",
    "version": 1,
    "sha256": "ab" * 32,
    "size": 4096,
    "received_at": "2026-11-27T07:59:58.120Z",
}


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.from_private_bytes(RFC_SECRET)


@pytest.fixture
def keys(signing_key: SigningKey) -> dict[str, VerifyKey]:
    return {signing_key.key_id: signing_key.public_key}


class TestRfc8032:
    def test_vector_1(self, signing_key: SigningKey) -> None:
        assert signing_key.public_key.raw == RFC_PUBLIC
        assert signing_key.private_bytes() == RFC_SECRET
        assert signing_key.sign(b"") == RFC_SIGNATURE
        assert VerifyKey.from_raw(RFC_PUBLIC).verify(b"", RFC_SIGNATURE)

    def test_key_id(self, signing_key: SigningKey) -> None:
        expected = hashlib.sha256(RFC_PUBLIC).hexdigest()[:16]
        assert expected == "21fe31dfa154a261"
        assert key_id(RFC_PUBLIC) == expected
        assert signing_key.key_id == expected
        assert VerifyKey.from_raw(RFC_PUBLIC).key_id == expected


class TestVerifyKey:
    def test_every_flipped_signature_bit_fails(self) -> None:
        public = VerifyKey.from_raw(RFC_PUBLIC)
        for index in range(len(RFC_SIGNATURE) * 8):
            flipped = bytearray(RFC_SIGNATURE)
            flipped[index // 8] ^= 1 << (index % 8)
            assert not public.verify(b"", bytes(flipped)), index

    @pytest.mark.parametrize("signature", [b"", RFC_SIGNATURE[:-1], RFC_SIGNATURE + b"\x00"])
    def test_wrong_length_is_false(self, signature: bytes) -> None:
        assert not VerifyKey.from_raw(RFC_PUBLIC).verify(b"", signature)

    def test_published_form_round_trip(self) -> None:
        public = VerifyKey.from_raw(RFC_PUBLIC)
        published = public.to_dict()
        assert published == {
            "key_id": "21fe31dfa154a261",
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(RFC_PUBLIC).decode(),
        }
        assert VerifyKey.from_dict(published) == public

    @pytest.mark.parametrize(
        "change",
        [
            {"algorithm": "RSA"},
            {"key_id": "0000000000000000"},
            {"public_key": base64.b64encode(RFC_PUBLIC[:31]).decode()},
            {"public_key": "not base64!"},
            {"public_key": None},
        ],
    )
    def test_published_form_refused(self, change: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            VerifyKey.from_dict({**VerifyKey.from_raw(RFC_PUBLIC).to_dict(), **change})

    def test_wrong_size_refused(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            VerifyKey.from_raw(RFC_PUBLIC[:31])
        with pytest.raises(ValueError, match="32 bytes"):
            SigningKey.from_private_bytes(RFC_SECRET + b"\x00")


class TestDocuments:
    def test_signed_document_verifies(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey]
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        assert signed["key_id"] == signing_key.key_id
        assert verify_document(RECEIPT, keys=keys, **signed)

    def test_signature_is_over_canonical_json(self, signing_key: SigningKey) -> None:
        signed = signing_key.sign_document({"b": 1, "a": "€"})
        signature = base64.b64decode(signed["signature"], validate=True)
        assert signing_key.public_key.verify('{"a":"€","b":1}'.encode(), signature)

    def test_reordered_body_verifies(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey]
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        reordered = dict(reversed(list(RECEIPT.items())))
        assert list(reordered) != list(RECEIPT)
        assert verify_document(reordered, keys=keys, **signed)

    @pytest.mark.parametrize(
        "change",
        [
            {"size": 4097},
            {"kind": "withdrawal"},
            {"sha256": "ab" * 31 + "aa"},
            {"extra": None},
            {"version": "1"},
        ],
    )
    def test_changed_body_fails(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey], change: dict[str, object]
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        assert not verify_document({**RECEIPT, **change}, keys=keys, **signed)

    def test_missing_field_fails(self, signing_key: SigningKey, keys: dict[str, VerifyKey]) -> None:
        signed = signing_key.sign_document(RECEIPT)
        body = {k: v for k, v in RECEIPT.items() if k != "size"}
        assert not verify_document(body, keys=keys, **signed)

    def test_flipped_signature_bit_fails(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey]
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        raw = bytearray(base64.b64decode(signed["signature"]))
        raw[17] ^= 0x04
        flipped = base64.b64encode(bytes(raw)).decode()
        assert not verify_document(RECEIPT, key_id=signed["key_id"], signature=flipped, keys=keys)

    def test_other_key_id_fails(self, signing_key: SigningKey) -> None:
        other = SigningKey.generate()
        keys = {signing_key.key_id: signing_key.public_key, other.key_id: other.public_key}
        signed = signing_key.sign_document(RECEIPT)
        assert not verify_document(
            RECEIPT, key_id=other.key_id, signature=signed["signature"], keys=keys
        )
        assert not verify_document(
            RECEIPT, key_id="0" * 16, signature=signed["signature"], keys=keys
        )

    def test_key_filed_under_wrong_id_fails(self, signing_key: SigningKey) -> None:
        signed = signing_key.sign_document(RECEIPT)
        keys = {"0" * 16: signing_key.public_key}
        assert not verify_document(
            RECEIPT, key_id="0" * 16, signature=signed["signature"], keys=keys
        )

    @pytest.mark.parametrize(
        "signature",
        [
            "",
            "not base64 at all",
            "====",
            base64.b64encode(RFC_SIGNATURE[:-1]).decode(),
            base64.urlsafe_b64encode(b"\xff" * 64).decode(),
            base64.b64encode(b"\x00" * 64).decode(),
            "€" * 88,
            None,
            12,
            ["x"],
        ],
    )
    def test_hostile_signature_is_false(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey], signature: object
    ) -> None:
        assert not verify_document(
            RECEIPT,
            key_id=signing_key.key_id,
            signature=signature,  # type: ignore[arg-type]
            keys=keys,
        )

    def test_non_canonical_base64_spelling_fails(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey]
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        text = signed["signature"]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        # The last symbol before "==" carries 4 unused bits; setting one decodes to the same bytes.
        last = alphabet.index(text[-3])
        respelled = text[:-3] + alphabet[last ^ 1] + "=="
        assert base64.b64decode(respelled) == base64.b64decode(text)
        assert not verify_document(RECEIPT, key_id=signed["key_id"], signature=respelled, keys=keys)

    @pytest.mark.parametrize("key_id", [None, ["k"], {"k": 1}, 5])
    def test_hostile_key_id_is_false(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey], key_id: object
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        assert not verify_document(
            RECEIPT,
            key_id=key_id,  # type: ignore[arg-type]
            signature=signed["signature"],
            keys=keys,
        )

    @pytest.mark.parametrize("body", [{"price": 1.5}, {1: "x"}, {"s": "\ud800"}, [10**20]])
    def test_unencodable_body_is_false(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey], body: object
    ) -> None:
        signed = signing_key.sign_document(RECEIPT)
        assert not verify_document(body, keys=keys, **signed)

    def test_deeply_nested_body_is_false(
        self, signing_key: SigningKey, keys: dict[str, VerifyKey]
    ) -> None:
        body: object = []
        for _ in range(100_000):
            body = [body]
        signed = signing_key.sign_document(RECEIPT)
        assert not verify_document(body, keys=keys, **signed)


class TestKeyFile:
    def test_created_0600_and_reloaded(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "signing.key"
        created = load_or_create_signing_key(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert base64.b64decode(path.read_text().strip()) == created.private_bytes()
        reloaded = load_or_create_signing_key(path)
        assert reloaded.private_bytes() == created.private_bytes()
        assert reloaded == created
        assert list(path.parent.iterdir()) == [path]

    def test_existing_key_is_used(self, tmp_path: Path) -> None:
        path = tmp_path / "signing.key"
        path.write_text(base64.b64encode(RFC_SECRET).decode() + "\n")
        path.chmod(0o600)
        assert load_or_create_signing_key(path).public_key.raw == RFC_PUBLIC

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
    def test_group_or_world_access_refused(self, tmp_path: Path, mode: int) -> None:
        path = tmp_path / "signing.key"
        load_or_create_signing_key(path)
        path.chmod(mode)
        with pytest.raises(ValueError, match="group or others"):
            load_or_create_signing_key(path)

    @pytest.mark.parametrize(
        "content",
        [b"", b"garbage\n", base64.b64encode(RFC_SECRET[:31]) + b"\n", b"\xff" * 44],
    )
    def test_bad_content_refused(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "signing.key"
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(ValueError, match=r"(signing|secret) key file"):
            load_or_create_signing_key(path)

    def test_secret_not_in_repr(self, signing_key: SigningKey) -> None:
        assert RFC_SECRET.hex() not in repr(signing_key)
        assert str(list(RFC_SECRET)) not in repr(signing_key)
        assert repr(RFC_SECRET) not in repr(signing_key)
