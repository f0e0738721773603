"""The age v1 file format (age-encryption.org/v1) with X25519 recipients.

A sealed file is a text header (recipient stanzas that each wrap the 16-byte file key,
then an HMAC of the header under that key) followed by a 16-byte nonce and the payload in
STREAM chunks of 64 KiB, each encrypted with ChaCha20-Poly1305. Everything here streams:
memory stays flat whatever the size of the file.
"""

import base64
import binascii
import contextlib
import hmac
import io
import os
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, BinaryIO, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bidding.crypto import bech32

VERSION_LINE = b"age-encryption.org/v1\n"
FILE_KEY_SIZE = 16
NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# Bounds on the work a hostile header can cause; an honest file has a few stanzas.
MAX_STANZAS = 64
MAX_HEADER_BYTES = 128 * 1024

_RECIPIENT_HRP = "age"
_IDENTITY_HRP = "age-secret-key-"
_X25519_INFO = b"age-encryption.org/v1/X25519"
# Any fixed key: its exchange tells a low-order share (all-zero secret) from a sound one.
_ANY_SCALAR = X25519PrivateKey.from_private_bytes(bytes(32))
_STANZA_PREFIX = b"-> "
_MAC_PREFIX = b"---"
_BODY_COLUMNS = 64
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]*")

# Reads go in blocks of several chunks, a few blocks ahead: a few MiB however big the file.
_PIECES_PER_BLOCK = 16
_READ_AHEAD_BLOCKS = 4

Progress = Callable[[int], None]


class AgeError(Exception):
    """A file, key or operation that the age format refuses."""


class KeyFormatError(AgeError):
    """A recipient or identity string that cannot be parsed."""


class UnsupportedRecipientError(KeyFormatError):
    """A valid key of a type this platform does not handle (passphrase, plugin, post-quantum)."""


class HeaderError(AgeError):
    """The header is malformed: not an age v1 file, or not in its strict canonical form."""


class NoIdentityMatchError(AgeError):
    """None of the given identities can unwrap any recipient stanza of the file."""


class HeaderMacError(AgeError):
    """The file key was recovered but the header MAC does not match: the header was altered."""


class PayloadError(AgeError):
    """The payload is truncated, altered or followed by garbage; output stops at the failure."""


# --- helpers -------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard base64 without padding, as the age header writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str | bytes) -> bytes:
    """Strict, canonical, unpadded standard base64; anything else raises HeaderError."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if not _BASE64_LINE.fullmatch(raw) or len(raw) % 4 == 1:
        raise HeaderError("invalid base64: must be standard alphabet, unpadded")
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        raise HeaderError("invalid base64") from None
    if b64encode(decoded).encode("ascii") != raw:
        raise HeaderError("non-canonical base64 encoding")
    return decoded


def _hkdf(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    key = _hkdf(file_key, salt=b"", info=b"header")
    return hmac.digest(key, mac_input, "sha256")


def _stream_nonce(counter: int, *, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# --- keys ----------------------------------------------------------------------------------


def _decode_key(text: str, *, kind: str) -> tuple[str, bytes]:
    try:
        return bech32.decode(text)
    except bech32.Bech32Error as exc:
        raise KeyFormatError(f"invalid {kind} {_shorten(text)!r}: {exc}") from None


def _low_order(point: bytes) -> bool:
    """Whether a 32-byte X25519 public key is a low-order point: its shared secrets are zero."""
    try:
        # Any clamped scalar gives the all-zero secret on a low-order point, and only there.
        _ANY_SCALAR.exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError:
        return True
    return False


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


class _Key:
    """Thirty-two raw key bytes, compared by value.

    A plain class rather than a dataclass: importing dataclasses costs every CLI run time.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise KeyFormatError(f"an X25519 key is 32 bytes, not {len(raw)}")
        self._raw = bytes(raw)

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._raw))


