"""Write the seed corpus and dictionaries of the fuzz targets: `python -m tests.fuzz.make_corpus`
writes the seeds that are missing, `--fresh` all of them again.

Seeds are small valid inputs the fuzzer mutates from: files sealed by our sealer and by the
`age` command, bid forms and ZIPs with bid.json, receipts, tender JSON. Each is written under
tests/fuzz/corpus/<target>/ with a name saying what it is. Sealed files differ at every run
(fresh nonces and keys), so only missing seeds are written unless --fresh. Inputs that once
crashed a target are kept beside them as `crash-*` files and are never touched here.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from bidding import client
from bidding.crypto import age
from bidding.crypto.receipts import make_receipt
from bidding.rules import forms as forms_module
from tests.fuzz.keys import IDENTITY, RECEIPT_SHA256, RECEIPT_SIZE, RECEIPT_TENDER, SIGNING_KEY
from tests.fuzz.keys import STRANGER as OTHER

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
DICTIONARIES = HERE / "dictionaries"

FORM = {"price": "1234567.89", "duration_days": 180}
FULL_FORM = {
    "price": "4999999.99",
    "duration_days": 3650,
    "warranty": "五年保修 (five years)",
    "local_supplier": True,
    "discount": "2.5",
}


def canonical(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seal(plaintext: bytes, *recipients: age.Recipient) -> bytes:
    return age.seal_bytes(plaintext, list(recipients))


def seal_with_cli(plaintext: bytes, *recipients: age.Recipient, armor: bool = False) -> bytes:
    """The file the reference `age` command makes for these recipients."""
    command = [shutil.which("age") or "age", *(["-a"] if armor else [])]
    for recipient in recipients:
        command += ["-r", str(recipient)]
    return subprocess.run(command, input=plaintext, capture_output=True, check=True).stdout


def header_of(file: bytes) -> bytes:
    length = age.header_length(file)
    assert length is not None
    return file[:length]


def sealed_files() -> dict[str, bytes]:
    """Files sealed to the fuzz identity (and others), by us and by the age command."""
    me, other = IDENTITY.recipient, OTHER.recipient
    file_key = os.urandom(age.FILE_KEY_SIZE)
    unknown = age.Stanza("grease-x", ("a", "b+/="), os.urandom(40))
    files = {
        "ours-empty.age": seal(b"", me),
        "ours-form.age": seal(canonical(FORM), me),
        "ours-two-recipients.age": seal(canonical(FULL_FORM), other, me),
        "ours-one-chunk-exactly.age": seal(os.urandom(age.CHUNK_SIZE), me),
        "ours-two-chunks.age": seal(os.urandom(age.CHUNK_SIZE + 100), me),
        "ours-unknown-stanza.age": age.encode_header([unknown, me.wrap(file_key)], file_key)
        + os.urandom(age.NONCE_SIZE + age.TAG_SIZE),
        "ours-not-ours.age": seal(canonical(FORM), other),
    }
    if shutil.which("age"):
        files |= {
            "cli-empty.age": seal_with_cli(b"", me),
            "cli-form.age": seal_with_cli(canonical(FORM), me),
            "cli-two-recipients.age": seal_with_cli(canonical(FULL_FORM), me, other),
            "cli-armored.age": seal_with_cli(canonical(FORM), me, armor=True),
        }
    return files


def scrypt_only() -> bytes:
    stanza = age.Stanza("scrypt", (age.b64encode(os.urandom(16)), "18"), os.urandom(32))
    return age.encode_header([stanza], os.urandom(16)) + os.urandom(age.NONCE_SIZE + 20)


def key_texts() -> dict[str, bytes]:
    me = IDENTITY.recipient
    texts = {
        "recipient.txt": str(me).encode(),
        "identity.txt": str(IDENTITY).encode(),
        "identity-file.txt": f"# fuzz\n# public key: {me}\n\n{IDENTITY}\n".encode(),
        "plugin-recipient.txt": b"age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yys",
        "ssh-recipient.txt": b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1Ox",
        "upper-recipient.txt": str(me).upper().encode(),
    }
    if shutil.which("age-keygen"):
        derived = subprocess.run(
            ["age-keygen", "-y"], input=str(IDENTITY).encode(), capture_output=True, check=True
        ).stdout
        assert derived.strip() == str(me).encode(), "the age command derives another recipient"
        texts["cli-recipient.txt"] = derived
    return texts


def zipped(entries: Iterable[tuple[str, bytes, int]], **options: bool) -> bytes:
    path = Path(tempfile.mkstemp(suffix=".zip")[1])
    try:
        with zipfile.ZipFile(path, "w", **options) as archive:  # type: ignore[arg-type]
            for name, data, method in entries:
                archive.writestr(name, data, compress_type=method)
        return path.read_bytes()
    finally:
        path.unlink()


def zip64(form: bytes) -> bytes:
    """An archive whose entry carries ZIP64 sizes, as large archives do."""
    path = Path(tempfile.mkstemp(suffix=".zip")[1])
    try:
        with (
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            archive.open("bid.json", "w", force_zip64=True) as entry,
        ):
            entry.write(form)
        return path.read_bytes()
    finally:
        path.unlink()


def zip64_offset(form: bytes, *, end_records: bool = False) -> bytes:
    """A one-entry archive whose directory gives the entry's offset in a ZIP64 extra field, as
    writers do past 4 GiB (zipfile writes it only then, so it is written here by hand); with
    end_records, its end of directory in ZIP64 records too, as streaming writers do."""
    name, crc = forms_module.BID_FORM_NAME.encode(), zlib.crc32(form)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 0x21, crc, len(form), len(form),
                        len(name), 0)  # fmt: skip
    extra = struct.pack("<HHQ", 1, 8, 0)  # ZIP64 extra: the local header is at offset 0
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 0, 0, 0x21, crc, len(form), len(form),
        len(name), len(extra), 0, 0, 0, 0o100644 << 16, 0xFFFFFFFF,
    ) + name + extra  # fmt: skip
    body = local + name + form
    if not end_records:
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
        return body + central + end
    end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(central), len(body))
    end += struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body) + len(central), 1)
    end += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 2**32 - 1, 2**32 - 1, 0)
    return body + central + end


def bid_forms() -> dict[str, bytes]:
    stored, deflated = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
    forms = {
        "form.json": canonical(FORM),
        "full-form.json": canonical(FULL_FORM),
        "form-indented.json": json.dumps(FULL_FORM, indent=2).encode(),
        "above-ceiling.json": canonical({**FORM, "price": "5000000.01"}),
        "zip-stored.zip": zipped([("bid.json", canonical(FORM), stored)]),
        "zip-deflated-documents.zip": zipped(
            [
                ("bid.json", canonical(FULL_FORM), deflated),
                ("attachments/", b"", stored),
                ("attachments/技术方案.txt", "技术方案 ".encode() * 40, deflated),
                ("attachments/licence.pdf", b"%PDF-1.7\n" + bytes(range(256)), stored),
            ]
        ),
        "zip64.zip": zip64(canonical(FORM)),
        "zip64-offset.zip": zip64_offset(canonical(FORM)),
        "zip64-end-records.zip": zip64_offset(canonical(FORM), end_records=True),
    }
    with tempfile.TemporaryDirectory() as folder:
        attachment = Path(folder) / "quote.txt"
        attachment.write_bytes(b"unit prices\n" * 20)
        with client.build_plaintext(FORM, [attachment]) as plaintext:
            forms["client-zip.zip"] = plaintext.read()
    return forms


def receipts() -> dict[str, bytes]:
    body = {
        "kind": "bid",
        "tender_id": RECEIPT_TENDER,
        "bidder_id": "6c1d8a2e-0000-4000-8000-000000000002",
        "bid_id": "6c1d8a2e-0000-4000-8000-000000000003",
        "version": 2,
        "sha256": RECEIPT_SHA256,
        "size": RECEIPT_SIZE,
        "received_at": "2026-11-27T08:00:03.120Z",
    }
    withdrawal = {**body, "kind": "withdrawal", "sha256": None, "size": None}
    genuine = make_receipt(body, SIGNING_KEY)
    return {
        "bid.json": json.dumps(genuine, indent=2, ensure_ascii=False).encode() + b"\n",
        "withdrawal.json": json.dumps(make_receipt(withdrawal, SIGNING_KEY)).encode(),
        "altered.json": json.dumps({**genuine, "body": {**body, "size": 1}}).encode(),
        "unknown-key.json": json.dumps({**genuine, "key_id": "00" * 8}).encode(),
        # Deep, but within what json reads: the receipt check must still answer in words.
        "deep-body.json": b'{"body": {"notes": ' + b"[" * 900 + b"]" * 900 + b"}}",
    }


def tenders() -> dict[str, bytes]:
    create = {
        "reference": "SZ-2031-0042",
        "title": "Road maintenance, district 3",
        "description": "Two lines\nof description.",
        "buyer_name": "City roads office",
        "currency": "CNY",
        "ceiling_price": "5000000.00",
        "floor_price": "100.00",
        "bid_deadline": "2099-03-01T17:30:00+08:00",
        "opening_mode": "bidder",
        "decryption_window_minutes": 30,
        "backup_decryption": True,
        "min_bids": 3,
        "scoring": {"method": "lowest_price"},
        "bid_fields": [
            {"name": "price", "type": "decimal", "min": "1", "max": "9000000"},
            {"name": "duration_days", "type": "integer", "label": "Days", "min": "1"},
            {"name": "warranty", "type": "text", "required": False},
            {"name": "local_supplier", "type": "boolean", "required": False},
        ],
        "public_opening": True,
    }
    benchmark = {
        "method": "benchmark",
        "coefficient_choices": ["0.95", "0.97", "0.99"],
        "trim_threshold": 5,
        "deduct_above": "1",
        "deduct_below": "0.5",
    }
    return {
        "create.json": canonical(create),
        "create-comprehensive.json": canonical(
            {**create, "scoring": {"method": "comprehensive", "price_weight": "60"}}
        ),
        "create-benchmark.json": canonical({**create, "scoring": benchmark}),
        "update.json": canonical({"bid_deadline": "2099-04-01T09:00:00Z", "reason": "more time"}),
        "update-floor.json": canonical({"ceiling_price": "900.00", "floor_price": None}),
        # The last moments a datetime holds, given with an offset: its neighbours overflow.
        "update-last-year.json": canonical({"bid_deadline": "9999-12-31T23:59:59+01:00"}),
        "cancel.json": canonical({"reason": "the budget was withdrawn"}),
        "bid-field.json": canonical({"name": "discount", "type": "decimal", "max": "100"}),
    }


# Tokens the fuzzer splices into inputs; libFuzzer's dictionary format, one per line.
DICTIONARY_TOKENS: dict[str, list[bytes]] = {
    "age": [
        age.VERSION_LINE,
        b"age-encryption.org/",
        b"-> ",
        b"X25519 ",
        b"scrypt ",
        b"\n--- ",
        b"---",
        b"-----BEGIN AGE ENCRYPTED FILE-----",
        b"A" * 43,
        b"A" * 64 + b"\n",
    ],
    "age_keys": [b"age1", b"AGE-SECRET-KEY-1", b"AGE-PLUGIN-", b"age1pq", b"ssh-", b"#", b"\n"],
    "bid_form": [
        b"PK\x03\x04",
        b"PK\x01\x02",
        b"PK\x05\x06",
        b"PK\x06\x06",
        b"PK\x06\x07",
        b"bid.json",
        b'"price"',
        b'"duration_days"',
        b'"warranty"',
        b'"local_supplier"',
        b'"discount"',
        b"attachments/",
        b"..",
        b"1e308",
    ],
    "receipt": [
        b'"body"',
        b'"leaf_hash"',
        b'"key_id"',
        b'"signature"',
        b'"version"',
        b'"kind"',
        b'"withdrawal"',
        b"\\ud800",
        b"1e400",
        b"NaN",
    ],
    "tender_schemas": [
        b'"scoring"',
        b'"method"',
        b'"benchmark"',
        b'"comprehensive"',
        b'"lowest_price"',
        b'"bid_fields"',
        b'"bid_deadline"',
        b'"floor_price"',
        b'"ceiling_price"',
        b"0001-01-01T00:00:00+14:00",
        b"9999-12-31T23:59:59-14:00",
        b"T23:59:59.999999Z",
        b"99999999999999.99",
        b"\\u0000",
    ],
}
DICTIONARY_OF_TARGET = {
    "age_header": "age",
    "age_upload_header": "age",
    "age_unseal": "age",
    "age_keys": "age_keys",
    "bid_form": "bid_form",
    "receipt": "receipt",
    "tender_schemas": "tender_schemas",
}


def dictionary_text(tokens: list[bytes]) -> str:
    def quoted(token: bytes) -> str:
        return "".join(
            chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in token
        )

    return "".join(f'"{quoted(token)}"\n' for token in tokens)


def seeds() -> dict[str, dict[str, bytes]]:
    files = sealed_files()
    headers = {
        name.replace(".age", ".header"): header_of(f)
        for name, f in files.items()
        if "armored" not in name  # no binary header to cut
    }
    small = {name: f for name, f in files.items() if len(f) < 4096}
    return {
        "age_header": headers | small,
        "age_upload_header": small | {"scrypt-only.age": scrypt_only()},
        "age_unseal": files,
        "age_keys": key_texts(),
        "bid_form": bid_forms(),
        "receipt": receipts(),
        "tender_schemas": tenders(),
    }


def main() -> None:
    # Sealed seeds differ at every run: only missing ones are written, unless --fresh.
    fresh = "--fresh" in sys.argv[1:]
    written = 0
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if fresh and not old.name.startswith("crash-"):
                old.unlink()
        for name, data in files.items():
            if not (folder / name).exists():
                (folder / name).write_bytes(data)
                written += 1
    DICTIONARIES.mkdir(exist_ok=True)
    for name, tokens in DICTIONARY_TOKENS.items():
        (DICTIONARIES / f"{name}.dict").write_text(dictionary_text(tokens), encoding="ascii")
    print(f"wrote {written} seeds under {CORPUS}")


if __name__ == "__main__":
    main()
