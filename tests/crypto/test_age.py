"""Our age implementation: keys, round trips, interoperability, and hostile input."""

import hashlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bidding.crypto import age, bech32
from tests.support.bids import padded_header

CHUNK = age.CHUNK_SIZE
# The u-coordinates of X25519's low-order points, with their non-canonical encodings (p - 1,
# p, p + 1 and the top bit set): every key agreement with them gives the all-zero secret.
LOW_ORDER_POINTS = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ec" + "ff" * 30 + "7f"),
    bytes.fromhex("ed" + "ff" * 30 + "7f"),
    bytes.fromhex("ee" + "ff" * 30 + "7f"),
    bytes(31) + bytes([0x80]),
]
BOUNDARY_SIZES = [
    0,
    1,
    15,
    16,
    17,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 1,
    3 * CHUNK,
]


def age_cli() -> str:
    path = shutil.which("age")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the age command is required under CI (apt-get install age)")
        pytest.skip("the age command is not installed")
    return path


def seal(data: bytes, *recipients: age.Recipient) -> bytes:
    return age.seal_bytes(data, list(recipients))


def with_header_of_length(file: bytes, identity: age.Identity, length: int) -> bytes:
    """The sealed file with its header padded to `length` bytes, the payload unchanged: it
    still opens with the identity, as long as age accepts a header that long."""
    header = age.read_header(io.BytesIO(file))
    file_key = header.file_key([identity])
    return padded_header(list(header.stanzas), file_key, length) + file[len(header.encode()) :]


class Released(io.BytesIO):
    """A sink that keeps what unseal released before it failed."""


def unseal_released(sealed: bytes, identity: age.Identity) -> tuple[Exception | None, bytes]:
    out = Released()
    try:
        age.unseal(io.BytesIO(sealed), out, [identity])
    except age.AgeError as exc:
        return exc, out.getvalue()
    return None, out.getvalue()


@pytest.fixture(scope="module")
def identity() -> age.Identity:
    return age.Identity.generate()


class TestKeys:
    def test_identity_text_round_trips_and_derives_its_recipient(self) -> None:
        identity = age.Identity.generate()
        text = str(identity)
        assert text.startswith("AGE-SECRET-KEY-1")
        assert len(text) == 74
        again = age.Identity.parse(text)
        assert again == identity
        recipient = str(identity.recipient)
        assert recipient.startswith("age1") and len(recipient) == 62
        assert age.Recipient.parse(recipient) == identity.recipient

    def test_known_key_pair_matches_the_reference_implementation(self) -> None:
        # A pair made by age-keygen: the public key must be derived the same way.
        native = pyrage.x25519.Identity.generate()
        ours = age.Identity.parse(str(native))
        assert str(ours.recipient) == str(native.to_public())

    def test_a_changed_character_fails_the_checksum(self) -> None:
        text = str(age.Identity.generate().recipient)
        swapped = text[:-1] + ("q" if text[-1] != "q" else "p")
        with pytest.raises(age.KeyFormatError, match="checksum"):
            age.Recipient.parse(swapped)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "invalid recipient"),
            ("age1", "invalid recipient"),
            ("AGE1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GQ", "lower case"),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN",
                "SSH",
            ),
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "invalid padding"),
            (bech32.encode("npub", bytes(32)), "prefix 'npub'"),
        ],
    )
    def test_malformed_recipients_are_refused_clearly(self, text: str, message: str) -> None:
        with pytest.raises(age.KeyFormatError, match=message):
            age.Recipient.parse(text)

    @pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
    def test_a_low_order_point_is_refused_as_a_recipient(self, point: bytes) -> None:
        # Nothing sealed to it could be opened, and sealing to it failed with a bare
        # ValueError: a bidder could register it as its key and break the key check.
        with pytest.raises(ValueError):  # cryptography's answer to the all-zero secret
            X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(point))
        with pytest.raises(age.KeyFormatError, match="low-order point"):
            age.Recipient.parse(bech32.encode("age", point))

    def test_wrong_length_key_is_refused(self) -> None:
        with pytest.raises(age.KeyFormatError, match="31 bytes"):
            age.Recipient.parse(bech32.encode("age", bytes(31)))

    def test_post_quantum_and_plugin_recipients_are_unsupported(self) -> None:
        with pytest.raises(age.UnsupportedRecipientError, match="post-quantum"):
            age.Recipient.parse(bech32.encode("age1pq", bytes(64)))
        with pytest.raises(age.UnsupportedRecipientError, match="plugin"):
            age.Recipient.parse(bech32.encode("age1yubikey", bytes(33)))
        with pytest.raises(age.UnsupportedRecipientError, match="plugin"):
            age.Identity.parse("AGE-PLUGIN-YUBIKEY-1QQQQQQ")

    def test_identity_file_skips_comments_and_reports_the_bad_line(self) -> None:
        one, two = age.Identity.generate(), age.Identity.generate()
        text = f"# created: now\n# public key: {one.recipient}\n{one}\n\n{two}\n"
        assert age.parse_identities(text) == [one, two]
        with pytest.raises(age.KeyFormatError, match="line 2"):
            age.parse_identities(f"{one}\nAGE-SECRET-KEY-1NOTAKEY\n")
        with pytest.raises(age.KeyFormatError, match="no identity"):
            age.parse_identities("# nothing here\n")

    def test_identity_repr_hides_the_secret(self) -> None:
        identity = age.Identity.generate()
        assert identity.secret_bytes.hex() not in repr(identity)
        assert str(identity) not in repr(identity)


