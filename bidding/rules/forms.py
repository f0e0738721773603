"""A tender's bid form: the fields an officer may declare, and a decrypted bid read against them.

The plaintext is untrusted input, opened in the opening's worker thread. It is either the bid
form as a JSON object, or a ZIP archive with `bid.json` at its root plus documents
(docs/architecture.md, Sealed bids and receipts).
Every read is bounded before it is made, so no plaintext can make the opening run out of memory
or time, and no name in an archive can point outside it when an auditor unpacks it. A refusal
is a `FormError` whose reason is the `bid.rejected` reason in docs/architecture.md,
The opening.
"""

import enum
import hashlib
import io
import json
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO, Final, Literal, NamedTuple, NoReturn

from bidding.crypto.canonical import MAX_SAFE_INTEGER
from bidding.rules.money import is_decimal_text, is_whole_cents

MIB: Final = 1024 * 1024
PRICE_FIELD: Final = "price"
FIELD_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,39}$"
MAX_BID_FIELDS: Final = 50
BID_FORM_NAME: Final = "bid.json"

# The bid form, alone or as bid.json.
MAX_FORM_BYTES: Final = 1 * MIB
MAX_TEXT_CHARS: Final = 10_000
# The archive: its central directory is bounded before zipfile parses it into memory.
MAX_ENTRIES: Final = 1_000
MAX_DIRECTORY_BYTES: Final = 2 * MIB
MAX_ENTRY_NAME_CHARS: Final = 500
MAX_DOCUMENT_BYTES: Final = 512 * MIB
MAX_TOTAL_BYTES: Final = 1024 * MIB
MAX_COMPRESSION_RATIO: Final = 200
RATIO_CHECKED_ABOVE_BYTES: Final = 1 * MIB

# --- the form a tender declares ------------------------------------------------------------
# Each rule says why a declaration is refused, in the words the tender API answers with, or None.


class BidFieldType(enum.StrEnum):
    """What a field of the bid form holds."""

    decimal = "decimal"
    integer = "integer"
    text = "text"
    boolean = "boolean"


def field_type_problem(name: str, kind: BidFieldType) -> str | None:
    """Why a field may not hold this kind of value, or None."""
    if name == PRICE_FIELD and kind is not BidFieldType.decimal:
        return "price is always a decimal field"
    return None


def field_required_problem(name: str, required: bool) -> str | None:
    """Why a field may not be optional, or None."""
    if name == PRICE_FIELD and not required:
        return "price is always required"
    return None


def field_bound_problem(
    kind: BidFieldType | None, bound: str, value: Decimal, low: Decimal | None
) -> str | None:
    """Why a field's min or max (`bound`) is refused, or None; `low` is its min, if any."""
    if kind in (BidFieldType.text, BidFieldType.boolean):
        return f"{kind} fields take no {bound}"
    if kind is BidFieldType.integer and value != value.to_integral_value():
        return "must be a whole number for an integer field"
    if bound == "max" and low is not None and value < low:
        return "must not be below min"
    return None


def field_names_problem(names: Sequence[str]) -> str | None:
    """Why a form's field names are refused, price included or not, or None."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return f"field names must be unique: {', '.join(repeated)} repeated"
    if len(names) + (PRICE_FIELD not in names) > MAX_BID_FIELDS:
        return f"at most {MAX_BID_FIELDS} fields, price included"
    return None


# --- a decrypted bid -----------------------------------------------------------------------

FormRefusal = Literal["form_invalid", "above_ceiling", "below_floor"]


class FormError(Exception):
    """A bid refused at the opening: the `bid.rejected` reason and a sentence saying why."""

    def __init__(self, reason: FormRefusal, detail: str) -> None:
        super().__init__(detail)
        self.reason: FormRefusal = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Document:
    """A document in a bid's archive: its path there, its size and its SHA-256 in hex."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BidForm:
    """A checked bid: the form's fields (decimals as Decimal), its price and its documents."""

    fields: dict[str, object]
    price: Decimal
    documents: tuple[Document, ...] = ()