class Recipient(_Key):
    """An X25519 public key that files can be sealed to: `age1…`."""

    __slots__ = ()

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._raw

    def __repr__(self) -> str:
        return f"Recipient({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> "Recipient":
        """Parse `age1…`, refusing other key types with a clear reason."""
        text = text.strip()
        if text.startswith(("ssh-", "ecdsa-")):
            raise UnsupportedRecipientError("unsupported recipient type: SSH keys are not accepted")
        if text.lower() != text:
            raise KeyFormatError(f"invalid recipient {_shorten(text)!r}: must be lower case")
        hrp, data = _decode_key(text, kind="recipient")
        if hrp != _RECIPIENT_HRP:
            if hrp == "age1pq":
                kind = "post-quantum"
            elif hrp.startswith("age1"):
                kind = f"plugin ({hrp[4:]})"
            else:
                raise KeyFormatError(f"invalid recipient: prefix {hrp!r}, expected 'age'")
            raise UnsupportedRecipientError(f"unsupported recipient type: {kind}")
        if len(data) != 32:
            raise KeyFormatError(f"invalid recipient: {len(data)} bytes, expected 32")
        if _low_order(data):
            raise KeyFormatError("invalid recipient: a low-order point, which nothing can open")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(_RECIPIENT_HRP, self.public_bytes)

    def wrap(self, file_key: bytes) -> "Stanza":
        """Wrap a file key for this recipient in a fresh X25519 stanza."""
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared_secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public_bytes))
        wrap_key = _hkdf(shared_secret, salt=share + self.public_bytes, info=_X25519_INFO)
        body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
        return Stanza("X25519", (b64encode(share),), body)


class Identity(_Key):
    """An X25519 secret key that unseals files: `AGE-SECRET-KEY-1…`."""

    __slots__ = ()

    @property
    def secret_bytes(self) -> bytes:
        """The raw 32-byte secret key."""
        return self._raw

    def __repr__(self) -> str:
        # Never the secret: reprs end up in logs and tracebacks.
        return f"Identity(recipient={str(self.recipient)!r})"

    @classmethod
    def generate(cls) -> "Identity":
        """Make a new random identity."""
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> "Identity":
        """Parse `AGE-SECRET-KEY-1…`, refusing other key types with a clear reason."""
        text = text.strip()
        if text.upper() != text:
            raise KeyFormatError("invalid identity: must be upper case")
        if text.startswith("AGE-PLUGIN-"):
            raise UnsupportedRecipientError("unsupported identity type: plugin")
        if text.startswith("AGE-SECRET-KEY-PQ-"):
            raise UnsupportedRecipientError("unsupported identity type: post-quantum")
        hrp, data = _decode_key(text, kind="identity")
        if hrp != _IDENTITY_HRP:
            raise KeyFormatError(
                f"invalid identity: prefix {hrp.upper()!r}, expected AGE-SECRET-KEY-"
            )
        if len(data) != 32:
            raise KeyFormatError(f"invalid identity: {len(data)} bytes, expected 32")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(_IDENTITY_HRP, self.secret_bytes).upper()

    @property
    def recipient(self) -> Recipient:
        """The public half, to give to whoever seals files for this identity."""
        private = X25519PrivateKey.from_private_bytes(self.secret_bytes)
        return Recipient(private.public_key().public_bytes_raw())

    def unwrap(self, stanzas: Sequence["Stanza"]) -> bytes | None:
        """The file key from the first X25519 stanza addressed to us, or None."""
        private = X25519PrivateKey.from_private_bytes(self.secret_bytes)
        ours = private.public_key().public_bytes_raw()
        for stanza in stanzas:
            if stanza.type != "X25519":
                continue
            share = x25519_share(stanza)
            try:
                shared_secret = private.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:
                # cryptography refuses the all-zero secret that low-order points give.
                raise HeaderError("X25519 stanza share is a low-order point") from None
            wrap_key = _hkdf(shared_secret, salt=share + ours, info=_X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), stanza.body, None)
            except InvalidTag:
                continue
        return None