class TestRoundTrip:
    @pytest.mark.parametrize("size", BOUNDARY_SIZES)
    def test_sizes_around_chunk_boundaries(self, identity: age.Identity, size: int) -> None:
        data = os.urandom(size)
        sealed = seal(data, identity.recipient)
        chunks = max(1, -(-size // CHUNK))
        assert (
            len(sealed)
            == len(age.read_header(io.BytesIO(sealed)).encode()) + 16 + size + 16 * chunks
        )
        assert age.unseal_bytes(sealed, [identity]) == data

    @settings(max_examples=40, deadline=None)
    @given(data=st.binary(max_size=3 * CHUNK + 10))
    def test_random_sizes(self, identity: age.Identity, data: bytes) -> None:
        assert age.unseal_bytes(seal(data, identity.recipient), [identity]) == data

    @settings(max_examples=20, deadline=None)
    @given(
        size=st.integers(min_value=0, max_value=2 * CHUNK + 10),
        read=st.sampled_from([1, 3, 4095, CHUNK - 1, CHUNK + 17]),
    )
    def test_short_reads_from_the_source_do_not_matter(
        self, identity: age.Identity, size: int, read: int
    ) -> None:
        class Trickle(io.RawIOBase):
            def __init__(self, data: bytes) -> None:
                self.data = memoryview(data)

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: "memoryview") -> int:  # type: ignore[override]
                count = min(read, len(buffer), len(self.data))
                buffer[:count] = self.data[:count]
                self.data = self.data[count:]
                return count

        # Byte-by-byte reads are slow in Python: keep those files small.
        data = os.urandom(size if read > 3 else size % 3000)
        sealed = io.BytesIO()
        age.seal(Trickle(data), sealed, [identity.recipient])  # type: ignore[arg-type]
        out = io.BytesIO()
        age.unseal(Trickle(sealed.getvalue()), out, [identity])  # type: ignore[arg-type]
        assert out.getvalue() == data

    def test_two_recipients_each_open_the_file(self) -> None:
        one, two = age.Identity.generate(), age.Identity.generate()
        sealed = seal(b"price: 1234567.89", one.recipient, two.recipient)
        assert age.unseal_bytes(sealed, [one]) == b"price: 1234567.89"
        assert age.unseal_bytes(sealed, [two]) == b"price: 1234567.89"

    def test_progress_reports_growing_totals_up_to_the_size(self, identity: age.Identity) -> None:
        data = os.urandom(3 * CHUNK + 5)
        seen: list[int] = []
        sealed = io.BytesIO()
        age.seal(io.BytesIO(data), sealed, [identity.recipient], progress=seen.append)
        assert seen == [CHUNK, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 5]
        seen.clear()
        age.unseal(io.BytesIO(sealed.getvalue()), io.BytesIO(), [identity], progress=seen.append)
        assert seen[-1] == len(data)

    def test_sealing_needs_a_recipient(self) -> None:
        with pytest.raises(age.AgeError, match="recipient"):
            seal(b"x")


class TestFileKey:
    def test_file_key_from_the_header_alone_unseals_the_file(self, identity: age.Identity) -> None:
        data = os.urandom(2 * CHUNK + 3)
        sealed = seal(data, identity.recipient)
        header = age.read_header(io.BytesIO(sealed)).encode()
        file_key = age.recover_file_key(io.BytesIO(header), [identity])
        assert len(file_key) == 16
        out = io.BytesIO()
        age.unseal_with_file_key(io.BytesIO(sealed), out, file_key)
        assert out.getvalue() == data

    def test_a_wrong_file_key_fails_the_header_mac_before_any_output(
        self, identity: age.Identity
    ) -> None:
        sealed = seal(b"secret bid", identity.recipient)
        out = io.BytesIO()
        with pytest.raises(age.HeaderMacError):
            age.unseal_with_file_key(io.BytesIO(sealed), out, os.urandom(16))
        assert out.getvalue() == b""

    def test_a_file_key_of_the_wrong_length_is_refused(self, identity: age.Identity) -> None:
        sealed = seal(b"secret bid", identity.recipient)
        with pytest.raises(age.HeaderMacError, match="16 bytes"):
            age.unseal_with_file_key(io.BytesIO(sealed), io.BytesIO(), b"short")

    def test_another_identity_gets_no_match(self, identity: age.Identity) -> None:
        sealed = seal(b"secret bid", identity.recipient)
        with pytest.raises(age.NoIdentityMatchError):
            age.recover_file_key(io.BytesIO(sealed), [age.Identity.generate()])


class TestInteroperability:
    @pytest.mark.process
    def test_the_age_command_opens_what_we_seal(self, tmp_path: Path) -> None:
        cli = age_cli()
        one, two = age.Identity.generate(), age.Identity.generate()
        data = os.urandom(CHUNK * 2 + 99)
        sealed = tmp_path / "bid.age"
        sealed.write_bytes(seal(data, one.recipient, two.recipient))
        for who in (one, two):
            key = tmp_path / "key.txt"
            key.write_text(f"{who}\n")
            opened = subprocess.run(
                [cli, "-d", "-i", str(key), str(sealed)], capture_output=True, check=True
            )
            assert opened.stdout == data

    @pytest.mark.process
    def test_we_open_what_the_age_command_seals(self, tmp_path: Path) -> None:
        cli = age_cli()
        one, two = age.Identity.generate(), age.Identity.generate()
        data = os.urandom(CHUNK * 3)
        sealed = subprocess.run(
            [cli, "-r", str(one.recipient), "-r", str(two.recipient)],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
        assert age.unseal_bytes(sealed, [one]) == data
        assert age.unseal_bytes(sealed, [two]) == data

    @pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1])
    def test_pyrage_opens_what_we_seal_and_we_open_what_it_seals(self, size: int) -> None:
        native_one = pyrage.x25519.Identity.generate()
        native_two = pyrage.x25519.Identity.generate()
        one, two = age.Identity.parse(str(native_one)), age.Identity.parse(str(native_two))
        data = os.urandom(size)
        ours = seal(data, one.recipient, two.recipient)
        assert pyrage.decrypt(ours, [native_one]) == data
        assert pyrage.decrypt(ours, [native_two]) == data
        theirs = pyrage.encrypt(data, [native_one.to_public(), native_two.to_public()])
        assert age.unseal_bytes(theirs, [one]) == data
        assert age.unseal_bytes(theirs, [two]) == data


