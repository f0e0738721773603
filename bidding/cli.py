"""The `bidding` command: keys, sealing, submitting bids, the service and its maintenance.

argparse rather than a richer framework: `bidding unseal` is timed against `age -d`, and
start-up time counts for every file a bidder seals.
"""

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

from bidding import files
from bidding.crypto import age

if TYPE_CHECKING:
    # Imported where used: the service's imports would slow every `bidding unseal`.
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncSession

    from bidding import client
    from bidding.audit.anchors import Anchor, AnchorCheck
    from bidding.audit.service import Verification
    from bidding.settings import Settings

# Every -o follows bidding.files.open_output; said once, in each such command's --help.
OUTPUT_RULE = (
    "-o FILE: a regular file, or a new one, is written beside it and renamed over it only once "
    "complete (a failure leaves it untouched; a replaced file keeps its mode); a device, FIFO "
    "or terminal such as /dev/null is written in place, never replaced; a symbolic link is "
    "followed and the rule applied to its final target."
)
# An identity is a 74-character line; a file of many with comments stays far below this.
MAX_IDENTITY_FILE_BYTES = 1024 * 1024
# Below this size a progress bar only flickers.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024


class CommandError(Exception):
    """A failure reported as one line on stderr and exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts read the last line of stderr.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bidding",
        description="Contactless public-resource bidding: seal bids, open them, verify results.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen",
        help="generate an age identity",
        description=keygen_command.__doc__,
        epilog=f"{OUTPUT_RULE} An existing regular file is never replaced by a new key.",
    )
    keygen.add_argument("-o", "--output", type=Path, help="write to this new file (mode 0600)")
    keygen.set_defaults(run=keygen_command)

    seal = commands.add_parser(
        "seal",
        help="seal a file to recipients",
        description=seal_command.__doc__,
        epilog=OUTPUT_RULE,
    )
    seal.add_argument(
        "-r", "--recipient", dest="recipients", action="append", required=True,
        metavar="RECIPIENT", help="an age1… recipient; repeat for several",
    )  # fmt: skip
    seal.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    seal.add_argument("input", nargs="?", type=Path, metavar="INPUT", help="default: stdin")
    seal.set_defaults(run=seal_command)

    unseal = commands.add_parser(
        "unseal",
        help="unseal an age file",
        description=unseal_command.__doc__,
        epilog=OUTPUT_RULE,
    )
    unseal.add_argument(
        "-i", "--identity", dest="identities", action="append", required=True, type=Path,
        metavar="FILE", help="an identity file, as `bidding keygen` writes; repeat for several",
    )  # fmt: skip
    unseal.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    unseal.add_argument("input", nargs="?", type=Path, metavar="INPUT", help="default: stdin")
    unseal.set_defaults(run=unseal_command)

    serve = commands.add_parser(
        "serve", help="run the platform's web service", description=serve_command.__doc__
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--proxy-headers", action=argparse.BooleanOptionalAction, default=True,
        help="believe X-Forwarded-For and X-Forwarded-Proto from the trusted proxies (default)",
    )  # fmt: skip
    serve.add_argument(
        "--forwarded-allow-ips", metavar="ADDRESSES",
        help="comma-separated addresses or networks of the trusted proxies, * for any "
        "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )  # fmt: skip
    serve.set_defaults(run=serve_command)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help="apply the migrations", description=db_upgrade_command.__doc__
    )
    upgrade.set_defaults(run=db_upgrade_command)

    users = commands.add_parser("users", help="accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    create = users_commands.add_parser(
        "create", help="create an account of any role", description=users_create_command.__doc__
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password", action=_RefusedPassword, help=argparse.SUPPRESS)
    create.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from the first line of stdin (default: asked for, twice, on "
        "the terminal); it is never taken from the command line, where others can read it",
    )  # fmt: skip
    create.add_argument(
        "--role", required=True, choices=["admin", "officer", "supervisor", "bidder"]
    )
    create.add_argument("--name", dest="display_name", help="display name (default: the email)")
    create.add_argument("--org-name", help="organization name (all roles but admin)")
    create.add_argument("--org-code", help="its 18-character unified social credit code")
    create.set_defaults(run=users_create_command)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_commands.add_parser(
        "verify",
        help="check every chain of the audit trail",
        description=audit_verify_command.__doc__,
    )
    verify.add_argument(
        "--anchors", type=Path, metavar="FILE",
        help="anchors kept outside the database (GET /api/v1/audit/anchors, saved as JSON)",
    )  # fmt: skip
    verify.set_defaults(run=audit_verify_command)

    submit = commands.add_parser(
        "submit",
        help="upload a sealed bid, keep its receipt",
        description=submit_command.__doc__,
        epilog=OUTPUT_RULE,
    )
    submit.add_argument("--server", required=True, metavar="URL", help="the platform's address")
    submit.add_argument("--tender", required=True, metavar="ID", help="the tender's id")
    _add_account(submit)
    submit.add_argument(
        "--idempotency-key", metavar="KEY",
        help="the key of an earlier attempt, so a repeat is not a new version (default: new)",
    )  # fmt: skip
    submit.add_argument(
        "-o", "--output", type=Path, metavar="RECEIPT.json",
        help="save the receipt here (default: receipt-<tender>-v<version>.json)",
    )  # fmt: skip
    submit.add_argument(
        "--seal", action="store_true", help="seal the bid form given by --form, then upload"
    )
    submit.add_argument("--form", type=Path, metavar="BID.json", help="with --seal: the bid form")
    submit.add_argument(
        "--attach", dest="attachments", action="append", type=Path, default=[], metavar="FILE",
        help="with --seal: a document sealed with the form; repeat for several",
    )  # fmt: skip
    submit.add_argument(
        "input", nargs="?", type=Path, metavar="FILE", help="a sealed bid (an age file)"
    )
    submit.set_defaults(run=submit_command, usage_error=submit.error)

    check_key = commands.add_parser(
        "check-key",
        help="prove the organization's registered key opens what is sealed to it",
        description=check_key_command.__doc__,
    )
    check_key.add_argument("--server", required=True, metavar="URL", help="the platform")
    _add_account(check_key)
    check_key.add_argument(
        "-i", "--identity", required=True, type=Path, metavar="FILE",
        help="the organization's identity file (from `bidding keygen`); it is never sent",
    )  # fmt: skip
    check_key.add_argument(
        "--register", action="store_true",
        help="register the identity's recipient first if it is not the one in use",
    )  # fmt: skip
    check_key.set_defaults(run=check_key_command, usage_error=check_key.error)

    reveal = commands.add_parser(
        "reveal",
        help="open your bid in the decryption window with your identity (bidder mode)",
        description=reveal_command.__doc__,
    )
    reveal.add_argument("--server", required=True, metavar="URL", help="the platform")
    reveal.add_argument("--tender", required=True, metavar="ID", help="the tender's id")
    _add_account(reveal)
    reveal.add_argument(
        "-i", "--identity", required=True, type=Path, metavar="FILE",
        help="the organization's identity file; only the bid's file key is sent",
    )  # fmt: skip
    reveal.add_argument(
        "--receipt", type=Path, metavar="RECEIPT.json",
        help="the receipt `bidding submit` saved for the bid (default: the newest "
        "receipt-<tender>-v<N>.json in the current folder)",
    )  # fmt: skip
    reveal.add_argument(
        "--allow-old-receipt", action="store_true",
        help="reveal even if the receipt, made before receipts pinned the bid's header, "
        "names no header_sha256: the header served is then not checked",
    )  # fmt: skip
    reveal.set_defaults(run=reveal_command, usage_error=reveal.error)

    verify_receipt = commands.add_parser(
        "verify-receipt",
        help="check a receipt's signature and its place in the log",
        description=verify_receipt_command.__doc__,
    )
    verify_receipt.add_argument("receipt", type=Path, metavar="RECEIPT.json")
    verify_receipt.add_argument("--server", required=True, metavar="URL", help="the platform")
    verify_receipt.set_defaults(run=verify_receipt_command)
    return parser


class _RefusedPassword(argparse.Action):
    """--password, refused without repeating it: any user on the machine reads a command line."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            "--password is not taken: a command line is visible to every user of the machine; "
            "type the password when asked, or pipe it in with --password-stdin"
        )


