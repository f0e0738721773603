"""The bidder's side of submission: check a bid form, build and seal it, upload it, check receipts.

Plain functions and httpx calls, with no FastAPI or SQLAlchemy import: this runs on a bidder's
machine behind `bidding submit` and `bidding verify-receipt`. Every function that talks to the
platform takes an `httpx.Client`, so tests can give it one over an in-process transport.
"""

import base64
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

import httpx

from bidding import files
from bidding.crypto import age, merkle
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import header_sha256, receipt_problems
from bidding.crypto.signing import VerifyKey, verify_document
from bidding.rules import forms
from bidding.rules.terms import Terms

API = "/api/v1"
UPLOAD_BLOCK_SIZE = 1024 * 1024
# Pauses before the retries of an upload: connection failures and 5xx answers are retried
# with the same Idempotency-Key, so a bid the server did receive is answered, not repeated.
RETRY_DELAYS = (1.0, 2.0, 4.0)
NOT_YET_PROVABLE = "not yet provable (the log is sealed at the deadline)"

# A receipt is no secret: a new receipt file gets the usual permissions (less the umask).
RECEIPT_FILE_MODE = 0o666
# A ZIP of attachments larger than this spills from memory into an unlinked temporary file.
_SPOOL_BYTES = 64 * 1024 * 1024
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# The platform's answers are a few kilobytes; a server that sends more is not believed.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# A receipt is about a kilobyte.
MAX_RECEIPT_BYTES = 1024 * 1024
# Deeper than any honest form, receipt or answer, and shallow enough that nothing that walks
# the value afterwards (canonical JSON, the receipt file's indentation) runs out of stack.
MAX_JSON_DEPTH = 64
# An integer of more digits than this is no count, size or price.
_MAX_INTEGER_DIGITS = 100
_RETRIED_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)

Progress = Callable[[int], None]


class ClientError(Exception):
    """A failure to report to the bidder in one line."""


# --- JSON from files and from the server ---------------------------------------------------


def parse_json(data: bytes | str, **hooks: Any) -> Any:
    """JSON read strictly: ValueError, with a short reason, for what no honest file holds.

    Refused besides malformed JSON: NaN and Infinity, numbers beyond a float's range (1e999999
    would silently become Infinity) or of more than _MAX_INTEGER_DIGITS digits, and nesting
    deeper than MAX_JSON_DEPTH.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
    try:
        value = json.loads(
            data,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_short_int,
            **hooks,
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is out of range")
    return value


def _short_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INTEGER_DIGITS:
        raise ValueError(f"a number of {digits} digits")
    return int(text)


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than limit levels; walked without recursion."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children: Iterator[object]
        if isinstance(item, dict):
            children = iter(item.values())
        elif isinstance(item, list):
            children = iter(item)
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


# --- the bid form --------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise _DuplicateKeyError(f"{name}: given twice")
    return dict(pairs)


def load_form(path: Path) -> dict[str, Any]:
    """Read a bid form: one JSON object, in UTF-8 (a BOM is tolerated), without repeated keys,
    that canonical JSON can seal as it is (decimals in strings, integers within ±(2**53-1))."""
    try:
        text = files.read_limited(path, forms.MAX_FORM_BYTES).decode("utf-8-sig")
    except files.TooLargeError:
        raise ClientError(f"{path}: too large for a bid form (at most 1 MiB)") from None
    except UnicodeDecodeError:
        raise ClientError(f"{path}: not UTF-8 text") from None
    try:
        form = parse_json(text, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKeyError as exc:
        raise ClientError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise ClientError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(form, dict):
        raise ClientError(f'{path}: the bid form must be a JSON object, like {{"price": "1.00"}}')
    try:
        canonical_json(form)
    except (TypeError, ValueError) as exc:
        raise ClientError(f"{path}: {exc}") from None
    return form


def build_plaintext(form: Mapping[str, Any], attachments: Sequence[Path] = ()) -> BinaryIO:
    """The bid as it is sealed: the form's JSON, or a ZIP of `bid.json` and the attachments.

    Attachments go under `attachments/<name>`. The result is in memory, or in an unlinked
    temporary file once large, so no plaintext is left behind on disk; the caller closes it.
    """
    data = canonical_json(form)
    if not attachments:
        return io.BytesIO(data)
    seen: dict[str, Path] = {}
    for path in attachments:
        if path.is_dir():
            raise ClientError(f"{path}: is a folder; attach its files one by one")
        if not path.is_file():
            what = "not a regular file" if path.exists() else "no such file"
            raise ClientError(f"{path}: {what}")
        # Folded as the opening folds them: unpacked on Windows or macOS, both are one file.
        key = unicodedata.normalize("NFC", path.name).casefold()
        if key in seen:
            raise ClientError(
                f"{path}: another attachment is also named {path.name!r} ({seen[key]}); rename one"
            )
        seen[key] = path
    stored: set[str] = set()
    while True:
        spool, too_compressible = _zip(data, attachments, stored)
        if not too_compressible:
            return spool
        # The opening takes a very high compression ratio for a zip bomb: store those files.
        spool.close()
        stored |= too_compressible


def _zip(
    form_data: bytes, attachments: Sequence[Path], stored: set[str]
) -> tuple[BinaryIO, set[str]]:
    """A ZIP of the form and attachments; also the names compressed beyond the opening's ratio."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        with zipfile.ZipFile(
            spool, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False
        ) as archive:
            archive.writestr(forms.BID_FORM_NAME, form_data)
            for path in attachments:
                name = f"attachments/{path.name}"
                method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
                archive.write(path, name, compress_type=method)
            too_compressible = {
                info.filename
                for info in archive.infolist()
                if info.file_size > forms.RATIO_CHECKED_ABOVE_BYTES
                and info.file_size > info.compress_size * forms.MAX_COMPRESSION_RATIO
            }
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return cast(BinaryIO, spool), too_compressible


