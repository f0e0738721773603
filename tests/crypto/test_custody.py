"""Custody: secrets wrapped under the master key unwrap only for their own tender and purpose."""

import base64
import hashlib
import stat
import threading
from pathlib import Path

import pytest

from bidding.crypto.custody import (
    CustodyError,
    MasterKey,
    load_or_create_master_key,
    resolve_master_key,
    unwrap,
    wrap,
)

SECRET = bytes(range(32))
TENDER = "0b9f3c9e-5d2a-4f6e-9a41-2f1c8d7e6b5a"
PURPOSE = "opening-identity"


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def wrapped(master: MasterKey) -> bytes:
    return wrap(master, SECRET, tender_id=TENDER, purpose=PURPOSE)


class TestWrap:
    def test_round_trip(self, master: MasterKey, wrapped: bytes) -> None:
        assert SECRET not in wrapped
        assert unwrap(master, wrapped, tender_id=TENDER, purpose=PURPOSE) == SECRET

    @pytest.mark.parametrize("secret", [b"", b"x", b"\x00" * 1000])
    def test_round_trip_sizes(self, master: MasterKey, secret: bytes) -> None:
        sealed = wrap(master, secret, tender_id=TENDER, purpose="coefficient-seed")
        assert len(sealed) == 1 + 8 + 12 + len(secret) + 16
        assert unwrap(master, sealed, tender_id=TENDER, purpose="coefficient-seed") == secret

    def test_layout(self, master: MasterKey, wrapped: bytes) -> None:
        assert wrapped[0] == 0x01
        assert wrapped[1:9] == hashlib.sha256(master.raw).digest()[:8]

    def test_fresh_nonce_each_time(self, master: MasterKey) -> None:
        first = wrap(master, SECRET, tender_id=TENDER, purpose=PURPOSE)
        second = wrap(master, SECRET, tender_id=TENDER, purpose=PURPOSE)
        assert first[9:21] != second[9:21]
        assert first != second

    def test_wrong_master_key(self, wrapped: bytes) -> None:
        with pytest.raises(CustodyError, match="different master key"):
            unwrap(MasterKey.generate(), wrapped, tender_id=TENDER, purpose=PURPOSE)

    def test_wrong_master_key_with_forged_id(self, master: MasterKey, wrapped: bytes) -> None:
        other = MasterKey.generate()
        forged = wrapped[:1] + bytes.fromhex(other.key_id) + wrapped[9:]
        with pytest.raises(CustodyError, match="authentication failed"):
            unwrap(other, forged, tender_id=TENDER, purpose=PURPOSE)

    @pytest.mark.parametrize("tender_id", ["another-tender", TENDER.upper(), TENDER + " ", ""])
    def test_moved_to_another_tender(
        self, master: MasterKey, wrapped: bytes, tender_id: str
    ) -> None:
        with pytest.raises(CustodyError, match="does not belong to this tender/purpose"):
            unwrap(master, wrapped, tender_id=tender_id, purpose=PURPOSE)

    def test_other_purpose(self, master: MasterKey, wrapped: bytes) -> None:
        with pytest.raises(CustodyError, match="does not belong to this tender/purpose"):
            unwrap(master, wrapped, tender_id=TENDER, purpose="coefficient-seed")

    def test_tender_and_purpose_cannot_be_shuffled(self, master: MasterKey) -> None:
        sealed = wrap(master, SECRET, tender_id="a", purpose="b")
        with pytest.raises(CustodyError):
            unwrap(master, sealed, tender_id="b", purpose="a")

    def test_every_flipped_byte_fails(self, master: MasterKey, wrapped: bytes) -> None:
        for index in range(len(wrapped)):
            for mask in (0x01, 0x80):
                flipped = bytearray(wrapped)
                flipped[index] ^= mask
                with pytest.raises(CustodyError):
                    unwrap(master, bytes(flipped), tender_id=TENDER, purpose=PURPOSE)

    def test_every_truncation_fails(self, master: MasterKey, wrapped: bytes) -> None:
        for length in range(len(wrapped)):
            with pytest.raises(CustodyError):
                unwrap(master, wrapped[:length], tender_id=TENDER, purpose=PURPOSE)

    @pytest.mark.parametrize("length", [0, 1, 20, 36])
    def test_too_short_says_truncated(self, master: MasterKey, wrapped: bytes, length: int) -> None:
        with pytest.raises(CustodyError, match="truncated"):
            unwrap(master, wrapped[:length], tender_id=TENDER, purpose=PURPOSE)

    def test_appended_bytes_fail(self, master: MasterKey, wrapped: bytes) -> None:
        with pytest.raises(CustodyError):
            unwrap(master, wrapped + b"\x00", tender_id=TENDER, purpose=PURPOSE)

    @pytest.mark.parametrize("version", [0x00, 0x02, 0xFF])
    def test_unknown_version(self, master: MasterKey, wrapped: bytes, version: int) -> None:
        with pytest.raises(CustodyError, match="unknown wrapped secret version"):
            unwrap(master, bytes([version]) + wrapped[1:], tender_id=TENDER, purpose=PURPOSE)

    def test_garbage(self, master: MasterKey) -> None:
        with pytest.raises(CustodyError):
            unwrap(master, b"\x01" + b"\x5a" * 60, tender_id=TENDER, purpose=PURPOSE)