def _add_account(command: argparse.ArgumentParser) -> None:
    """--token, or --email with the password asked for (or read with --password-stdin)."""
    account = command.add_mutually_exclusive_group(required=True)
    account.add_argument("--token", help="a bearer token (POST /api/v1/auth/token)")
    account.add_argument("--email", help="sign in as this bidder; the password is asked for")
    command.add_argument(
        "--password-stdin", action="store_true", help="with --email: read the password from stdin"
    )


def keygen_command(args: argparse.Namespace) -> None:
    """Generate an age X25519 identity, with its recipient in a comment line."""
    identity = age.Identity.generate()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = f"# created: {created}\n# public key: {identity.recipient}\n{identity}\n"
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(text)
        if not sys.stdout.isatty():
            print(f"Public key: {identity.recipient}", file=sys.stderr)
        return
    try:
        # Never replaces an existing key; 0600: the identity is a secret.
        with files.open_output(output, exclusive=True) as key_file:
            key_file.write(text.encode("ascii"))
    except FileExistsError:
        raise CommandError(f"{output} already exists; refusing to overwrite a key file") from None
    print(f"Public key: {identity.recipient}", file=sys.stderr)


def seal_command(args: argparse.Namespace) -> None:
    """Seal INPUT (or stdin) to the recipients as an age file."""
    recipients = [age.Recipient.parse(text) for text in args.recipients]
    if args.output is None and sys.stdout.isatty():
        raise CommandError("refusing to write a sealed file to a terminal; use -o FILE or a pipe")
    with _streams(args.input, args.output) as (src, size, dst), _progress(size) as progress:
        if dst.isatty():
            raise CommandError("refusing to write a sealed file to a terminal")
        age.seal(src, dst, recipients, progress=progress)