def x25519_share(stanza: "Stanza") -> bytes:
    """The ephemeral share of a well-formed X25519 stanza; HeaderError for a malformed one."""
    if len(stanza.args) != 1:
        raise HeaderError("X25519 stanza must have exactly one argument")
    share = b64decode(stanza.args[0])
    if len(share) != 32:
        raise HeaderError("X25519 stanza share must be 32 bytes")
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise HeaderError("X25519 stanza body must be 32 bytes")
    return share


def parse_identities(text: str) -> list[Identity]:
    """Identities from an identity file: one per line, `#` comments and blank lines ignored."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(Identity.parse(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"line {number}: {exc}") from None
    if not identities:
        raise KeyFormatError("no identity found")
    return identities


# --- header --------------------------------------------------------------------------------


class Stanza(NamedTuple):
    """One recipient stanza: a type, its arguments and a body that wraps the file key."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def encode(self) -> bytes:
        """The stanza's canonical text form."""
        line = " ".join((self.type, *self.args)).encode("ascii")
        encoded = b64encode(self.body).encode("ascii")
        lines = [encoded[i : i + _BODY_COLUMNS] for i in range(0, len(encoded), _BODY_COLUMNS)]
        if not lines or len(lines[-1]) == _BODY_COLUMNS:
            lines.append(b"")  # a stanza always ends with a short line, even an empty one
        return b"".join([_STANZA_PREFIX, line, b"\n", *(chunk + b"\n" for chunk in lines)])


class Header(NamedTuple):
    """A parsed header: its stanzas, its MAC and the exact bytes the MAC covers."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes

    def encode(self) -> bytes:
        """The header's canonical text form, MAC line included."""
        return self.mac_input + b" " + b64encode(self.mac).encode("ascii") + b"\n"

    def file_key(self, identities: Iterable[Identity]) -> bytes:
        """Recover the file key with one of the identities and check the header MAC."""
        check_stanzas(self.stanzas)
        for identity in identities:
            file_key = identity.unwrap(self.stanzas)
            if file_key is not None:
                self.verify_mac(file_key)
                return file_key
        raise NoIdentityMatchError("no identity matches any recipient of this file")

    def verify_mac(self, file_key: bytes) -> None:
        """Raise HeaderMacError unless the file key authenticates this header."""
        if len(file_key) != FILE_KEY_SIZE:
            raise HeaderMacError(f"a file key is {FILE_KEY_SIZE} bytes")
        if not hmac.compare_digest(_header_mac(file_key, self.mac_input), self.mac):
            raise HeaderMacError("header MAC mismatch: wrong file key or altered header")


def check_stanzas(stanzas: Sequence[Stanza]) -> None:
    """Raise HeaderError for stanzas that make the whole file unopenable, whatever the
    identity: an scrypt stanza beside others, or a malformed or low-order X25519 stanza."""
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise HeaderError("an scrypt stanza must be the only stanza in the header")
    for stanza in stanzas:
        if stanza.type != "X25519":
            continue
        if _low_order(x25519_share(stanza)):
            raise HeaderError("X25519 stanza share is a low-order point")


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """Encode stanzas into a header authenticated under the file key."""
    mac_input = VERSION_LINE + b"".join(s.encode() for s in stanzas) + _MAC_PREFIX
    return Header(tuple(stanzas), _header_mac(file_key, mac_input), mac_input).encode()


def _check_argument(arg: bytes) -> str:
    if not arg or any(not 0x21 <= c <= 0x7E for c in arg):
        raise HeaderError("stanza argument empty or not printable ASCII")
    return arg.decode("ascii")


