"""Tenders: drafts, publication with the opening key, amendments, cancellation, search.

Every state change is one conditional UPDATE (compare-and-set) on the tender row, so two
requests racing for the same tender cannot both win, and the loser is told why.
"""

import hashlib
import os
import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth.models import Organization, Role, User
from bidding.crypto import age, custody
from bidding.crypto.custody import MasterKey
from bidding.db import utcnow
from bidding.errors import (
    Conflict,
    EditedConcurrently,
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
)
from bidding.rules.terms import price_range_problem
from bidding.tenders.exceptions import (
    BiddingPeriodTooShort,
    DeadlineMovedEarlier,
    DeadlinePassed,
    DeadlineTooFar,
    NameTaken,
    NotADraft,
    NotAmendable,
    NotCancellable,
    NotEditable,
    ReferenceTaken,
    TooManyDocuments,
)
from bidding.tenders.models import Tender, TenderAmendment, TenderDocument, TenderStatus
from bidding.tenders.schemas import AMENDABLE_FIELDS, TenderCreate, TenderUpdate

OPENING_IDENTITY_PURPOSE = "opening-identity"
COEFFICIENT_SEED_PURPOSE = "coefficient-seed"
COEFFICIENT_SEED_SIZE = 32

# Statuses that anybody may see. A cancelled tender is public only if it was published first.
_PUBLIC_STATUSES = (
    TenderStatus.published,
    TenderStatus.opening,
    TenderStatus.opened,
    TenderStatus.failed,
)


# --- reading -------------------------------------------------------------------------------


def visible_to(viewer: User | None) -> ColumnElement[bool]:
    """The SQL condition for the tenders a viewer may read: the one place that rule lives."""
    public = or_(
        Tender.status.in_(_PUBLIC_STATUSES),
        and_(Tender.status == TenderStatus.cancelled, Tender.published_at.is_not(None)),
    )
    if (
        viewer is not None
        and viewer.role in (Role.officer, Role.supervisor)
        and viewer.organization_id is not None
    ):
        return or_(public, Tender.organization_id == viewer.organization_id)
    return public


async def get(*, session: AsyncSession, tender_id: uuid.UUID, viewer: User | None) -> Tender | None:
    """The tender if it exists and the viewer may see it."""
    tender: Tender | None = await session.scalar(
        select(Tender).where(Tender.id == tender_id, visible_to(viewer))
    )
    return tender