def unseal_command(args: argparse.Namespace) -> None:
    """Unseal an age file from INPUT (or stdin) with the identities."""
    identities = [identity for path in args.identities for identity in _read_identities(path)]
    with _streams(args.input, args.output) as (src, size, dst), _progress(size) as progress:
        try:
            age.unseal(src, dst, identities, progress=progress)
        except age.AgeError as exc:
            if args.input is None:
                raise
            raise CommandError(f"{args.input}: {exc}") from None


def _read_identities(path: Path) -> list[age.Identity]:
    """The identities of an identity file; CommandError with the file's name if unreadable."""
    try:
        return age.parse_identities(files.read_limited(path, MAX_IDENTITY_FILE_BYTES).decode())
    except files.TooLargeError:
        raise CommandError(f"{path}: too large for an identity file (at most 1 MiB)") from None
    except age.KeyFormatError as exc:
        raise CommandError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a text identity file") from None
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None


def serve_command(args: argparse.Namespace) -> None:
    """Serve the platform; the embedded SQLite database is migrated first.

    A PostgreSQL database is migrated by `bidding db upgrade` before the instances start,
    so that several instances never race to migrate it.
    """
    import asyncio

    import uvicorn

    from bidding.app import create_app
    from bidding.keys import load_platform_keys

    settings = _settings()
    try:
        # Read now, for one error line: in the app's start-up a bad key file is a traceback.
        load_platform_keys(settings)
    except (ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    if settings.resolved_database_url.startswith("sqlite"):
        asyncio.run(_upgrade(settings))
    if settings.demo and settings.environment != "production":
        asyncio.run(_seed_demo(settings, f"http://{args.host}:{args.port}"))
    from bidding.opening.live import MAX_CLIENT_FRAME_BYTES

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        # Behind a TLS proxy the client's address (rate limits) and scheme (Secure cookies,
        # HSTS) come from its headers, believed only from the addresses trusted here.
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        # A watcher's messages are small: larger frames are refused by the protocol itself.
        ws_max_size=MAX_CLIENT_FRAME_BYTES,
        # Compression would be paid per connection for every event sent to thousands.
        ws_per_message_deflate=False,
    )


