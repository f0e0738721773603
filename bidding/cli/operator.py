"""The operator's commands: the service, its database, its accounts and its audit trail.

Each command imports the service where it runs, so that loading this module for the parser
costs a bidder's command nothing.
"""

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bidding.cli.errors import CommandError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncSession

    from bidding.audit.anchors import Anchor, AnchorCheck
    from bidding.audit.service import Verification
    from bidding.settings import Settings


def add_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """The operator's commands, as subcommands of `bidding`."""
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


class _RefusedPassword(argparse.Action):
    """--password, refused without repeating it: any user on the machine reads a command line."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            "--password is not taken: a command line is visible to every user of the machine; "
            "type the password when asked, or pipe it in with --password-stdin"
        )


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