async def search(
    *,
    session: AsyncSession,
    viewer: User | None,
    status: TenderStatus | None = None,
    text: str | None = None,
    organization_id: uuid.UUID | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Tender], int]:
    """One page of the visible tenders, soonest deadline first, and how many match in all."""
    conditions = [visible_to(viewer)]
    if status is not None:
        conditions.append(Tender.status == status)
    if organization_id is not None:
        conditions.append(Tender.organization_id == organization_id)
    if text:
        # autoescape: a search for "%" or "_" means those characters, not wildcards.
        conditions.append(
            or_(
                Tender.title.icontains(text, autoescape=True),
                Tender.reference.icontains(text, autoescape=True),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Tender).where(*conditions))
    rows = await session.scalars(
        select(Tender)
        .where(*conditions)
        .order_by(Tender.bid_deadline, Tender.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return list(rows), total or 0


async def organizations(
    *, session: AsyncSession, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    """The organizations with these ids, by id."""
    if not ids:
        return {}
    rows = await session.scalars(select(Organization).where(Organization.id.in_(ids)))
    return {organization.id: organization for organization in rows}


# --- drafts --------------------------------------------------------------------------------


def _columns(fields: TenderCreate | TenderUpdate, *, only_set: bool) -> dict[str, Any]:
    """Column values for validated fields: money as canonical text, JSON parts as JSON."""
    python = fields.model_dump(exclude_unset=only_set, exclude={"reason"})
    json = fields.model_dump(mode="json", exclude_unset=only_set, exclude={"reason"})
    json_columns = {"ceiling_price", "floor_price", "scoring", "bid_fields"}
    return {name: json[name] if name in json_columns else python[name] for name in python}


async def _reference_taken(
    *, session: AsyncSession, reference: str, other_than: uuid.UUID | None = None
) -> bool:
    statement = select(Tender.id).where(Tender.reference == reference)
    if other_than is not None:
        statement = statement.where(Tender.id != other_than)
    return await session.scalar(statement.limit(1)) is not None


def _reference_conflict(reference: str) -> Conflict:
    return ReferenceTaken(
        f"reference: a tender with the reference {reference!r} already exists",
        field="reference",
    )


def _check_horizon(deadline: datetime | None, horizon: timedelta) -> None:
    """Refuse a deadline further ahead than the horizon (BIDDING_MAX_DEADLINE_DAYS)."""
    if deadline is None:
        return
    latest = utcnow() + horizon
    if deadline > latest:
        days = horizon.days
        raise DeadlineTooFar(
            f"bid_deadline: may be at most {days} days ahead, until {_iso(latest)}",
            field="bid_deadline",
            limit=days,
        )


async def create(
    *, session: AsyncSession, tender_create: TenderCreate, officer: User, horizon: timedelta
) -> Tender:
    """A new draft in the officer's organization; its deadline at most `horizon` ahead."""
    if officer.organization_id is None:
        raise Forbidden("only an officer of an organization can create its tenders")
    _check_horizon(tender_create.bid_deadline, horizon)
    if await _reference_taken(session=session, reference=tender_create.reference):
        raise _reference_conflict(tender_create.reference)
    tender = Tender(
        **_columns(tender_create, only_set=False),
        status=TenderStatus.draft,
        organization_id=officer.organization_id,
        created_by_id=officer.id,
    )
    session.add(tender)
    try:
        await session.flush()
    except IntegrityError:
        # The reference is the tender's only unique value that a client chooses: another
        # request took it between the check above and this insert.
        raise _reference_conflict(tender_create.reference) from None
    await audit.record(
        session=session,
        action="tender.created",
        tender_id=tender.id,
        details={
            "reference": tender.reference,
            "title": tender.title,
            "bid_deadline": _iso(tender.bid_deadline),
            "opening_mode": tender.opening_mode.value,
        },
        actor=officer.actor,
    )
    return await _reload(session=session, tender=tender)


async def _reload(*, session: AsyncSession, tender: Tender) -> Tender:
    """The tender as the database now has it, amendments included."""
    fresh = await session.scalar(
        select(Tender).where(Tender.id == tender.id).execution_options(populate_existing=True)
    )
    assert fresh is not None, "tenders are never deleted"
    return fresh


async def _compare_and_set(
    *,
    session: AsyncSession,
    tender: Tender,
    when: list[ColumnElement[bool]],
    values: dict[str, Any],
) -> bool:
    """Write values if the row still meets the conditions; False when another request won."""
    result = await session.execute(
        update(Tender)
        .where(Tender.id == tender.id, *when)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _changed_meanwhile() -> Conflict:
    return EditedConcurrently(
        "the tender was changed by another request meanwhile; reload it and try again",
    )


async def update_tender(
    *,
    session: AsyncSession,
    tender: Tender,
    tender_update: TenderUpdate,
    officer: User,
    horizon: timedelta,
) -> Tender:
    """Edit a draft, or amend a published tender and record the amendment; a new deadline
    at most `horizon` ahead."""
    _check_horizon(tender_update.bid_deadline, horizon)
    if tender.status is TenderStatus.draft:
        return await _edit_draft(
            session=session, tender=tender, tender_update=tender_update, officer=officer
        )
    if tender.status is TenderStatus.published:
        return await _amend(
            session=session, tender=tender, tender_update=tender_update, officer=officer
        )
    raise NotEditable(f"a tender that is {tender.status} can no longer be changed")


async def _edit_draft(
    *, session: AsyncSession, tender: Tender, tender_update: TenderUpdate, officer: User
) -> Tender:
    values = _columns(tender_update, only_set=True)
    if not values:
        return tender
    # The request checked each field; whether the floor fits under the ceiling depends on the
    # values that stay as they are, too.
    ceiling = tender_update.ceiling_price
    if ceiling is None:
        ceiling = Decimal(tender.ceiling_price)
    floor = tender_update.floor_price
    if "floor_price" not in values and tender.floor_price is not None:
        floor = Decimal(tender.floor_price)
    problem = price_range_problem(ceiling, floor)
    if problem is not None:
        field = "floor_price" if "floor_price" in values else "ceiling_price"
        message = problem if field == "floor_price" else "must not be below the floor price"
        raise InvalidInput(
            f"body.{field}: {message}",
            errors=[{"field": f"body.{field}", "message": message}],
        )
    reference = values.get("reference")
    if reference is not None and await _reference_taken(
        session=session, reference=reference, other_than=tender.id
    ):
        raise _reference_conflict(reference)
    try:
        written = await _compare_and_set(
            session=session,
            tender=tender,
            when=[Tender.status == TenderStatus.draft, Tender.updated_at == tender.updated_at],
            values=values,
        )
    except IntegrityError:
        assert reference is not None, "only the reference can collide"
        raise _reference_conflict(reference) from None
    if not written:
        raise _changed_meanwhile()
    await audit.record(
        session=session,
        action="tender.edited",
        tender_id=tender.id,
        details={"fields": sorted(values)},
        actor=officer.actor,
    )
    return await _reload(session=session, tender=tender)


def _iso(moment: datetime) -> str:
    # Full precision, unlike db.iso_utc: the amendment record keeps the exact deadlines.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _amend(
    *, session: AsyncSession, tender: Tender, tender_update: TenderUpdate, officer: User
) -> Tender:
    # A client may send back unchanged values (a whole form, say); only real changes count.
    sent = _columns(tender_update, only_set=True)
    fixed = sorted(
        name
        for name, value in sent.items()
        if name not in AMENDABLE_FIELDS and value != getattr(tender, name)
    )
    if fixed:
        raise NotAmendable(
            f"{fixed[0]}: cannot change once the tender is published; "
            f"only {' and '.join(sorted(AMENDABLE_FIELDS))} can be amended",
            field=fixed[0],
        )
    now = utcnow()
    if tender.bid_deadline <= now:
        raise DeadlinePassed(
            "the bid deadline has passed: the tender can no longer be amended",
        )
    changes: dict[str, dict[str, Any]] = {}
    values: dict[str, Any] = {}
    new_deadline = tender_update.bid_deadline
    if new_deadline is not None and new_deadline != tender.bid_deadline:
        if new_deadline < tender.bid_deadline:
            # Bidders plan and seal against the published deadline; moving it earlier could
            # shut out anyone who relied on it.
            raise DeadlineMovedEarlier(
                f"bid_deadline: may only move later than {_iso(tender.bid_deadline)} "
                "once the tender is published",
                field="bid_deadline",
            )
        changes["bid_deadline"] = {"from": _iso(tender.bid_deadline), "to": _iso(new_deadline)}
        values["bid_deadline"] = new_deadline
    new_description = tender_update.description
    if new_description is not None and new_description != tender.description:
        changes["description"] = {"from": tender.description, "to": new_description}
        values["description"] = new_description
    if not changes:
        return tender
    written = await _compare_and_set(
        session=session,
        tender=tender,
        when=[
            Tender.status == TenderStatus.published,
            Tender.updated_at == tender.updated_at,
            Tender.bid_deadline > now,
        ],
        values=values,
    )
    if not written:
        raise _changed_meanwhile()
    number = len(tender.amendments) + 1
    session.add(
        TenderAmendment(
            tender_id=tender.id,
            number=number,
            changes=changes,
            reason=tender_update.reason or "",
            amended_by_id=officer.id,
            amended_at=now,
        )
    )
    await session.flush()
    # The amendment itself holds the texts; the trail says what moved, and the deadline.
    details: dict[str, Any] = {"number": number, "fields": sorted(changes)}
    if "bid_deadline" in changes:
        details["bid_deadline"] = changes["bid_deadline"]
    await audit.record(
        session=session,
        action="tender.amended",
        tender_id=tender.id,
        details=details,
        actor=officer.actor,
    )
    return await _reload(session=session, tender=tender)


# --- lifecycle -----------------------------------------------------------------------------


async def publish(
    *, session: AsyncSession, tender: Tender, master: MasterKey, min_bidding_period: timedelta
) -> Tender:
    """draft -> published, with a new opening key pair and coefficient seed, secrets wrapped."""
    now = utcnow()
    earliest_deadline = now + min_bidding_period
    if tender.status is not TenderStatus.draft:
        raise _not_a_draft(tender)
    if tender.bid_deadline < earliest_deadline:
        raise _bidding_period_too_short(min_bidding_period)
    identity = age.Identity.generate()
    seed = os.urandom(COEFFICIENT_SEED_SIZE)
    tender_id = str(tender.id)
    published = await _compare_and_set(
        session=session,
        tender=tender,
        # The deadline is checked again in the UPDATE: a draft edit may have moved it closer
        # since the tender was loaded.
        when=[Tender.status == TenderStatus.draft, Tender.bid_deadline >= earliest_deadline],
        values={
            "status": TenderStatus.published,
            "published_at": now,
            "opening_recipient": str(identity.recipient),
            "coefficient_commitment": hashlib.sha256(seed).hexdigest(),
            "opening_identity_wrapped": custody.wrap(
                master, identity.secret_bytes, tender_id=tender_id, purpose=OPENING_IDENTITY_PURPOSE
            ),
            "coefficient_seed_wrapped": custody.wrap(
                master, seed, tender_id=tender_id, purpose=COEFFICIENT_SEED_PURPOSE
            ),
        },
    )
    current = await _reload(session=session, tender=tender)
    if not published:
        if current.status is not TenderStatus.draft:
            raise _not_a_draft(current)
        raise _bidding_period_too_short(min_bidding_period)
    await audit.record(
        session=session,
        action="tender.published",
        tender_id=tender.id,
        details={
            "bid_deadline": _iso(current.bid_deadline),
            "opening_recipient": current.opening_recipient,
            "coefficient_commitment": current.coefficient_commitment,
        },
    )
    return current


def _not_a_draft(tender: Tender) -> Conflict:
    return NotADraft(f"only a draft can be published; this tender is {tender.status}")


def _bidding_period_too_short(period: timedelta) -> Unprocessable:
    return BiddingPeriodTooShort(
        f"bid_deadline: must be at least {int(period.total_seconds())} seconds after "
        "publication; move the deadline later first",
        field="bid_deadline",
    )


async def cancel(*, session: AsyncSession, tender: Tender, reason: str) -> Tender:
    """draft or published (before its deadline) -> cancelled, with the reason on record."""
    now = utcnow()
    refusal = _cancel_refusal(tender, now)
    if refusal is not None:
        raise refusal
    cancelled = await _compare_and_set(
        session=session,
        tender=tender,
        when=[
            or_(
                Tender.status == TenderStatus.draft,
                and_(Tender.status == TenderStatus.published, Tender.bid_deadline > now),
            )
        ],
        values={"status": TenderStatus.cancelled, "cancelled_at": now, "cancel_reason": reason},
    )
    was = tender.status
    current = await _reload(session=session, tender=tender)
    if not cancelled:
        raise _cancel_refusal(current, now) or _changed_meanwhile()
    await audit.record(
        session=session,
        action="tender.cancelled",
        tender_id=tender.id,
        details={"was": was.value, "reason": reason},
    )
    return current


def _cancel_refusal(tender: Tender, now: datetime) -> Conflict | None:
    if tender.status not in (TenderStatus.draft, TenderStatus.published):
        return NotCancellable(f"a tender that is {tender.status} cannot be cancelled")
    if tender.status is TenderStatus.published and tender.bid_deadline <= now:
        # Past the deadline the bids are fixed; what happens next is the opening's business.
        return DeadlinePassed(
            "the bid deadline has passed: the tender can no longer be cancelled",
        )
    return None


# --- documents -----------------------------------------------------------------------------

MAX_DOCUMENTS = 50
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")


def document_name(raw: str) -> str:
    """A document's file name as bidders will see it; Unprocessable when it cannot be one."""
    name = unicodedata.normalize("NFC", raw).strip()
    problem = None
    if not name:
        problem = "a document needs a file name"
    elif len(name.encode("utf-8")) > 255:
        problem = "a file name may be at most 255 bytes in UTF-8"
    elif any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        problem = "a file name may not hold control or invisible formatting characters"
    elif "/" in name or "\\" in name or name in (".", ".."):
        problem = "a file name may not be a path"
    if problem:
        raise InvalidInput(f"name: {problem}", field="name")
    return name


def document_type(header: str | None) -> str:
    """The media type a document was sent as, if it is a plain one; octet-stream otherwise."""
    kind = (header or "").split(";")[0].strip().lower()
    return kind if _MIME.fullmatch(kind) else "application/octet-stream"


def _document_refusal(tender: Tender, now: datetime) -> Conflict | None:
    if tender.status not in (TenderStatus.draft, TenderStatus.published):
        return NotEditable(
            f"a tender that is {tender.status} can no longer change its documents",
        )
    if tender.status is TenderStatus.published and tender.bid_deadline <= now:
        return DeadlinePassed(
            "the bid deadline has passed: the tender can no longer be amended",
        )
    if len(tender.documents) >= MAX_DOCUMENTS:
        return TooManyDocuments(f"a tender may have at most {MAX_DOCUMENTS} documents")
    return None


def check_document_allowed(tender: Tender) -> None:
    """Refuse early, before a body is read, when the tender cannot take a document now."""
    refusal = _document_refusal(tender, utcnow())
    if refusal is not None:
        raise refusal


async def add_document(
    *,
    session: AsyncSession,
    tender: Tender,
    officer: User,
    name: str,
    content_type: str,
    sha256: str,
    size: int,
    reason: str,
) -> TenderDocument:
    """Attach a stored file to a draft, or to a published tender as a recorded amendment."""
    now = utcnow()
    tender = await _reload(session=session, tender=tender)
    refusal = _document_refusal(tender, now)
    if refusal is not None:
        raise refusal
    if any(document.name == name for document in tender.documents):
        raise NameTaken(f"the tender already has a document named {name!r}")
    # The row's version moves on, so an edit or amendment racing this one is refused.
    written = await _compare_and_set(
        session=session,
        tender=tender,
        when=[
            Tender.updated_at == tender.updated_at,
            or_(
                Tender.status == TenderStatus.draft,
                and_(Tender.status == TenderStatus.published, Tender.bid_deadline > now),
            ),
        ],
        values={"updated_at": now},
    )
    if not written:
        raise _changed_meanwhile()
    document = TenderDocument(
        tender_id=tender.id,
        name=name,
        content_type=content_type,
        size=size,
        sha256=sha256,
        uploaded_by_id=officer.id,
        uploaded_at=now,
    )
    session.add(document)
    amendment = None
    if tender.status is TenderStatus.published:
        amendment = len(tender.amendments) + 1
        added = {"name": name, "sha256": sha256, "size": size}
        session.add(
            TenderAmendment(
                tender_id=tender.id,
                number=amendment,
                changes={"document_added": {"from": None, "to": added}},
                reason=reason,
                amended_by_id=officer.id,
                amended_at=now,
            )
        )
    try:
        await session.flush()
    except IntegrityError:
        raise _changed_meanwhile() from None
    await audit.record(
        session=session,
        action="tender.document_added",
        tender_id=tender.id,
        details={
            "document_id": str(document.id),
            "name": name,
            "sha256": sha256,
            "size": size,
            "amendment": amendment,
        },
        actor=officer.actor,
    )
    return document


async def remove_document(*, session: AsyncSession, tender: Tender, document_id: uuid.UUID) -> None:
    """Take a document off a draft; a published tender's documents stay as published."""
    document = next((d for d in tender.documents if d.id == document_id), None)
    if document is None:
        raise NotFound(f"no document {document_id}")
    if tender.status is not TenderStatus.draft:
        raise NotEditable(
            "a published tender's documents stay as bidders saw them; "
            "add a corrected one instead (an amendment)",
        )
    await session.delete(document)
    await audit.record(
        session=session,
        action="tender.document_removed",
        tender_id=tender.id,
        details={"document_id": str(document.id), "name": document.name, "sha256": document.sha256},
    )