async def _seed_demo(settings: "Settings", url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    from bidding import demo
    from bidding.keys import load_platform_keys

    keys = load_platform_keys(settings)
    try:
        async with _session(settings) as session:
            accounts = await demo.seed(session=session, keys=keys, settings=settings)
    except IntegrityError:
        return  # another instance seeded the same empty database at the same moment
    if accounts:
        lines = [
            "Demo data created (shown once; BIDDING_DEMO=0 turns this off). "
            f"Pages: {url}/ (sign in with these) API: {url}/docs"
        ]
        lines += [f"  {a.role.value:<10} {a.email:<28} {a.password}" for a in accounts]
        lines.append(
            "The second demo tender is opened by its bidders: their keys appear in "
            f"{settings.data_dir / 'demo-keys'} as they bid (try `bidding reveal`)."
        )
        print("\n".join(lines), file=sys.stderr)


def db_upgrade_command(args: argparse.Namespace) -> None:
    """Apply every migration the database lacks (BIDDING_DATABASE_URL, or the SQLite default)."""
    import asyncio

    settings = _settings()
    asyncio.run(_upgrade(settings))
    print("database is up to date", file=sys.stderr)


def users_create_command(args: argparse.Namespace) -> None:
    """Create an account of any role; officers, supervisors and bidders need an organization."""
    import asyncio

    password = _new_password(args)
    settings = _settings()
    if settings.resolved_database_url.startswith("sqlite"):
        asyncio.run(_upgrade(settings))
    email = asyncio.run(_create_user(settings, args, password))
    print(f"created {args.role} {email}", file=sys.stderr)


def _new_password(args: argparse.Namespace) -> str:
    """The new account's password: the first line of stdin, or typed twice on the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        # getpass would look for a terminal elsewhere, or read stdin with a warning.
        raise CommandError("no terminal to ask the password on; pipe it in with --password-stdin")
    else:
        import getpass

        password = getpass.getpass(f"Password for {args.email}: ")
        if password and getpass.getpass("The same password again: ") != password:
            raise CommandError("the two passwords differ; nothing was created")
    if not password:
        raise CommandError("no password given")
    return password


async def _create_user(settings: "Settings", args: argparse.Namespace, password: str) -> str:
    from bidding.auth import service as auth_service
    from bidding.auth.models import Role

    async with _session(settings) as session:
        user = await auth_service.create_user(
            session=session,
            email=args.email,
            password=password,
            display_name=args.display_name or args.email,
            role=Role(args.role),
            organization_name=args.org_name,
            organization_code=args.org_code,
            via="cli",
        )
        return user.email


def audit_verify_command(args: argparse.Namespace) -> None:
    """Walk every chain of the audit trail in order, recompute each entry's hash and check
    that positions are gapless and each entry links to the one before; then check the heads
    the platform signed: every anchor (its signature with the platform's key, and that the
    chain's entry at its size has its hash), the audit head in every signed opening record,
    and with --anchors, copies of the anchors kept outside the database, which must also
    still be in it.

    Prints one line: the entries of each chain, its head hash and the largest size a signed
    head confirms. A broken trail is one error line naming the first broken link: the chain,
    the position, and whether an entry was edited, missing, reordered or inserted; a chain
    that contradicts a signed head, one line naming the chain, the anchored size and what
    does not match. The exit status is then 1.
    """
    import asyncio
    import json

    from bidding.audit.anchors import parse_published

    outside = []
    if args.anchors is not None:
        try:
            document = json.loads(args.anchors.read_bytes())
        except (ValueError, RecursionError):
            raise CommandError(f"{args.anchors}: not JSON") from None
        try:
            outside = parse_published(document)
        except ValueError as exc:
            raise CommandError(f"{args.anchors}: {exc}") from None
    verification, signed = asyncio.run(_verify_audit(_settings(), outside))
    if verification.broken:
        first, *others = verification.broken
        more = f"; {len(others)} more chains broken" if others else ""
        raise CommandError(f"audit trail broken: {first}{more}")
    if signed.contradictions:
        first_contradiction, *rest = signed.contradictions
        more = f"; {len(rest)} more" if rest else ""
        raise CommandError(f"audit trail contradicts a signed head: {first_contradiction}{more}")
    chains = verification.chains
    total = sum(head.size for head in chains)
    summary = f"audit trail intact: {total} entries in {len(chains)} chains"
    if signed.checked:
        summary += f", borne out by {signed.checked} signed heads"
    heads = []
    for head in chains:
        anchored = signed.anchored.get(head.chain)
        mark = "" if anchored is None else f", anchored at {anchored}"
        heads.append(f"{head.chain} {head.size} (head {head.head_hash}{mark})")
    print(": ".join([summary, ", ".join(heads)]) if heads else summary)


async def _verify_audit(
    settings: "Settings", outside: "Sequence[Anchor]" = ()
) -> "tuple[Verification, AnchorCheck]":
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from bidding.audit import anchors as audit_anchors
    from bidding.audit import service as audit_service
    from bidding.crypto.custody import b64decode_strict
    from bidding.crypto.signing import SigningKey
    from bidding.db import create_engine, create_session_factory
    from bidding.opening import service as opening_service

    url = settings.resolved_database_url
    sqlite = url.startswith("sqlite")
    if sqlite:
        path = Path(make_url(url).database or "")
        if not path.is_file():
            raise CommandError(f"{path}: no database here")
    # The signatures are checked with the public half of the platform's key file; without
    # it, every signed head is reported as unchecked.
    keys = None
    key_path = settings.signing_key_path
    if key_path.exists():
        try:
            text = key_path.read_text(encoding="ascii").strip()
            public = SigningKey.from_private_bytes(b64decode_strict(text)).public_key
        except ValueError:
            raise CommandError(f"{key_path}: not a signing key file") from None
        keys = {public.key_id: public}
    # One snapshot for the whole walk: entries appended meanwhile must not look inserted.
    # SQLite's reading engine has one (WAL) without holding up writers.
    engine = create_engine(url, reading=sqlite)
    reader = engine if sqlite else engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        async with create_session_factory(reader)() as session, session.begin():
            verification = await audit_service.verify(session=session)
            signed = await audit_anchors.check(
                session=session,
                verification=verification,
                keys=keys,
                records=opening_service.signed_records,
                outside=outside,
            )
            return verification, signed
    except DBAPIError as exc:
        raise CommandError(f"cannot read the audit trail: {exc.orig}") from None
    finally:
        await engine.dispose()


def submit_command(args: argparse.Namespace) -> None:
    """Upload a sealed bid to a tender and save the signed receipt.

    With --seal, the bid form (and any attachments, in a ZIP) is checked against the tender's
    form and sealed to the tender's recipient first; no plaintext is written to disk. A failed
    upload is retried with the same Idempotency-Key, so it never makes a second version.
    """
    import uuid

    from bidding import client

    usage_error: Callable[[str], NoReturn] = args.usage_error
    if args.seal == (args.input is not None):
        usage_error("give either a sealed FILE or --seal --form BID.json")
    if args.seal and args.form is None:
        usage_error("--seal needs --form BID.json")
    if not args.seal and (args.form is not None or args.attachments):
        usage_error("--form and --attach go with --seal")
    if args.password_stdin and args.email is None:
        usage_error("--password-stdin goes with --email")
    idempotency_key = args.idempotency_key or str(uuid.uuid4())
    if not 1 <= len(idempotency_key) <= 128 or not all("!" <= c <= "~" for c in idempotency_key):
        usage_error("--idempotency-key must be 1 to 128 printable ASCII characters")
    if args.output is not None and not args.output.resolve().parent.is_dir():
        # Found out now, not once the bid is in and its receipt has nowhere to go.
        raise CommandError(f"{args.output}: its folder does not exist")
    with contextlib.ExitStack() as receipt_output:
        # -o is opened before the upload: an output that cannot be written is found out now,
        # not once the bid is in and its receipt has nowhere to go.
        receipt_file = None
        if args.output is not None:
            receipt_file = receipt_output.enter_context(
                files.open_output(args.output, mode=client.RECEIPT_FILE_MODE)
            )
        submission, tender_id = _submit(args, idempotency_key)
        if receipt_file is not None:
            # Saved even when it does not check out: it is the bidder's evidence of what was
            # answered.
            receipt_file.write(client.receipt_json(submission.receipt))
    path = args.output or Path(client.receipt_filename(tender_id, submission.receipt))
    if receipt_file is None:
        try:
            client.save_receipt(submission.receipt, path)
        except OSError as exc:
            sys.stdout.buffer.write(client.receipt_json(submission.receipt))
            sys.stdout.buffer.flush()
            raise CommandError(
                f"the bid is in, but its receipt cannot be saved to {path} "
                f"({exc.strerror or exc}); it is printed on stdout instead: keep it"
            ) from None
    if submission.problems:
        raise CommandError(
            f"the receipt saved to {path} does not check out: {'; '.join(submission.problems)}"
        )
    body = submission.receipt["body"]
    retried = " (an earlier attempt had already arrived)" if submission.replayed else ""
    print(
        f"bid received{retried}: version {body['version']}, sha256 {body['sha256'][:16]}…, "
        f"received at {body.get('received_at')}; receipt saved to {path}"
    )


def _submit(args: argparse.Namespace, idempotency_key: str) -> "tuple[client.Submission, str]":
    """Seal (with --seal) and upload the bid; the platform's answer and the tender's id."""
    from bidding import client

    with _client_errors(), contextlib.ExitStack() as stack:
        tender_id = client.tender_id_text(args.tender)
        http = stack.enter_context(client.open_client(args.server))
        token = None
        if args.seal:
            # Signed in first: a tender opened by its bidders is sealed to the organization's
            # own registered recipient.
            token = args.token or client.sign_in(http, email=args.email, password=_password(args))
            sealed = stack.enter_context(
                client.prepare_bid(
                    http,
                    tender_id=tender_id,
                    form_path=args.form,
                    attachments=args.attachments,
                    token=token,
                )
            )
        else:
            sealed = stack.enter_context(args.input.open("rb"))
            try:
                client.check_sealed(sealed)
            except client.ClientError as exc:
                raise CommandError(f"{args.input}: {exc}") from None
        token = token or args.token
        token = token or client.sign_in(http, email=args.email, password=_password(args))
        with _progress(client.file_size(sealed)) as progress:
            submission = client.submit(
                http,
                tender_id=tender_id,
                token=token,
                sealed=sealed,
                idempotency_key=idempotency_key,
                progress=progress,
            )
    return submission, tender_id


def check_key_command(args: argparse.Namespace) -> None:
    """Check, days before an opening, that the organization's identity opens its bids.

    The platform seals a random value to the registered recipient; it is unsealed here with
    the identity file and the plaintext sent back. The identity itself never leaves this machine.
    """
    from bidding import client

    usage_error: Callable[[str], NoReturn] = args.usage_error
    if args.password_stdin and args.email is None:
        usage_error("--password-stdin goes with --email")
    identities = _read_identities(args.identity)
    if len(identities) != 1:
        raise CommandError(f"{args.identity}: holds {len(identities)} identities; give one")
    with _client_errors(), client.open_client(args.server) as http:
        token = args.token or client.sign_in(http, email=args.email, password=_password(args))
        keys = client.check_key(http, token=token, identity=identities[0], register=args.register)
    current = keys["current"]
    print(f"key verified: {current['recipient']} (at {current['verified_at']})")


def reveal_command(args: argparse.Namespace) -> None:
    """Open your bid during the tender's decryption window (online decryption, 在线解密).

    The bid's header is fetched (it is served to you alone) and checked against your own
    receipt of the bid: the file `bidding submit` saved, given with --receipt or else the
    newest receipt-<tender>-v<N>.json in the current folder. Only if the header is the one the
    receipt pins (header_sha256) is its 16-byte file key computed here with your identity and
    sent; the platform checks it against the header, decrypts and announces the bid. Any other
    header is refused and nothing is sent. A receipt made before receipts pinned the header is
    refused too, unless --allow-old-receipt accepts revealing without that check.
    """
    from bidding import client

    usage_error: Callable[[str], NoReturn] = args.usage_error
    if args.password_stdin and args.email is None:
        usage_error("--password-stdin goes with --email")
    identities = _read_identities(args.identity)
    with _client_errors(), client.open_client(args.server) as http:
        tender_id = client.tender_id_text(args.tender)
        path = args.receipt or client.newest_receipt(Path.cwd(), tender_id)
        receipt = client.load_receipt(path)
        token = args.token or client.sign_in(http, email=args.email, password=_password(args))
        try:
            event = client.reveal(
                http,
                token=token,
                tender_id=tender_id,
                identities=identities,
                receipt=receipt,
                allow_old_receipt=args.allow_old_receipt,
            )
        except client.HeaderRefused as exc:
            raise client.ClientError(f"{path}: {exc}") from None
    data = event.get("data", {})
    if event.get("type") == "bid.decrypted":
        print(f"bid opened: price {data.get('price')} (event {event.get('seq')})")
    else:
        print(f"bid opened but refused: {data.get('reason')}: {data.get('detail')}")


def verify_receipt_command(args: argparse.Namespace) -> None:
    """Check a receipt with the platform's published keys, then prove it is in the tender's log.

    The log is sealed at the deadline; before that, inclusion is reported as not yet provable.
    """
    from bidding import client

    with _client_errors(), client.open_client(args.server) as http:
        check = client.verify_receipt_file(http, args.receipt)
    if check.problems:
        raise CommandError(f"{args.receipt}: {'; '.join(check.problems)}")
    print(f"signature: ok (key {check.key_id})")
    assert check.inclusion is not None
    if check.inclusion.proven is False:
        sys.stdout.flush()
        raise CommandError(f"inclusion: {check.inclusion.detail}")
    print(f"inclusion: {check.inclusion.detail}")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"Password for {args.email}: ")
    if not password:
        raise CommandError("no password given")
    return password


@contextlib.contextmanager
def _client_errors() -> Iterator[None]:
    """The bidder client's refusals, as the command's one error line."""
    from bidding.client import ClientError

    try:
        yield
    except ClientError as exc:
        raise CommandError(str(exc)) from None


@contextlib.asynccontextmanager
async def _session(settings: "Settings") -> "AsyncIterator[AsyncSession]":
    """A session on the configured database that commits when the block succeeds.

    A refusal from a service (a taken email, a mistyped credit code) becomes one error line.
    """
    from bidding.db import create_engine, create_session_factory
    from bidding.errors import DomainError

    engine = create_engine(settings.resolved_database_url)
    try:
        async with (
            _database_errors(),
            create_session_factory(engine)() as session,
            session.begin(),
        ):
            yield session
    except DomainError as exc:
        raise CommandError(exc.detail) from None
    finally:
        await engine.dispose()


def _settings() -> "Settings":
    from pydantic import ValidationError

    from bidding.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "BIDDING_" + "_".join(str(part) for part in first["loc"]).upper()
        raise CommandError(f"{name}: {first['msg']}") from None
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise CommandError(f"BIDDING_DATA_DIR: {settings.data_dir} is not a folder")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


async def _upgrade(settings: "Settings") -> None:
    from bidding.db import create_engine
    from bidding.migrations import upgrade

    engine = create_engine(settings.resolved_database_url)
    try:
        async with _database_errors():
            await upgrade(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _database_errors() -> "AsyncIterator[None]":
    """A database the driver refuses (not a database, unreachable), as one error line."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        raise CommandError(f"cannot use the database: {exc.orig}") from None


@contextlib.contextmanager
def _streams(
    input_path: Path | None, output_path: Path | None
) -> Iterator[tuple[BinaryIO, int | None, BinaryIO]]:
    """The input with its size if known, and the output (see bidding.files.open_output)."""
    with contextlib.ExitStack() as stack:
        if input_path is None:
            src, size = sys.stdin.buffer, None
        else:
            src = stack.enter_context(input_path.open("rb"))
            size = os.fstat(src.fileno()).st_size
        if output_path is None:
            yield src, size, sys.stdout.buffer
            sys.stdout.buffer.flush()
            return
        with files.open_output(output_path) as dst:
            yield src, size, dst


class _ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.drawn_at = total, stream, 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.drawn_at >= 0.1 or done >= self.total:
            self.drawn_at = now
            fraction = min(done / self.total, 1.0)
            bar = "#" * int(fraction * 30)
            mib = 1024 * 1024
            self.stream.write(
                f"\r[{bar:<30}] {fraction:4.0%}  {done // mib}/{self.total // mib} MiB"
            )
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")


@contextlib.contextmanager
def _progress(size: int | None) -> Iterator[age.Progress | None]:
    if size is None or size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    bar = _ProgressBar(size, sys.stderr)
    try:
        yield bar
    finally:
        bar.finish()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: every failure ends with one line on stderr and a non-zero exit."""
    args = _build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except (CommandError, age.AgeError) as exc:
        _fail(str(exc))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other filters do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        _fail("interrupted", status=130)
    except Exception as exc:
        # The last guard of the one-line promise, for a hostile file or answer no check
        # foresaw: a traceback tells a bidder nothing, and scripts read the last line.
        _fail(f"unexpected {type(exc).__name__}: {str(exc)[:300]}")
    sys.exit(0)


def _fail(message: str, *, status: int = 1) -> NoReturn:
    print(f"bidding: error: {message}", file=sys.stderr)
    sys.exit(status)