class TestHostileInput:
    @pytest.fixture
    def sealed(self, identity: age.Identity) -> tuple[bytes, bytes, int]:
        """Three chunks of plaintext, its sealed file, and where the payload starts."""
        data = os.urandom(2 * CHUNK + 1000)
        sealed = seal(data, identity.recipient)
        payload_start = len(age.read_header(io.BytesIO(sealed)).encode()) + 16
        return data, sealed, payload_start

    def test_truncation_anywhere_fails_and_never_releases_the_last_chunk(
        self, identity: age.Identity, sealed: tuple[bytes, bytes, int]
    ) -> None:
        data, file, start = sealed
        enc = age.ENCRYPTED_CHUNK_SIZE
        for cut in (
            0,
            10,
            start - 1,
            start,
            start + 5,
            start + enc,
            start + enc + 1,
            len(file) - 1,
        ):
            error, released = unseal_released(file[:cut], identity)
            assert isinstance(error, (age.HeaderError, age.PayloadError)), cut
            assert data.startswith(released) and len(released) < len(data), cut

    def test_truncation_at_a_chunk_boundary_is_still_detected(self, identity: age.Identity) -> None:
        data = os.urandom(2 * CHUNK)
        file = seal(data, identity.recipient)
        error, released = unseal_released(file[: -age.ENCRYPTED_CHUNK_SIZE], identity)
        assert isinstance(error, age.PayloadError)
        assert released == data[:CHUNK]

    @pytest.mark.parametrize("where", ["header", "mac", "nonce", "first", "middle", "last"])
    def test_a_flipped_byte_is_detected(
        self, identity: age.Identity, sealed: tuple[bytes, bytes, int], where: str
    ) -> None:
        data, file, start = sealed
        enc = age.ENCRYPTED_CHUNK_SIZE
        header = age.read_header(io.BytesIO(file)).encode()
        offset = {
            "header": header.index(b"\n") + 10,
            "mac": len(header) - 5,
            "nonce": start - 3,
            "first": start + 100,
            "middle": start + enc + 100,
            "last": len(file) - 1,
        }[where]
        flipped = bytearray(file)
        flipped[offset] ^= 0x01
        error, released = unseal_released(bytes(flipped), identity)
        assert error is not None
        assert len(released) < len(data) and data.startswith(released)
        if where == "middle":
            assert isinstance(error, age.PayloadError) and released == data[:CHUNK]

    def test_garbage_after_the_final_chunk_is_refused(
        self, identity: age.Identity, sealed: tuple[bytes, bytes, int]
    ) -> None:
        _, file, _ = sealed
        error, _ = unseal_released(file + b"\x00", identity)
        assert isinstance(error, age.PayloadError)
        full = seal(os.urandom(CHUNK), identity.recipient)
        error, _ = unseal_released(full + b"trailing", identity)
        assert isinstance(error, age.PayloadError)
        assert "trailing" in str(error)

    def test_wrong_identity_gets_no_match(self, sealed: tuple[bytes, bytes, int]) -> None:
        error, released = unseal_released(sealed[1], age.Identity.generate())
        assert isinstance(error, age.NoIdentityMatchError) and released == b""

    def test_an_oversized_header_is_refused_without_reading_on(
        self, identity: age.Identity
    ) -> None:
        consumed = 0

        class Endless(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: "memoryview") -> int:  # type: ignore[override]
                nonlocal consumed
                line = b"age-encryption.org/v1\n" if consumed == 0 else b"-> X " + b"A" * 58 + b"\n"
                count = min(len(buffer), len(line))
                buffer[:count] = line[:count]
                consumed += count
                return count

        with pytest.raises(age.HeaderError, match="header larger"):
            age.unseal(Endless(), io.BytesIO(), [identity])  # type: ignore[arg-type]
        assert consumed < age.MAX_HEADER_BYTES + 8192

    def test_a_header_over_the_limit_is_refused_by_every_reader_even_when_complete(
        self, identity: age.Identity
    ) -> None:
        # The upload checks with header_length and parse_header, the opening reads with
        # read_header: a header one of them accepts and another refuses is a bid that is
        # receipted but never opens.
        file = seal(b'{"price": "1.00"}', identity.recipient)
        at_limit = with_header_of_length(file, identity, age.MAX_HEADER_BYTES)
        assert age.header_length(at_limit) == age.MAX_HEADER_BYTES
        age.parse_header(at_limit[: age.MAX_HEADER_BYTES])
        assert age.unseal_bytes(at_limit, [identity]) == b'{"price": "1.00"}'
        over = with_header_of_length(file, identity, age.MAX_HEADER_BYTES + 1)
        with pytest.raises(age.HeaderError, match="header larger"):
            age.header_length(over)
        with pytest.raises(age.HeaderError, match="header larger"):
            age.parse_header(over[: age.MAX_HEADER_BYTES + 1])
        with pytest.raises(age.HeaderError, match="header larger"):
            age.read_header(io.BytesIO(over))

    def test_a_thousand_stanzas_are_refused(self, identity: age.Identity) -> None:
        stanzas = [age.Stanza("grease", ("x",), b"") for _ in range(1000)]
        file = age.encode_header(stanzas, os.urandom(16)) + os.urandom(32)
        error, _ = unseal_released(file, identity)
        assert isinstance(error, age.HeaderError) and "too many recipient stanzas" in str(error)
        sixty_four = age.encode_header(
            [*stanzas[:63], identity.recipient.wrap(key := os.urandom(16))], key
        )
        assert age.read_header(io.BytesIO(sixty_four)).file_key([identity]) == key

    @pytest.mark.parametrize(
        ("mangle", "message"),
        [
            (lambda h: h.replace(b"X25519 ", b"X25519  ", 1), "argument"),
            (lambda h: h.replace(b"\n---", b"=\n---", 1), "base64"),
            (lambda h: h.replace(b"age-encryption.org/v1", b"age-encryption.org/v2"), "version"),
            (lambda h: b'{"price": "1000.00"}\n', "not an age file"),
            (lambda h: h.replace(b"\n", b"\r\n"), ""),
        ],
    )
    def test_non_canonical_headers_are_refused(
        self, identity: age.Identity, mangle: object, message: str
    ) -> None:
        file = seal(b"bid", identity.recipient)
        header = age.read_header(io.BytesIO(file)).encode()
        bad = mangle(header) + file[len(header) :]  # type: ignore[operator]
        error, released = unseal_released(bad, identity)
        assert isinstance(error, age.HeaderError) and message in str(error)
        assert released == b""

    def test_non_canonical_base64_trailing_bits_are_refused(self) -> None:
        assert age.b64decode("AA") == b"\x00"
        with pytest.raises(age.HeaderError, match="non-canonical"):
            age.b64decode("AB")
        with pytest.raises(age.HeaderError):
            age.b64decode("AA==")
        with pytest.raises(age.HeaderError):
            age.b64decode("A")