# --- the tender and sealing ----------------------------------------------------------------


def tender_id_text(text: str) -> str:
    """A tender id in its canonical form; ClientError if it is not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ClientError(f"{text!r} is not a tender id (a UUID)") from None


def sealing_recipients(
    tender: Mapping[str, Any], own: age.Recipient | None = None
) -> list[age.Recipient]:
    """Whom to seal a bid for this tender to; ClientError if it takes no bids now.

    Platform mode: the tender's recipient. Bidder mode (online decryption): the bidder's own
    registered recipient `own`, and the tender's too when backup decryption is on.
    """
    status = tender.get("status")
    if status != "published":
        raise ClientError(f"the tender is {status}: it does not take bids")
    deadline, now = tender.get("bid_deadline"), tender.get("server_time")
    try:
        passed = datetime.fromisoformat(str(now)) >= datetime.fromisoformat(str(deadline))
    except (TypeError, ValueError):
        raise ClientError("the tender's bid_deadline or server_time is not a time") from None
    if passed:
        raise ClientError(f"the bid deadline {deadline} has passed (server time {now})")
    recipient = tender.get("opening_recipient")
    if not isinstance(recipient, str):
        raise ClientError("the tender has no opening recipient to seal to")
    tenders = [age.Recipient.parse(recipient)]
    if tender.get("opening_mode") != "bidder":
        return tenders
    if own is None:
        raise ClientError(
            "the tender is opened by its bidders: register your organization's key first "
            "(bidding check-key --register)"
        )
    return [own, *tenders] if tender.get("backup_decryption") else [own]


def own_recipient(http: httpx.Client, *, token: str) -> age.Recipient | None:
    """The organization's registered recipient, if it registered one."""
    keys = _call(http, "GET", f"{API}/me/keys", "reading your keys", token)
    current = keys.get("current") if isinstance(keys, dict) else None
    if not isinstance(current, dict) or not isinstance(current.get("recipient"), str):
        return None
    return age.Recipient.parse(current["recipient"])