def parse_header(data: bytes) -> Header:
    """Parse a complete header (through the MAC line's newline) in its strict form."""
    if len(data) > MAX_HEADER_BYTES:
        raise HeaderError(f"header larger than {MAX_HEADER_BYTES} bytes")
    if not data.startswith(VERSION_LINE):
        first = data.split(b"\n", 1)[0]
        if first.startswith(b"age-encryption.org/"):
            raise HeaderError(f"unsupported age version {first[:40]!r}")
        raise HeaderError("not an age file: missing 'age-encryption.org/v1' line")
    if not data.endswith(b"\n"):
        raise HeaderError("header does not end with a newline")
    lines = data[len(VERSION_LINE) : -1].split(b"\n")
    stanzas: list[Stanza] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        if line.startswith(_MAC_PREFIX):
            if position != len(lines) - 1:
                raise HeaderError("data after the MAC line")
            if not line.startswith(b"--- "):
                raise HeaderError("malformed MAC line")
            mac = b64decode(line[4:])
            if len(mac) != 32:
                raise HeaderError("header MAC must be 32 bytes")
            if not stanzas:
                raise HeaderError("header has no recipient stanza")
            return Header(tuple(stanzas), mac, data[: -len(line) - 1] + _MAC_PREFIX)
        if not line.startswith(_STANZA_PREFIX):
            raise HeaderError(f"unexpected header line {line[:40]!r}")
        if len(stanzas) == MAX_STANZAS:
            raise HeaderError(f"too many recipient stanzas (more than {MAX_STANZAS})")
        parts = line[len(_STANZA_PREFIX) :].split(b" ")
        stanza_type, *args = (_check_argument(part) for part in parts)
        body = bytearray()
        while True:
            position += 1
            if position >= len(lines):
                raise HeaderError("stanza body is not terminated by a short line")
            body_line = lines[position]
            if len(body_line) > _BODY_COLUMNS:
                raise HeaderError("stanza body line longer than 64 columns")
            body += b64decode(body_line)
            if len(body_line) < _BODY_COLUMNS:
                break
        stanzas.append(Stanza(stanza_type, tuple(args), bytes(body)))
        position += 1
    raise HeaderError("header has no MAC line")


def header_length(data: bytes | bytearray) -> int | None:
    """Length of the header that starts data, MAC line included; None if data ends before it.

    Raises HeaderError as soon as data cannot be the start of an age v1 file.
    """
    if not data.startswith(VERSION_LINE[: len(data)]):
        parse_header(bytes(data[: len(VERSION_LINE)]))
    mac_line = data.find(b"\n" + _MAC_PREFIX)
    newline = data.find(b"\n", mac_line + 1) if mac_line != -1 else -1
    # A complete header over the limit too: read_header, which the opening uses, refuses it.
    if (newline == -1 and len(data) > MAX_HEADER_BYTES) or newline + 1 > MAX_HEADER_BYTES:
        raise HeaderError(f"header larger than {MAX_HEADER_BYTES} bytes")
    return None if newline == -1 else newline + 1