class TestMasterKeyText:
    def test_round_trip(self, master: MasterKey) -> None:
        assert MasterKey.from_text(master.to_text()) == master
        assert MasterKey.from_text(f"  {master.to_text()}\n") == master

    def test_key_id(self, master: MasterKey) -> None:
        assert master.key_id == hashlib.sha256(master.raw).hexdigest()[:16]

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "not base64!",
            base64.b64encode(b"k" * 31).decode(),
            base64.b64encode(b"k" * 33).decode(),
            base64.b64encode(b"k" * 32).decode().rstrip("="),
            base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
            base64.b64encode(b"k" * 32).hex(),
            "€" * 44,
        ],
    )
    def test_bad_text_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="master key"):
            MasterKey.from_text(text)

    def test_error_and_repr_do_not_echo_the_key(self, master: MasterKey) -> None:
        almost = master.to_text()[:-2] + "!="
        with pytest.raises(ValueError) as caught:
            MasterKey.from_text(almost)
        assert master.to_text()[:20] not in str(caught.value)
        assert master.to_text() not in repr(master)
        assert repr(master.raw) not in repr(master)
        assert master.key_id in repr(master)


class TestKeyFile:
    def test_created_0600_and_reused(self, tmp_path: Path) -> None:
        path = tmp_path / "var" / "master.key"
        created = load_or_create_master_key(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert MasterKey.from_text(path.read_text()) == created
        assert load_or_create_master_key(path) == created
        assert list(path.parent.iterdir()) == [path]

    def test_concurrent_first_use_agrees_on_one_key(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        results: list[MasterKey] = []
        barrier = threading.Barrier(8)

        def start() -> None:
            barrier.wait()
            results.append(load_or_create_master_key(path))

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8
        assert len(set(results)) == 1
        assert list(tmp_path.iterdir()) == [path]

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
    def test_wider_mode_refused(self, tmp_path: Path, mode: int) -> None:
        path = tmp_path / "master.key"
        load_or_create_master_key(path)
        path.chmod(mode)
        with pytest.raises(ValueError, match="group or others"):
            load_or_create_master_key(path)

    def test_owner_read_only_accepted(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        created = load_or_create_master_key(path)
        path.chmod(0o400)
        assert load_or_create_master_key(path) == created

    @pytest.mark.parametrize("content", [b"", b"hello\n", b"\x00" * 32, b"A" * 5000])
    def test_wrong_content_refused(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "master.key"
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(ValueError, match=r"master\.key"):
            load_or_create_master_key(path)


class TestResolve:
    def test_settings_text_wins_over_file(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        on_file = load_or_create_master_key(path)
        configured = MasterKey.generate()
        assert resolve_master_key(text=configured.to_text(), path=path) == configured
        assert configured != on_file

    def test_settings_text_does_not_create_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        resolve_master_key(text=MasterKey.generate().to_text(), path=path)
        assert not path.exists()

    def test_file_when_no_text(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        created = resolve_master_key(text=None, path=path)
        assert resolve_master_key(text=None, path=path) == created
        assert path.exists()

    @pytest.mark.parametrize("text", ["", "short", "Zm9v"])
    def test_bad_settings_text_refused(self, tmp_path: Path, text: str) -> None:
        with pytest.raises(ValueError, match="master key"):
            resolve_master_key(text=text, path=tmp_path / "master.key")
        assert not (tmp_path / "master.key").exists()