def seal_bid(plaintext: BinaryIO, recipients: Sequence[age.Recipient]) -> BinaryIO:
    """Seal a plaintext into an unlinked temporary file, rewound; the caller closes it."""
    sealed = tempfile.TemporaryFile()  # noqa: SIM115 (returned)
    try:
        age.seal(plaintext, sealed, recipients)
        sealed.seek(0)
    except BaseException:
        sealed.close()
        raise
    return sealed


def prepare_bid(
    http: httpx.Client,
    *,
    tender_id: str,
    form_path: Path,
    attachments: Sequence[Path] = (),
    token: str | None = None,
) -> BinaryIO:
    """Check a bid form against the tender and seal it with its attachments, ready to upload.

    For a tender opened by its bidders, the token finds the organization's own recipient.
    """
    form = load_form(form_path)
    tender = fetch_tender(http, tender_id)
    own = None
    if tender.get("opening_mode") == "bidder" and token is not None:
        own = own_recipient(http, token=token)
    recipients = sealing_recipients(tender, own)
    with build_plaintext(form, attachments) as plaintext:
        # The opening's own reading, the one place the rules live: nothing sealed now is
        # refused at the opening, when it is too late to correct.
        try:
            Terms.of(
                bid_fields=tender.get("bid_fields") or [],
                ceiling_price=tender.get("ceiling_price"),
                floor_price=tender.get("floor_price"),
                scoring=tender.get("scoring") or {},
            ).read_bid(plaintext)
        except forms.FormError as exc:
            raise ClientError(
                f"{form_path}: the opening would refuse this bid: {exc.detail}"
            ) from None
        except (ArithmeticError, ValueError) as exc:
            raise ClientError(f"the tender's bid form or prices are malformed: {exc}") from None
        plaintext.seek(0)
        return seal_bid(plaintext, recipients)


def check_sealed(sealed: BinaryIO) -> None:
    """Raise ClientError unless the file is an age file sealed to an X25519 recipient."""
    try:
        header = age.read_header(sealed)
    except age.AgeError as exc:
        raise ClientError(f"not a sealed bid: {exc}") from None
    finally:
        sealed.seek(0)
    if not any(stanza.type == "X25519" for stanza in header.stanzas):
        raise ClientError("not sealed to an X25519 (age1…) recipient, as bids must be")
    if file_size(sealed) < len(header.encode()) + age.NONCE_SIZE + age.TAG_SIZE:
        raise ClientError("not a sealed bid: the file ends after its header")


def file_size(file: BinaryIO) -> int:
    """The size of a seekable file, which is left rewound."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    return size


# --- talking to the platform ---------------------------------------------------------------


def open_client(server: str, *, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An HTTP client for the platform at `server` (http:// or https://)."""
    if not server.startswith(("http://", "https://")):
        raise ClientError(f"--server {server!r} must start with http:// or https://")
    # Redirects are not followed: a password or a bid is sent to the address given, only.
    # Answers come uncompressed, so that MAX_ANSWER_BYTES bounds what is held in memory.
    return httpx.Client(
        base_url=server,
        timeout=_TIMEOUT,
        transport=_BoundedTransport(transport or httpx.HTTPTransport()),
        headers={"Accept-Encoding": "identity"},
    )