def read_bid_form(
    plaintext: BinaryIO | bytes,
    *,
    bid_fields: Sequence[Mapping[str, object]],
    ceiling: Decimal,
    floor: Decimal | None,
) -> BidForm:
    """Check a decrypted bid against the tender's form and price range; FormError if refused.

    A stream is read from its start and must be seekable (a SpooledTemporaryFile will do).
    """
    rules = _rules(bid_fields)
    stream = io.BytesIO(plaintext) if isinstance(plaintext, bytes) else plaintext
    stream.seek(0)
    if _read_up_to(stream, 4) in _ZIP_MAGICS:
        fields, documents = _read_archive(stream, rules)
    else:
        stream.seek(0)
        data = _read_up_to(stream, MAX_FORM_BYTES + 1)
        fields, documents = _check_fields(_parse_form(data, "the bid form"), rules), ()
    price = fields[PRICE_FIELD]
    assert isinstance(price, Decimal)  # the price rule makes it one
    _check_price_range(price, ceiling, floor)
    return BidForm(fields=fields, price=price, documents=documents)


def _invalid(detail: str) -> FormError:
    return FormError("form_invalid", detail)


def _quote(text: str) -> str:
    """Text from the bid, quoted for a detail: shortened, with invisible characters escaped."""
    shown = "".join(c if c.isprintable() else _escape(c) for c in text[:80])
    return f'"{shown}"' + ("…" if len(text) > 80 else "")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """At most size bytes, fewer only at the end: raw streams may return short reads."""
    parts: list[bytes] = []
    while size > 0 and (chunk := stream.read(size)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


# --- the bid form --------------------------------------------------------------------------

_KINDS: Final = frozenset(kind.value for kind in BidFieldType)


class _Rule(NamedTuple):
    name: str
    kind: str
    required: bool
    low: Decimal | None
    high: Decimal | None


def _bound(value: object, field: Mapping[str, object]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    raise ValueError(f"bid_fields: min and max must be decimal strings or null in {field!r}")


def _rules(bid_fields: Sequence[Mapping[str, object]]) -> dict[str, _Rule]:
    """The tender's fields as stored, with price always a required decimal."""
    rules: dict[str, _Rule] = {}
    for field in bid_fields:
        name, kind = field.get("name"), field.get("type")
        if not isinstance(name, str) or kind not in _KINDS:
            # The tender's configuration, checked when it was saved: not the bidder's fault.
            raise ValueError(f"bid_fields: not a bid field: {field!r}")
        low, high = _bound(field.get("min"), field), _bound(field.get("max"), field)
        rules[name] = _Rule(name, str(kind), field.get("required", True) is not False, low, high)
    price = rules.get(PRICE_FIELD)
    low, high = (None, None) if price is None else (price.low, price.high)
    return {PRICE_FIELD: _Rule(PRICE_FIELD, "decimal", True, low, high)} | {
        name: rule for name, rule in rules.items() if name != PRICE_FIELD
    }


def _parse_form(data: bytes, source: str) -> dict[str, object]:
    """The JSON object in data, read strictly; source names it in refusals."""
    if len(data) > MAX_FORM_BYTES:
        raise _invalid(f"{source} is larger than {MAX_FORM_BYTES} bytes (1 MiB)")
    if not data.strip():
        raise _invalid(f"{source} is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        raise _invalid(f"{source} starts with a byte order mark; it must be plain UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(
            f"{source} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None

    def refuse_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _invalid(f"{source} gives the key {_quote(key)} more than once")
            seen.add(key)
        return dict(pairs)

    def refuse_constant(name: str) -> NoReturn:
        raise _invalid(f"{source} holds {name}, which is not a number")

    try:
        form = json.loads(
            text,
            object_pairs_hook=refuse_repeats,
            parse_float=Decimal,
            parse_constant=refuse_constant,
        )
    except json.JSONDecodeError as exc:
        raise _invalid(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _invalid(f"{source} is nested too deeply") from None
    except (ValueError, ArithmeticError):
        # An integer of more digits than Python converts, or an exponent beyond what decimal
        # holds (InvalidOperation): either would otherwise stop the whole opening at this bid.
        raise _invalid(f"{source} holds a number too long to read") from None
    if not isinstance(form, dict):
        raise _invalid(
            f'{source} must be a JSON object such as {{"price": "1234.50"}}, not {_json_kind(form)}'
        )
    return form


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | Decimal):
        return "a JSON number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _check_fields(form: dict[str, object], rules: dict[str, _Rule]) -> dict[str, object]:
    """The form's values, checked and converted, in the order the tender declares them."""
    for name in form:
        if name not in rules:
            raise _invalid(
                f"field {_quote(name)} is not part of this tender's bid form ({', '.join(rules)})"
            )
    fields: dict[str, object] = {}
    for rule in rules.values():
        if rule.name in form:
            fields[rule.name] = _check_value(rule, form[rule.name])
        elif rule.required:
            raise _invalid(f'field "{rule.name}" is required but missing')
    return fields


def _check_value(rule: _Rule, value: object) -> object:
    field = f'field "{rule.name}"'
    number: Decimal
    result: object
    if value is None:
        raise _invalid(f"{field} is null; an optional field is left out instead")
    if rule.kind == "decimal":
        if not isinstance(value, str):
            raise _invalid(
                f'{field} must be a decimal number in a string, such as "1234.50", '
                f"not {_json_kind(value)}"
            )
        if not is_decimal_text(value):
            raise _invalid(
                f'{field} must be a plain decimal number such as "1234.50", not {_quote(value)}'
            )
        result = number = Decimal(value)
    elif rule.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(
                f"{field} must be a whole number without quotes, such as 180, "
                f"not {_json_kind(value)}"
            )
        if abs(value) > MAX_SAFE_INTEGER:
            raise _invalid(f"{field} must be within ±{MAX_SAFE_INTEGER}")
        result, number = value, Decimal(value)
    elif rule.kind == "text":
        if not isinstance(value, str):
            raise _invalid(f"{field} must be text in quotes, not {_json_kind(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise _invalid(f"{field} is longer than {MAX_TEXT_CHARS} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid(f"{field} holds a lone surrogate, which is not valid Unicode") from None
        return value
    else:
        if not isinstance(value, bool):
            raise _invalid(f"{field} must be true or false, not {_json_kind(value)}")
        return value
    if rule.low is not None and number < rule.low:
        raise _invalid(f"{field} must be at least {rule.low}, not {number}")
    if rule.high is not None and number > rule.high:
        raise _invalid(f"{field} must be at most {rule.high}, not {number}")
    if rule.name == PRICE_FIELD:
        if number <= 0:
            raise _invalid(f"{field} must be greater than 0, not {number}")
        if not is_whole_cents(number):
            raise _invalid(f"{field} must have at most 2 decimal places, not {number}")
    return result


def _check_price_range(price: Decimal, ceiling: Decimal, floor: Decimal | None) -> None:
    if price > ceiling:
        raise FormError("above_ceiling", f"price {price} is above the ceiling price {ceiling}")
    if floor is not None and price < floor:
        raise FormError("below_floor", f"price {price} is below the floor price {floor}")


# --- the archive ---------------------------------------------------------------------------

_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
_END: Final = struct.Struct("<4s4H2LH")
_END_SIGNATURE: Final = b"PK\x05\x06"
_LOCATOR: Final = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE: Final = b"PK\x06\x07"
_END64: Final = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE: Final = b"PK\x06\x06"
_LOCAL: Final = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE: Final = b"PK\x03\x04"
_MAX_COMMENT: Final = 0xFFFF
# Flag bits: 0 traditional encryption, 6 strong encryption, 13 encrypted central directory.
_ENCRYPTED: Final = 0x0001 | 0x0040 | 0x2000
_PATCHED: Final = 0x0020
# Only methods whose decompression zipfile bounds by the bytes asked for: bzip2 and LZMA
# output is not capped per read, so one small block could expand to gigabytes in memory.
_METHODS: Final = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# Marks that reorder how a name is displayed: "cod\u202efdp.exe" shows as "codexe.pdf".
_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_CHUNK_BYTES: Final = 1 * MIB
# What zipfile and zlib raise on a damaged archive; only zipfile calls are guarded by it.
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def _read_archive(
    stream: BinaryIO, rules: dict[str, _Rule]
) -> tuple[dict[str, object], tuple[Document, ...]]:
    """The checked fields of bid.json and the documents beside it."""
    entries, directory_offset = _directory_bounds(stream)
    try:
        archive = zipfile.ZipFile(stream)
    except _ZIP_ERRORS as exc:
        raise _invalid(f"the ZIP archive cannot be read: {_explain(exc)}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) != entries:
            raise _invalid(
                f"the ZIP archive's central directory holds {len(infos)} entries "
                f"but its end record declares {entries}"
            )
        bid, documents = _check_entries(infos)
        _check_layout(stream, infos, directory_offset)
        fields = _check_fields(_parse_form(_read_bid_json(archive, bid), BID_FORM_NAME), rules)
        return fields, tuple(_hash_document(archive, info) for info in documents)


def _directory_bounds(stream: BinaryIO) -> tuple[int, int]:
    """The entry count and central directory offset, bounded before zipfile reads them.

    zipfile reads the whole central directory into memory and builds an object per entry;
    the end record is found exactly as zipfile finds it, so both see the same directory.
    """
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    end = -1
    if size >= _END.size:
        stream.seek(size - _END.size)
        record = _read_up_to(stream, _END.size)
        if record.startswith(_END_SIGNATURE) and record.endswith(b"\0\0"):
            end = size - _END.size
    if end < 0:
        start = max(size - _MAX_COMMENT - 1 - _END.size, 0)
        stream.seek(start)
        tail = _read_up_to(stream, size - start)
        found = tail.rfind(_END_SIGNATURE)
        if found < 0 or len(tail) - found < _END.size:
            raise _invalid("the ZIP archive has no end of central directory record")
        end = start + found
    stream.seek(end)
    _, disk, directory_disk, on_disk, entries, directory_size, directory_offset, _ = _END.unpack(
        _read_up_to(stream, _END.size)
    )
    directory_end = end
    if end >= _LOCATOR.size:
        stream.seek(end - _LOCATOR.size)
        locator = _LOCATOR.unpack(_read_up_to(stream, _LOCATOR.size))
        if locator[0] == _LOCATOR_SIGNATURE and end >= _LOCATOR.size + _END64.size:
            if locator[1] != 0 or locator[3] > 1:
                raise _invalid("the ZIP archive spans several disks")
            stream.seek(end - _LOCATOR.size - _END64.size)
            record64 = _END64.unpack(_read_up_to(stream, _END64.size))
            if record64[0] == _END64_SIGNATURE:
                disk, directory_disk, on_disk, entries = record64[4:8]
                directory_size, directory_offset = record64[8:10]
                directory_end = end - _LOCATOR.size - _END64.size
    if disk != 0 or directory_disk != 0 or on_disk != entries:
        raise _invalid("the ZIP archive spans several disks")
    if entries > MAX_ENTRIES:
        raise _invalid(f"the ZIP archive has {entries} entries; at most {MAX_ENTRIES} are allowed")
    if directory_size > MAX_DIRECTORY_BYTES:
        raise _invalid(
            f"the ZIP archive's central directory is larger than {MAX_DIRECTORY_BYTES} bytes"
        )
    if directory_offset + directory_size != directory_end:
        # zipfile would shift every entry's offset to fit; a sound archive needs no shift.
        raise _invalid("the ZIP archive's central directory is not where its end record says")
    return entries, directory_offset


def _name_problem(name: str) -> str | None:
    """Why an entry's name is unsafe to unpack anywhere, or None."""
    if not name:
        return "has an empty name"
    if len(name) > MAX_ENTRY_NAME_CHARS:
        return f"has a name longer than {MAX_ENTRY_NAME_CHARS} characters"
    for char in name:
        if unicodedata.category(char) == "Cc":
            return "has a control character in its name"
        if char in _BIDI_CONTROLS:
            return "has a bidirectional control character, which can disguise a name"
    if ":" in name:
        return "has a colon in its name, as in a drive letter (C:) or a Windows stream"
    if "\\" in name:
        return "has a backslash in its name; ZIP paths separate folders with / only"
    if name.startswith("/"):
        return "has an absolute path"
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        return 'has a ".." component, which climbs out of the archive'
    if "" in parts or "." in parts:
        return 'has an empty or "." path component'
    return None


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry is refused by its header alone, or None."""
    # orig_filename: zipfile cuts `filename` at a NUL, hiding what other tools would show.
    problem = _name_problem(info.orig_filename)
    if problem:
        return problem
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is not a regular file or folder"
    if info.flag_bits & _ENCRYPTED:
        return "is encrypted"
    if info.flag_bits & _PATCHED:
        return "holds patch data, which is not supported"
    if info.compress_type not in _METHODS:
        return (
            f"is compressed with method {info.compress_type}; "
            f"only stored and deflated entries are accepted"
        )
    if info.orig_filename.endswith("/"):
        return "is a folder with content" if info.file_size else None
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        return (
            f"is stored uncompressed but declares {info.file_size} bytes "
            f"in {info.compress_size} bytes of data"
        )
    if info.file_size > MAX_DOCUMENT_BYTES:
        return f"declares {info.file_size} bytes; at most {MAX_DOCUMENT_BYTES} are allowed"
    if (
        info.file_size > RATIO_CHECKED_ABOVE_BYTES
        and info.file_size > info.compress_size * MAX_COMPRESSION_RATIO
    ):
        return (
            f"expands {info.compress_size} bytes into {info.file_size}, beyond the "
            f"compression ratio of {MAX_COMPRESSION_RATIO}:1 allowed (a zip bomb)"
        )
    return None


def _folded(name: str) -> str:
    """The key under which two names are the same file on Windows or macOS."""
    return unicodedata.normalize("NFC", name.removesuffix("/")).casefold()


def _check_entries(
    infos: list[zipfile.ZipInfo],
) -> tuple[zipfile.ZipInfo, list[zipfile.ZipInfo]]:
    """bid.json and the documents, after every entry's header passed the rules."""
    for info in infos:
        problem = _entry_problem(info)
        if problem:
            raise _invalid(f"entry {_quote(info.orig_filename)} in the ZIP archive {problem}")
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise _invalid(
            f"the ZIP archive declares {total} bytes in all; at most {MAX_TOTAL_BYTES} are allowed"
        )
    seen: dict[str, str] = {}
    for info in infos:
        name, key = info.orig_filename, _folded(info.orig_filename)
        if key in seen:
            how = (
                "twice"
                if seen[key] == name
                else f"beside {_quote(seen[key])}, which differs only in case or Unicode form"
            )
            raise _invalid(f"entry {_quote(name)} appears in the ZIP archive {how}")
        seen[key] = name
    files = {_folded(info.orig_filename) for info in infos if not info.orig_filename.endswith("/")}
    for info in infos:
        parts = _folded(info.orig_filename).split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise _invalid(
                    f"entry {_quote(info.orig_filename)} in the ZIP archive lies inside "
                    f"{_quote('/'.join(parts[:depth]))}, which is a file"
                )
    bids = [info for info in infos if info.orig_filename == BID_FORM_NAME]
    if not bids:
        elsewhere = [
            info.orig_filename
            for info in infos
            if _folded(info.orig_filename).rsplit("/", 1)[-1] == BID_FORM_NAME
        ]
        hint = f" (found {_quote(elsewhere[0])})" if elsewhere else ""
        raise _invalid(f"the ZIP archive has no {BID_FORM_NAME} at its root{hint}")
    bid = bids[0]
    if bid.file_size > MAX_FORM_BYTES:
        raise _invalid(f"{BID_FORM_NAME} is larger than {MAX_FORM_BYTES} bytes (1 MiB)")
    documents = [info for info in infos if info is not bid and not info.orig_filename.endswith("/")]
    return bid, documents


def _check_layout(stream: BinaryIO, infos: list[zipfile.ZipInfo], directory_offset: int) -> None:
    """Each entry's local header agrees with the directory, and no two entries overlap.

    Overlapping entries are how the densest zip bombs reuse one compressed block; a local
    header saying otherwise than the directory shows other tools other content.
    """
    previous: zipfile.ZipInfo | None = None
    previous_end = 0
    for info in sorted(infos, key=lambda info: info.header_offset):
        name = _quote(info.orig_filename)
        if previous is not None and info.header_offset < previous_end:
            raise _invalid(
                f"entries {_quote(previous.orig_filename)} and {name} overlap in the ZIP archive"
            )
        # Checked before the seek: a ZIP64 offset can be 2**64 - 1, which no stream seeks to.
        if info.header_offset + _LOCAL.size > directory_offset:
            raise _invalid(f"entry {name} has no local header where the ZIP archive says")
        stream.seek(info.header_offset)
        header = _read_up_to(stream, _LOCAL.size)
        if len(header) < _LOCAL.size or not header.startswith(_LOCAL_SIGNATURE):
            raise _invalid(f"entry {name} has no local header where the ZIP archive says")
        _, _, flags, method, _, _, _, _, _, name_size, extra_size = _LOCAL.unpack(header)
        if flags & _ENCRYPTED or method != info.compress_type:
            raise _invalid(
                f"entry {name}'s local header disagrees with the ZIP archive's directory "
                "on encryption or compression"
            )
        previous = info
        previous_end = (
            info.header_offset + _LOCAL.size + name_size + extra_size + info.compress_size
        )
    if previous is not None and previous_end > directory_offset:
        raise _invalid(
            f"entry {_quote(previous.orig_filename)} overlaps the ZIP archive's central directory"
        )


def _explain(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the archive ends too early"
    return str(exc) or type(exc).__name__


def _read_bid_json(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """bid.json's bytes, never more than MAX_FORM_BYTES + 1 whatever its header says."""
    try:
        with archive.open(info) as member:
            data = member.read(MAX_FORM_BYTES + 1)
    except _ZIP_ERRORS as exc:
        raise _invalid(f"{BID_FORM_NAME} cannot be read: {_explain(exc)}") from None
    if len(data) > MAX_FORM_BYTES:
        raise _invalid(f"{BID_FORM_NAME} is larger than {MAX_FORM_BYTES} bytes (1 MiB)")
    if len(data) != info.file_size:
        raise _invalid(
            f"{BID_FORM_NAME} holds {len(data)} bytes, not the {info.file_size} its header declares"
        )
    return data


def _hash_document(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Document:
    """A document's size and SHA-256, read in chunks and never past its declared size."""
    name, declared = info.orig_filename, info.file_size
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(min(_CHUNK_BYTES, declared - size + 1)):
                size += len(chunk)
                if size > declared:
                    raise _invalid(
                        f"entry {_quote(name)} holds more than the {declared} bytes "
                        "its header declares"
                    )
                digest.update(chunk)
    except _ZIP_ERRORS as exc:
        raise _invalid(f"entry {_quote(name)} cannot be read: {_explain(exc)}") from None
    if size != declared:
        raise _invalid(
            f"entry {_quote(name)} holds {size} bytes, not the {declared} its header declares"
        )
    return Document(name=name, size=size, sha256=digest.hexdigest())