class TestResources:
    def test_memory_stays_flat_for_a_large_stream(self, identity: age.Identity) -> None:
        import tracemalloc

        size = 48 * 1024 * 1024

        class Zeros(io.RawIOBase):
            """A large plaintext that is never held in memory."""

            def __init__(self) -> None:
                self.left = size

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: "memoryview") -> int:  # type: ignore[override]
                count = min(len(buffer), self.left)
                buffer[:count] = bytes(count)
                self.left -= count
                return count

        class Pipe(io.RawIOBase):
            """Hands what seal writes straight to a second stream, without keeping it."""

            def __init__(self) -> None:
                self.written = 0
                self.digest = hashlib.sha256()

            def writable(self) -> bool:
                return True

            def write(self, data: "bytes | memoryview") -> int:  # type: ignore[override]
                self.digest.update(data)
                self.written += len(data)
                return len(data)

        tracemalloc.start()
        try:
            sink = Pipe()
            age.seal(Zeros(), sink, [identity.recipient])  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert sink.written > size
        assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte stream"

    def test_no_reader_thread_outlives_a_failure(self, identity: age.Identity) -> None:
        import threading

        sealed = bytearray(seal(os.urandom(40 * CHUNK), identity.recipient))
        sealed[300] ^= 1  # the first chunk: unsealing stops long before the end
        error, _ = unseal_released(bytes(sealed), identity)
        assert isinstance(error, age.PayloadError)
        for thread in threading.enumerate():
            if thread.name == "age-read-ahead":
                thread.join(timeout=5)
                assert not thread.is_alive()

    def test_a_read_error_reaches_the_caller(self, identity: age.Identity) -> None:
        sealed = seal(os.urandom(20 * CHUNK), identity.recipient)

        class Failing(io.BytesIO):
            def readinto(self, buffer: "memoryview") -> int:  # type: ignore[override]
                if self.tell() > 5 * CHUNK:
                    raise OSError("disk read error")
                return super().readinto(buffer)

        with pytest.raises(OSError, match="disk read error"):
            age.unseal(Failing(sealed), io.BytesIO(), [identity])