class _BoundedTransport(httpx.BaseTransport):
    """Answers of at most MAX_ANSWER_BYTES, uncompressed: no server fills the bidder's memory."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        asked = f"{request.method} {request.url.path}"
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            response.close()
            # A compressed answer could unpack to any size; it was asked for uncompressed.
            raise ClientError(
                f"the server's answer to {asked} is compressed ({encoding}) when asked not to be"
            )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_BoundedStream(response.stream, asked),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self._inner.close()


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, asked: str) -> None:
        assert isinstance(inner, httpx.SyncByteStream)  # a client's transport answers in sync
        self._inner, self._asked = inner, asked

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._inner:
            received += len(chunk)
            if received > MAX_ANSWER_BYTES:
                raise ClientError(
                    f"the server's answer to {self._asked} is larger than "
                    f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB"
                )
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _error(response: httpx.Response, action: str) -> ClientError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        kind = body.get("type", "error")
        return ClientError(f"{action}: {body['detail']} ({kind}, HTTP {response.status_code})")
    return ClientError(f"{action}: HTTP {response.status_code} {response.reason_phrase}")


def _unreachable(http: httpx.Client, exc: httpx.HTTPError) -> ClientError:
    return ClientError(f"cannot reach {http.base_url}: {_describe(exc)}")


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _json(response: httpx.Response, action: str) -> Any:
    try:
        return parse_json(response.content)
    except ValueError as exc:
        raise ClientError(f"{action}: the server's answer is not JSON ({exc})") from None


def _get(http: httpx.Client, path: str, action: str, **params: str) -> httpx.Response:
    try:
        return http.get(path, params=params)
    except httpx.HTTPError as exc:
        raise _unreachable(http, exc) from None


def sign_in(http: httpx.Client, *, email: str, password: str) -> str:
    """A bearer token for the account."""
    action = "signing in"
    try:
        response = http.post(f"{API}/auth/token", data={"username": email, "password": password})
    except httpx.HTTPError as exc:
        raise _unreachable(http, exc) from None
    if response.status_code != 200:
        raise _error(response, action)
    answer = _json(response, action)
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise ClientError(f"{action}: the server's answer has no access_token")
    return token


def fetch_tender(http: httpx.Client, tender_id: str) -> dict[str, Any]:
    """The tender as the platform shows it."""
    action = f"reading tender {tender_id}"
    response = _get(http, f"{API}/tenders/{tender_id}", action)
    if response.status_code != 200:
        raise _error(response, action)
    tender = _json(response, action)
    if not isinstance(tender, dict) or not isinstance(tender.get("status"), str):
        raise ClientError(f"{action}: the server's answer is not a tender")
    return tender


def fetch_keys(http: httpx.Client) -> dict[str, VerifyKey]:
    """The platform's published signing keys, by key id."""
    action = "fetching the platform's keys"
    response = _get(http, f"{API}/keys", action)
    if response.status_code != 200:
        raise _error(response, action)
    entries = _json(response, action)
    entries = entries.get("keys") if isinstance(entries, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClientError(f"{action}: the answer is not a list of keys")
    keys = {}
    for entry in entries:
        try:
            key = VerifyKey.from_dict(entry)
        except ValueError as exc:
            raise ClientError(f"{action}: a published key is malformed: {exc}") from None
        keys[key.key_id] = key
    return keys


class Upload(NamedTuple):
    """The platform's answer to an upload."""

    receipt: dict[str, Any]
    replayed: bool  # the Idempotency-Key had been used: this is the first upload's receipt
    attempts: int


def _blocks(sealed: BinaryIO, size: int, progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    while block := sealed.read(UPLOAD_BLOCK_SIZE):
        sent += len(block)
        if sent > size:
            break
        yield block
        if progress is not None:
            progress(sent)
    if sent != size:
        raise ClientError("the file changed while it was being uploaded")


def upload(
    http: httpx.Client,
    *,
    tender_id: str,
    token: str,
    sealed: BinaryIO,
    idempotency_key: str,
    progress: Progress | None = None,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> Upload:
    """Stream a sealed file to the tender, retrying failures with the same Idempotency-Key."""
    size = file_size(sealed)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "Content-Length": str(size),
        "Idempotency-Key": idempotency_key,
    }
    action = "uploading the bid"
    delays = [*retry_delays, None]
    for attempt, delay in enumerate(delays, start=1):
        sealed.seek(0)
        try:
            response = http.post(
                f"{API}/tenders/{tender_id}/bids",
                content=_blocks(sealed, size, progress),
                headers=headers,
            )
        except _RETRIED_ERRORS as exc:
            if delay is None:
                raise ClientError(
                    f"{action} failed {attempt} times, last: {_describe(exc)}; "
                    f"retry with --idempotency-key {idempotency_key} to avoid a second version"
                ) from None
            sleep(delay)
            continue
        except httpx.HTTPError as exc:
            raise _unreachable(http, exc) from None
        if response.status_code >= 500 and delay is not None:
            sleep(delay)
            continue
        if response.status_code not in (200, 201):
            raise _error(response, action)
        receipt = _json(response, action)
        if not isinstance(receipt, dict):
            raise ClientError(f"{action}: the server's answer is not a receipt")
        return Upload(receipt, replayed=response.status_code == 200, attempts=attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


# --- receipts ------------------------------------------------------------------------------


class Submission(NamedTuple):
    """An accepted bid: its receipt and what, if anything, is wrong with that receipt."""

    receipt: dict[str, Any]
    replayed: bool
    problems: list[str]


def check_receipt(
    receipt: object,
    keys: Mapping[str, VerifyKey],
    *,
    tender_id: str,
    sha256: str,
    size: int,
    header_sha256: str | None = None,
) -> list[str]:
    """What is wrong with the receipt of an upload: its signature, or not matching the file
    (its digest, size and, when given, the digest of its age header)."""
    problems = receipt_problems(receipt, keys)
    body = receipt.get("body") if isinstance(receipt, Mapping) else None
    if isinstance(body, Mapping):
        expected: dict[str, object] = {
            "kind": "bid", "tender_id": tender_id, "sha256": sha256, "size": size
        }  # fmt: skip
        if header_sha256 is not None:
            # The pin `bidding reveal` relies on: it must name the header sent, not another.
            expected["header_sha256"] = header_sha256
        for name, value in expected.items():
            if body.get(name) != value:
                problems.append(f"the receipt says {name} {body.get(name)!r}, not {value!r}")
        if type(body.get("version")) is not int:
            problems.append("the receipt has no version number")
    return problems


def submit(
    http: httpx.Client,
    *,
    tender_id: str,
    token: str,
    sealed: BinaryIO,
    idempotency_key: str,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Submission:
    """Upload a sealed bid and check its receipt against the published keys and the file."""
    sealed.seek(0)
    digest = hashlib.sha256()
    while block := sealed.read(UPLOAD_BLOCK_SIZE):
        digest.update(block)
    sha256, size = digest.hexdigest(), file_size(sealed)
    header = sealed_header_sha256(sealed)
    uploaded = upload(
        http,
        tender_id=tender_id,
        token=token,
        sealed=sealed,
        idempotency_key=idempotency_key,
        progress=progress,
        sleep=sleep,
    )
    try:
        keys = fetch_keys(http)
    except ClientError as exc:
        # The bid is in: the receipt must still reach the bidder, marked as unchecked.
        return Submission(uploaded.receipt, uploaded.replayed, [f"not checked: {exc}"])
    problems = check_receipt(
        uploaded.receipt, keys, tender_id=tender_id, sha256=sha256, size=size, header_sha256=header
    )
    return Submission(uploaded.receipt, uploaded.replayed, problems)


def sealed_header_sha256(sealed: BinaryIO) -> str | None:
    """The digest of a sealed file's age header, as its receipt pins it; None if the file
    does not start with one (the platform refuses it). The file is left rewound."""
    sealed.seek(0)
    start = sealed.read(age.MAX_HEADER_BYTES + 1)
    sealed.seek(0)
    try:
        length = age.header_length(start)
    except age.HeaderError:
        return None
    return None if length is None else header_sha256(start[:length])


def receipt_filename(tender_id: str, receipt: Mapping[str, Any]) -> str:
    """The default name of a receipt file: `receipt-<tender>-v<version>.json`, with
    `-withdrawal` before `.json` for a withdrawal (it shares its bid's version), as the
    bidder's web page names them too."""
    body = receipt.get("body")
    version = body.get("version") if isinstance(body, Mapping) else None
    if type(version) is not int:
        return f"receipt-{tender_id}.json"
    kind = "-withdrawal" if body.get("kind") == "withdrawal" else ""  # type: ignore[union-attr]
    return f"receipt-{tender_id}-v{version}{kind}.json"


def receipt_json(receipt: Mapping[str, Any]) -> bytes:
    """A receipt as it is saved: indented JSON, in UTF-8."""
    try:
        return (json.dumps(receipt, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from the server: escaped, the receipt is kept exactly as answered.
        return (json.dumps(receipt, indent=2) + "\n").encode("ascii")


def save_receipt(receipt: Mapping[str, Any], path: Path) -> None:
    """Write the receipt to path as bidding.files.open_output writes: whole, or not at all."""
    with files.open_output(path, mode=RECEIPT_FILE_MODE) as output:
        output.write(receipt_json(receipt))


def load_receipt(path: Path) -> Any:
    """A receipt file's JSON, unchecked."""
    try:
        return parse_json(files.read_limited(path, MAX_RECEIPT_BYTES).decode("utf-8"))
    except files.TooLargeError:
        raise ClientError(f"{path}: too large for a receipt (at most 1 MiB)") from None
    except UnicodeDecodeError:
        raise ClientError(f"{path}: not a JSON receipt (not UTF-8 text)") from None
    except ValueError as exc:
        raise ClientError(f"{path}: not a JSON receipt ({exc})") from None


class Inclusion(NamedTuple):
    """Whether the tender's sealed log holds a receipt: True, False, or None (not yet)."""

    proven: bool | None
    detail: str


class ReceiptCheck(NamedTuple):
    """The outcome of checking a receipt; inclusion is None when the receipt is not genuine."""

    problems: list[str]
    key_id: str
    inclusion: Inclusion | None


def check_inclusion(
    http: httpx.Client, receipt: Mapping[str, Any], keys: Mapping[str, VerifyKey]
) -> Inclusion:
    """Prove a genuine receipt's leaf is in the tender's log, under its signed tree head."""
    tender_id = tender_id_text(str(receipt["body"].get("tender_id")))
    action = "reading the tender's log"
    response = _get(http, f"{API}/tenders/{tender_id}/log/head", action)
    if response.status_code in (404, 409):
        return Inclusion(None, NOT_YET_PROVABLE)
    if response.status_code != 200:
        raise _error(response, action)
    signed = _json(response, action)
    try:
        head = signed["tree_head"]
        size, root = head["tree_size"], bytes.fromhex(head["root_hash"])
        key_id, signature = signed["key_id"], signed["signature"]
    except (TypeError, KeyError, ValueError):
        raise ClientError(f"{action}: the tree head is malformed") from None
    if not verify_document(head, key_id=key_id, signature=signature, keys=keys):
        return Inclusion(False, "the log's tree head is not signed by a published key")
    if head.get("tender_id") != tender_id:
        return Inclusion(False, "the log's tree head is of another tender")
    sealed_at = head.get("sealed_at")
    response = _get(
        http, f"{API}/tenders/{tender_id}/log/proof", action, leaf_hash=receipt["leaf_hash"]
    )
    if response.status_code == 404:
        return Inclusion(False, f"the log sealed at {sealed_at} does not hold this receipt")
    if response.status_code == 409:
        return Inclusion(None, NOT_YET_PROVABLE)
    if response.status_code != 200:
        raise _error(response, action)
    answer = _json(response, action)
    try:
        index, proof = answer["leaf_index"], [bytes.fromhex(p) for p in answer["proof"]]
        proof_size = answer["tree_size"]
    except (TypeError, KeyError, ValueError):
        raise ClientError(f"{action}: the inclusion proof is malformed") from None
    proven = proof_size == size and merkle.verify_inclusion(
        leaf_hash=bytes.fromhex(receipt["leaf_hash"]),
        index=index,
        tree_size=size,
        proof=proof,
        root=root,
    )
    if not proven:
        return Inclusion(False, f"the proof does not place this receipt in the log ({size} leaves)")
    return Inclusion(True, f"ok (leaf {index + 1} of {size}, log sealed at {sealed_at})")


def verify_receipt(http: httpx.Client, receipt: object) -> ReceiptCheck:
    """Check a receipt's signature with the platform's keys, then its place in the log."""
    keys = fetch_keys(http)
    problems = receipt_problems(receipt, keys)
    if problems:
        return ReceiptCheck(problems, "", None)
    assert isinstance(receipt, Mapping)  # receipt_problems found none
    return ReceiptCheck([], receipt["key_id"], check_inclusion(http, receipt, keys))


def verify_receipt_file(http: httpx.Client, path: Path) -> ReceiptCheck:
    """verify_receipt on a receipt file."""
    return verify_receipt(http, load_receipt(path))


# --- the bidder's own key ------------------------------------------------------------------


def _call(
    http: httpx.Client, method: str, path: str, action: str, token: str, body: object = None
) -> Any:
    try:
        response = http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise _unreachable(http, exc) from None
    if response.status_code != 200:
        raise _error(response, action)
    return _json(response, action)


def check_key(
    http: httpx.Client, *, token: str, identity: age.Identity, register: bool = False
) -> dict[str, Any]:
    """Prove that the identity opens what is sealed to the organization's registered recipient.

    With `register`, the identity's recipient is registered first if it is not the one in use.
    Returns the organization's keys as the platform then shows them.
    """
    recipient = str(identity.recipient)
    keys = _call(http, "GET", f"{API}/me/keys", "reading your keys", token)
    registered = keys.get("current") if isinstance(keys, dict) else None
    if not isinstance(keys, dict) or not isinstance(registered, dict | None):
        raise ClientError("reading your keys: the server's answer is malformed")
    current = registered.get("recipient") if registered else None
    if current != recipient:
        if not register:
            registered = (
                f"the registered recipient is {current}" if current else "none is registered"
            )
            raise ClientError(
                f"this identity's recipient is {recipient}, but {registered} "
                "(add --register to register it)"
            )
        _call(
            http, "PUT", f"{API}/me/keys", "registering your key", token, {"recipient": recipient}
        )
    asked = _call(http, "POST", f"{API}/me/keys/challenge", "asking for a key check", token)
    try:
        sealed = base64.b64decode(asked["challenge"], validate=True)
    except (TypeError, KeyError, ValueError):
        raise ClientError("asking for a key check: the challenge is malformed") from None
    try:
        plaintext = age.unseal_bytes(sealed, [identity]).decode("utf-8")
    except (age.AgeError, UnicodeDecodeError) as exc:
        raise ClientError(f"the challenge does not open with this identity: {exc}") from None
    answered: dict[str, Any] = _call(
        http, "POST", f"{API}/me/keys/challenge/answer", "answering the key check", token,
        {"answer": plaintext},
    )  # fmt: skip
    return answered


# --- revealing a bid in the decryption window (bidder mode) ---------------------------------

OLD_RECEIPT_FLAG = "--allow-old-receipt"


class HeaderRefused(ClientError):
    """No file key is computed: the bidder's receipt cannot vouch for the header served."""


_RECEIPT_FILE = re.compile(
    r"receipt-(?P<tender>[0-9a-f-]{36})-v(?P<version>[1-9][0-9]{0,9})(?P<withdrawal>-withdrawal)?"
    r"\.json"
)


def newest_receipt(folder: Path, tender_id: str) -> Path:
    """The newest bid receipt `bidding submit` saved for the tender in the folder, by its
    default name `receipt-<tender>-v<N>.json` (highest N); ClientError if there is none, or
    if the folder also holds the withdrawal receipt of that version (nothing to reveal)."""
    bids: dict[int, Path] = {}
    withdrawn: dict[int, Path] = {}
    for path in folder.iterdir():
        named = _RECEIPT_FILE.fullmatch(path.name)
        if named is None or named["tender"] != tender_id:
            continue
        (withdrawn if named["withdrawal"] else bids)[int(named["version"])] = path
    if not bids:
        raise ClientError(
            f"no receipt-{tender_id}-v<N>.json in {folder}: give the receipt `bidding submit` "
            "saved with --receipt RECEIPT.json"
        )
    newest = max(bids)
    later = [version for version in withdrawn if version >= newest]
    if later:
        raise ClientError(
            f"{withdrawn[max(later)]}: you withdrew version {max(later)}, so there is no bid "
            "to reveal; give another receipt with --receipt RECEIPT.json if that is not so"
        )
    return bids[newest]


def pinned_header(
    receipt: object,
    keys: Mapping[str, VerifyKey],
    *,
    tender_id: str,
    allow_old_receipt: bool = False,
) -> str | None:
    """The header digest the bidder's own receipt pins for this tender's bid; HeaderRefused if
    the receipt cannot vouch for it. None only for a receipt made before receipts pinned the
    header, and only when `allow_old_receipt` says to reveal without that check."""
    problems = receipt_problems(receipt, keys)
    if problems:
        raise HeaderRefused(f"the receipt is not genuine: {'; '.join(problems)}")
    assert isinstance(receipt, Mapping)  # receipt_problems found none
    body = receipt["body"]
    if body.get("tender_id") != tender_id:
        raise HeaderRefused(f"the receipt is of tender {body.get('tender_id')}, not {tender_id}")
    if body.get("kind") != "bid":
        raise HeaderRefused(
            f"the receipt is of a {body.get('kind')}, not of a bid: give the receipt of the "
            "bid to reveal"
        )
    pinned = body.get("header_sha256")
    if isinstance(pinned, str):
        return pinned
    if pinned is not None:
        raise HeaderRefused(f"the receipt's header_sha256 is not a digest: {pinned!r}")
    if not allow_old_receipt:
        raise HeaderRefused(
            "the receipt names no header_sha256 (it was made before receipts pinned the bid's "
            "header), so the header the platform serves cannot be checked against it; "
            f"add {OLD_RECEIPT_FLAG} to reveal without that check"
        )
    return None


def reveal(
    http: httpx.Client,
    *,
    token: str,
    tender_id: str,
    identities: Sequence[age.Identity],
    receipt: object,
    allow_old_receipt: bool = False,
) -> dict[str, Any]:
    """Compute the bid's file key from its header with the identity, here, and reveal it.

    The header is served by the platform; the key is computed only if it is the header the
    bidder's own receipt pins: a platform that served the header of another bid sealed to
    the same key (in a tender still taking bids, or a replaced version) would otherwise be
    handed that bid's file key before its time. Only the 16-byte file key of this one bid
    leaves the machine, never the identity.
    """
    pinned = pinned_header(
        receipt, fetch_keys(http), tender_id=tender_id, allow_old_receipt=allow_old_receipt
    )
    answer = _call(
        http, "GET", f"{API}/tenders/{tender_id}/bids/mine/header", "reading your bid", token
    )
    try:
        served = base64.b64decode(answer["header"], validate=True)
    except (TypeError, KeyError, ValueError):
        raise ClientError("reading your bid: the header is malformed") from None
    if pinned is not None and header_sha256(served) != pinned:
        version = cast(Mapping[str, Any], receipt)["body"].get("version")
        raise HeaderRefused(
            f"refused: the platform served a bid header (sha256 {header_sha256(served)[:16]}…) "
            f"that is not the one your receipt of version {version} pins "
            f"({pinned[:16]}…); no file key was computed or sent"
        )
    try:
        header = age.parse_header(served)
    except age.AgeError:
        raise ClientError("reading your bid: the header is malformed") from None
    try:
        file_key = header.file_key(identities)
    except age.AgeError as exc:
        raise ClientError(f"this identity does not open your bid: {exc}") from None
    try:
        response = http.post(
            f"{API}/tenders/{tender_id}/opening/reveal",
            json={"file_key": base64.b64encode(file_key).decode("ascii")},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        raise _unreachable(http, exc) from None
    if response.status_code != 201:
        raise _error(response, "revealing the file key")
    event: dict[str, Any] = _json(response, "revealing the file key")
    return event