class _Source:
    """A binary stream with bytes already read ahead of it (what followed the header)."""

    def __init__(self, stream: BinaryIO, pending: bytes = b"") -> None:
        self._stream = stream
        self._pending = memoryview(pending)

    def read_header(self) -> Header:
        """Read and parse the header, keeping what follows it for the payload."""
        buffer = bytearray(self._pending)
        self._pending = memoryview(b"")
        mac_line = searched = -1
        while True:
            # Fail fast on a file that is not age at all, instead of reading up to the cap.
            if not buffer.startswith(VERSION_LINE[: len(buffer)]):
                parse_header(bytes(buffer[: len(VERSION_LINE)]))
            if mac_line == -1:
                # Search only the new bytes (and the few before them a match may start in).
                mac_line = buffer.find(b"\n" + _MAC_PREFIX, max(searched - len(_MAC_PREFIX), 0))
                searched = len(buffer)
            if mac_line != -1:
                newline = buffer.find(b"\n", mac_line + 1)
                if newline != -1:
                    if newline + 1 > MAX_HEADER_BYTES:
                        break
                    self._pending = memoryview(bytes(buffer[newline + 1 :]))
                    return parse_header(bytes(buffer[: newline + 1]))
            if len(buffer) > MAX_HEADER_BYTES:
                break
            chunk = self._stream.read(4096)
            if not chunk:
                if not buffer:
                    raise HeaderError("empty file: not an age file")
                raise HeaderError("truncated header: no MAC line")
            buffer += chunk
        raise HeaderError(f"header larger than {MAX_HEADER_BYTES} bytes")

    def read_full(self, buffer: bytearray | memoryview) -> int:
        """Fill the buffer as far as the stream allows; fewer bytes only at its end."""
        view = memoryview(buffer)
        filled = min(len(self._pending), len(view))
        if filled:
            view[:filled] = self._pending[:filled]
            self._pending = self._pending[filled:]
        readinto = getattr(self._stream, "readinto", None)
        while filled < len(view):
            if readinto is not None:
                count = readinto(view[filled:])
            else:
                chunk = self._stream.read(len(view) - filled)
                count = len(chunk)
                view[filled : filled + count] = chunk
            if not count:
                break
            filled += count
        return filled

    def pieces(self, size: int) -> Generator[memoryview, None, None]:
        """Consecutive pieces of `size` bytes; only the last may be shorter (never empty).

        A piece stays valid while the consumer asks for one more piece, so that it can look
        one piece ahead; a background thread reads ahead so that I/O overlaps cipher work.
        """
        block_size = size * _PIECES_PER_BLOCK
        free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        filled: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
        stop = threading.Event()

        def read_blocks() -> None:
            # Blocks are made only as the reader gets ahead: a small file needs one, and
            # allocating (and zeroing) all of them up front cost more than its whole cipher work.
            made = 0
            try:
                while True:
                    try:
                        buffer = free.get_nowait()
                    except queue.Empty:
                        if made < _READ_AHEAD_BLOCKS:
                            buffer = bytearray(block_size)
                            made += 1
                        else:
                            buffer = free.get()
                    if stop.is_set():
                        return
                    count = self.read_full(buffer)
                    filled.put((buffer, count))
                    if count < block_size:
                        return
            except BaseException as exc:  # handed to the consumer, which raises it
                filled.put(exc)

        thread = threading.Thread(target=read_blocks, name="age-read-ahead", daemon=True)
        thread.start()
        previous: bytearray | None = None
        try:
            while True:
                item = filled.get()
                if isinstance(item, BaseException):
                    raise item
                buffer, count = item
                # Recycle a block only once its successor is out, so the consumer can still
                # hold the last piece of the block before while it looks ahead.
                if previous is not None:
                    free.put(previous)
                previous = buffer
                view = memoryview(buffer)
                for offset in range(0, count, size):
                    yield view[offset : min(offset + size, count)]
                if count < block_size:
                    return
        finally:
            stop.set()
            free.put(bytearray())  # wakes the reader if it waits for a buffer


# --- sealing -------------------------------------------------------------------------------


def seal(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[Recipient],
    *,
    progress: Progress | None = None,
) -> int:
    """Seal everything read from src to the recipients into dst; return the plaintext size."""
    if not recipients:
        raise AgeError("at least one recipient is needed to seal")
    file_key = os.urandom(FILE_KEY_SIZE)
    dst.write(encode_header([r.wrap(file_key) for r in recipients], file_key))
    nonce = os.urandom(NONCE_SIZE)
    dst.write(nonce)
    aead = ChaCha20Poly1305(_hkdf(file_key, salt=nonce, info=b"payload"))
    out = bytearray(ENCRYPTED_CHUNK_SIZE)
    counter = total = 0
    with contextlib.closing(_Source(src).pieces(CHUNK_SIZE)) as pieces:
        current = next(pieces, memoryview(b""))
        while True:
            # Only a look at the next piece tells whether a full one is the last.
            following = next(pieces, None) if len(current) == CHUNK_SIZE else None
            last = following is None
            sealed = memoryview(out)[: len(current) + TAG_SIZE]
            aead.encrypt_into(_stream_nonce(counter, last=last), current, None, sealed)
            dst.write(sealed)
            total += len(current)
            if progress is not None:
                progress(total)
            if following is None:
                return total
            current = following
            counter += 1


def seal_bytes(plaintext: bytes, recipients: Sequence[Recipient]) -> bytes:
    """Seal a small plaintext held in memory."""
    out = io.BytesIO()
    seal(io.BytesIO(plaintext), out, recipients)
    return out.getvalue()


# --- unsealing -----------------------------------------------------------------------------


def read_header(src: BinaryIO) -> Header:
    """Read just the header from the start of a sealed stream."""
    return _Source(src).read_header()


def recover_file_key(src: BinaryIO, identities: Iterable[Identity]) -> bytes:
    """The file's 16-byte file key, from its header alone, checked against the header MAC."""
    return read_header(src).file_key(identities)


def unseal(
    src: BinaryIO,
    dst: BinaryIO,
    identities: Iterable[Identity],
    *,
    progress: Progress | None = None,
) -> int:
    """Unseal src into dst with one of the identities; return the plaintext size.

    Plaintext is written chunk by chunk as each chunk authenticates; on PayloadError the
    output is incomplete and must be discarded.
    """
    source = _Source(src)
    file_key = source.read_header().file_key(identities)
    return _decrypt_payload(source, dst, file_key, progress)


def unseal_with_file_key(
    src: BinaryIO, dst: BinaryIO, file_key: bytes, *, progress: Progress | None = None
) -> int:
    """Unseal src into dst with its file key, after checking it against the header MAC."""
    source = _Source(src)
    source.read_header().verify_mac(file_key)
    return _decrypt_payload(source, dst, file_key, progress)


def unseal_bytes(sealed: bytes, identities: Iterable[Identity]) -> bytes:
    """Unseal a small file held in memory."""
    out = io.BytesIO()
    unseal(io.BytesIO(sealed), out, identities)
    return out.getvalue()


def _decrypt_payload(
    source: _Source, dst: BinaryIO, file_key: bytes, progress: Progress | None
) -> int:
    nonce = bytearray(NONCE_SIZE)
    if source.read_full(nonce) != NONCE_SIZE:
        raise HeaderError("truncated file: payload nonce missing")
    aead = ChaCha20Poly1305(_hkdf(file_key, salt=bytes(nonce), info=b"payload"))
    out = bytearray(CHUNK_SIZE)
    counter = total = 0
    with contextlib.closing(source.pieces(ENCRYPTED_CHUNK_SIZE)) as pieces:
        chunk = next(pieces, None)
        while True:
            if chunk is None or len(chunk) < TAG_SIZE:
                what = "no payload" if chunk is None else f"chunk {counter} is truncated"
                raise PayloadError(f"{what}: the file is truncated")
            plain = memoryview(out)[: len(chunk) - TAG_SIZE]
            # A short chunk must be the last one; a full one may be either, so try both.
            full = len(chunk) == ENCRYPTED_CHUNK_SIZE
            last = not full
            try:
                aead.decrypt_into(_stream_nonce(counter, last=last), chunk, None, plain)
            except InvalidTag:
                if not full:
                    raise PayloadError(f"chunk {counter} failed authentication") from None
                try:
                    aead.decrypt_into(_stream_nonce(counter, last=True), chunk, None, plain)
                except InvalidTag:
                    raise PayloadError(f"chunk {counter} failed authentication") from None
                last = True
            if last and counter > 0 and not plain:
                raise PayloadError("the final chunk is empty: only an empty payload may end so")
            dst.write(plain)
            total += len(plain)
            if progress is not None:
                progress(total)
            if last:
                if next(pieces, None) is not None:
                    raise PayloadError("trailing data after the final chunk")
                return total
            chunk = next(pieces, None)
            if chunk is None:
                raise PayloadError("the file is truncated: the final chunk is missing")
            counter += 1
