"""The opening of a tender at its deadline, exactly once and resumable.

The steps and their events are those of docs/architecture.md, The opening.

Each step is one transaction that writes the step's result and its event together, under the
condition that this instance still holds the opening's lease. What has been done is read back
from the events, so a process killed anywhere resumes at the first step without its event and
writes no event twice.
"""

import asyncio
import collections
import concurrent.futures
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.audit import service as audit
from bidding.auth.models import Organization
from bidding.crypto import merkle
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import receipt_problems
from bidding.crypto.signing import VerifyKey
from bidding.db import iso_utc, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import decryption, faults, scoring
from bidding.opening import events as ev
from bidding.opening.models import Opening, OpeningEvent
from bidding.tenders import service as tenders_service
from bidding.tenders.bids import Arrivals
from bidding.tenders.blobs import BlobStore
from bidding.tenders.models import LogEntry, OpeningMode, Tender, TenderStatus
from bidding.tenders.schemas import money_text, plain_decimal_text

logger = logging.getLogger(__name__)

RECORD_KIND = "opening_record"
_MOST_EVENTS_PER_COMMIT = 64
_WINDOW_PER_WORKER = 16


@dataclass(frozen=True)
class Context:
    """What an instance needs to run openings."""

    session_factory: async_sessionmaker[AsyncSession]
    keys: PlatformKeys
    blobs: BlobStore
    instance: str
    # This process's bids that arrived and wait for the log: the opening lets them in first.
    arrivals: Arrivals | None = None
    lease: timedelta = timedelta(seconds=15)
    workers: int = 2
    clock: Callable[[], datetime] = utcnow
    # Called after each commit that wrote events: this process's live rooms read them then.
    announce: Callable[[uuid.UUID], None] | None = None


# --- claiming ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """This instance holds the opening's lease and runs it."""


@dataclass(frozen=True)
class NotDue:
    """The deadline has not come (it was moved later, or this clock runs early)."""

    deadline: datetime


@dataclass(frozen=True)
class HeldElsewhere:
    """Another instance runs the opening; it may be taken over once the lease expires."""

    until: datetime


@dataclass(frozen=True)
class Waiting:
    """The opening waits for its bidders (the decryption window) until this moment at most;
    it is held by nobody meanwhile."""

    until: datetime


@dataclass(frozen=True)
class Nothing:
    """The tender has nothing to open: a draft, cancelled, or its opening is finished."""

    status: TenderStatus | None


Claim = Claimed | NotDue | HeldElsewhere | Waiting | Nothing


@asynccontextmanager
async def _transaction(
    ctx: Context, announcing: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction; with `announcing`, the tender's new events are announced after it."""
    async with ctx.session_factory() as session, session.begin():
        yield session
    if announcing is not None and ctx.announce is not None:
        ctx.announce(announcing)


async def claim(ctx: Context, tender_id: uuid.UUID, *, actor: audit.Actor | None = None) -> Claim:
    """Start the tender's opening (compare-and-set published -> opening) or take it over.

    Before the deadline nothing is opened, whoever asks: NotDue, and the attempt goes into
    the tender's audit trail as `opening.refused_early`, by `actor` (None: the platform).

    The bids of this process that arrived before now are logged first, and the clock is read
    the moment they are: whatever arrives later is late if the opening starts.
    """
    if ctx.arrivals is not None:
        await ctx.arrivals.drained(tender_id)
    now = ctx.clock()
    async with _transaction(ctx, tender_id) as session:
        row = (
            await session.execute(
                select(Tender.status, Tender.bid_deadline).where(Tender.id == tender_id)
            )
        ).first()
        if row is None:
            return Nothing(None)
        status: TenderStatus | None = row.status
        deadline: datetime = row.bid_deadline
        if status is TenderStatus.published:
            if deadline > now:
                await audit.record(
                    session=session,
                    action="opening.refused_early",
                    tender_id=tender_id,
                    details={"bid_deadline": iso_utc(deadline), "instance": ctx.instance},
                    actor=actor,
                )
                return NotDue(deadline)
            started = await session.execute(
                update(Tender)
                .where(
                    Tender.id == tender_id,
                    Tender.status == TenderStatus.published,
                    Tender.bid_deadline <= now,
                )
                .values(status=TenderStatus.opening, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if started.rowcount == 1:  # type: ignore[attr-defined]
                await ev.ensure_opening(session=session, tender_id=tender_id)
                await session.execute(
                    update(Opening)
                    .where(Opening.tender_id == tender_id)
                    .values(
                        lease_owner=ctx.instance, lease_expires_at=now + ctx.lease, started_at=now
                    )
                    .execution_options(synchronize_session=False)
                )
                await ev.append(
                    session=session,
                    tender_id=tender_id,
                    type=ev.STARTED,
                    data={"bid_deadline": iso_utc(deadline)},
                    lease_owner=ctx.instance,
                    at=now,
                )
                await audit.record(
                    session=session,
                    action="opening.started",
                    tender_id=tender_id,
                    details={"bid_deadline": iso_utc(deadline), "instance": ctx.instance},
                    actor=actor,
                )
                return Claimed()
            status = await session.scalar(select(Tender.status).where(Tender.id == tender_id))
        if status is not TenderStatus.opening:
            return Nothing(status)
        taken = await session.scalar(
            update(Opening)
            .where(
                Opening.tender_id == tender_id,
                Opening.completed_at.is_(None),
                # Held by nobody (waiting for bidders), by this instance, or by a lapsed lease.
                Opening.lease_owner.is_(None)
                | (Opening.lease_owner == ctx.instance)
                | (Opening.lease_expires_at <= now),
            )
            .values(lease_owner=ctx.instance, lease_expires_at=now + ctx.lease)
            .returning(Opening.tender_id)
            .execution_options(synchronize_session=False)
        )
        if taken is not None:
            return Claimed()
        until = await session.scalar(
            select(Opening.lease_expires_at).where(Opening.tender_id == tender_id)
        )
        return HeldElsewhere(until or now)


async def renew_lease(ctx: Context, tender_id: uuid.UUID) -> bool:
    """Extend this instance's lease; False when it no longer holds the opening."""
    async with _transaction(ctx) as session:
        renewed = await session.scalar(
            update(Opening)
            .where(
                Opening.tender_id == tender_id,
                Opening.lease_owner == ctx.instance,
                Opening.completed_at.is_(None),
            )
            .values(lease_expires_at=ctx.clock() + ctx.lease)
            .returning(Opening.tender_id)
            .execution_options(synchronize_session=False)
        )
    return renewed is not None


async def _keep_lease(ctx: Context, tender_id: uuid.UUID) -> None:
    """Renew the lease until cancelled; return when another instance has taken it."""
    interval = ctx.lease.total_seconds() / 3
    while True:
        await asyncio.sleep(interval)
        try:
            if not await renew_lease(ctx, tender_id):
                return
        except Exception:  # the database may answer again in time: the lease has slack
            logger.warning("tender %s: renewing the opening lease failed", tender_id, exc_info=True)


async def run(ctx: Context, tender_id: uuid.UUID, *, actor: audit.Actor | None = None) -> Claim:
    """Claim the tender's opening and, if this instance got it, carry it to the end.

    This is the one way into an opening, the scheduler's and anyone else's (`actor`): before
    the deadline it refuses (NotDue), and the refusal is audited. Raises LeaseLost when
    another instance took the opening over meanwhile.
    """
    claimed = await claim(ctx, tender_id, actor=actor)
    if not isinstance(claimed, Claimed):
        return claimed
    opening = _Opening(ctx, tender_id)
    work = asyncio.create_task(opening.run(), name=f"opening-{tender_id}")
    keeper = asyncio.create_task(_keep_lease(ctx, tender_id), name=f"lease-{tender_id}")
    try:
        await asyncio.wait({work, keeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, keeper):
            task.cancel()
        await asyncio.gather(work, keeper, return_exceptions=True)
    if work.cancelled():
        raise ev.LeaseLost(f"tender {tender_id}: the opening was taken over")
    waiting: Waiting | None = work.result()  # raises what the pipeline raised
    return claimed if waiting is None else waiting


# --- the steps -----------------------------------------------------------------------------


@dataclass
class _Opening:
    """One run of the pipeline by the lease holder, resuming after the events already written."""

    ctx: Context
    tender_id: uuid.UUID
    tender: Tender = field(init=False)
    done: dict[str, list[OpeningEvent]] = field(init=False)

    async def run(self) -> Waiting | None:
        """Carry the opening as far as it can go now; Waiting while bidders may still reveal."""
        async with self.ctx.session_factory() as session:
            tender = await session.get(Tender, self.tender_id)
            assert tender is not None, "a claimed tender exists"
            self.tender = tender
            self.done = {}
            for event in await ev.after(session=session, tender_id=self.tender_id):
                self.done.setdefault(event.type, []).append(event)
        if ev.LOG_SEALED not in self.done:
            await self._step(ev.LOG_SEALED, self._seal_log)
        if ev.BIDS_LISTED not in self.done:
            await self._step(ev.BIDS_LISTED, self._list_bids)
        listed = self._data(ev.BIDS_LISTED)["bids"]
        if len(listed) < self.tender.min_bids:
            await self._finish(
                failure={
                    "reason": "too_few_bids",
                    "detail": f"{len(listed)} bids were handed in; at least "
                    f"{self.tender.min_bids} are needed",
                }
            )
            return None
        if self.tender.opening_mode is OpeningMode.bidder:
            waiting = await self._decryption_window(listed)
            if waiting is not None:
                return waiting
        else:
            await self._decrypt(listed)
        valid = self._valid_bids()
        if len(valid) < self.tender.min_bids:
            await self._finish(
                failure={
                    "reason": "too_few_valid_bids",
                    "detail": f"{len(valid)} of {len(listed)} bids are valid; at least "
                    f"{self.tender.min_bids} are needed",
                }
            )
            return None
        method = scoring.parse_method(self.tender.scoring)
        if isinstance(method, scoring.Benchmark) and ev.COEFFICIENT_DRAWN not in self.done:
            await self._step(ev.COEFFICIENT_DRAWN, lambda _session: self._draw(method))
        if ev.SCORES_COMPUTED not in self.done:
            await self._step(ev.SCORES_COMPUTED, lambda _session: self._score(method, valid))
        await self._finish(failure=None)
        return None

    def _data(self, type: str) -> dict[str, Any]:
        return self.done[type][0].data

    async def _append(
        self, session: AsyncSession, type: str, data: dict[str, Any], at: datetime | None = None
    ) -> None:
        event = await ev.append(
            session=session,
            tender_id=self.tender_id,
            type=type,
            data=data,
            lease_owner=self.ctx.instance,
            at=at or self.ctx.clock(),
        )
        self.done.setdefault(type, []).append(event)

    async def _step(self, type: str, make: Callable[[AsyncSession], Any]) -> None:
        async with _transaction(self.ctx, self.tender_id) as session:
            data = make(session)
            if asyncio.iscoroutine(data):
                data = await data
            await self._append(session, type, data)
            await faults.reached(type)  # tests only: a kill lands in this transaction

    # log.sealed
    async def _seal_log(self, session: AsyncSession) -> dict[str, Any]:
        leaves = list(
            await session.scalars(
                select(LogEntry.leaf_hash)
                .where(LogEntry.tender_id == self.tender_id)
                .order_by(LogEntry.position)
            )
        )
        head = {
            "tender_id": str(self.tender_id),
            "tree_size": len(leaves),
            "root_hash": merkle.root_hash([bytes.fromhex(leaf) for leaf in leaves]).hex(),
            "sealed_at": iso_utc(self.ctx.clock()),
        }
        return {"tree_head": head, **self.ctx.keys.signing.sign_document(head)}

    # bids.listed
    async def _list_bids(self, session: AsyncSession) -> dict[str, Any]:
        """The bids from the sealed log, not from the bids table: each bidder's last signed
        receipt counts, a bid unless it is a withdrawal. A row planted or edited in the
        database cannot put a bid, or another file, into the opening: a leaf that does not
        hash to its leaf hash or whose signature is not the platform's is left out, and named.
        """
        entries = await session.execute(
            select(LogEntry.position, LogEntry.body, LogEntry.leaf_hash, LogEntry.key_id)
            .add_columns(LogEntry.signature)
            .where(LogEntry.tender_id == self.tender_id)
            .order_by(LogEntry.position)
        )
        public_key = self.ctx.keys.signing.public_key
        latest: dict[str, dict[str, Any]] = {}
        unverified: list[int] = []
        for position, text, leaf, key_id, signature in entries:
            body = _signed_receipt_body(text, leaf, key_id, signature, public_key)
            if body is None or body.get("tender_id") != str(self.tender_id):
                unverified.append(position)
                continue
            latest[body["bidder_id"]] = body
        handed_in = sorted(
            (body for body in latest.values() if body.get("kind") == "bid"),
            key=lambda body: (body["received_at"], body["bid_id"]),
        )
        organizations = await session.execute(
            select(Organization.id, Organization.name).where(
                Organization.id.in_({uuid.UUID(body["bidder_id"]) for body in handed_in})
            )
        )
        names = {id: name for id, name in organizations}
        bids = [
            {
                "bid_id": body["bid_id"],
                "bidder_id": body["bidder_id"],
                "bidder_name": names.get(uuid.UUID(body["bidder_id"]), ""),
                "version": body["version"],
                "sha256": body["sha256"],
                "size": body["size"],
                "received_at": body["received_at"],
            }
            for body in handed_in
        ]
        listed: dict[str, Any] = {"count": len(bids), "bids": bids}
        if unverified:
            logger.error(
                "tender %s: log leaves %s are not receipts the platform signed; left out",
                self.tender_id,
                unverified,
            )
            listed["unverified_leaves"] = unverified
        return listed

    # bid.decrypted / bid.rejected
    def _pending(self, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The listed bids with no outcome yet."""
        decided = {
            event.data["bid_id"]
            for type in (ev.BID_DECRYPTED, ev.BID_REJECTED, ev.BID_WITHDRAWN)
            for event in self.done.get(type, [])
        }
        return [bid for bid in listed if bid["bid_id"] not in decided]

    async def _decrypt(self, listed: list[dict[str, Any]], via: str | None = None) -> None:
        pending = self._pending(listed)
        if not pending:
            return
        identity = tenders_service.opening_identity(master=self.ctx.keys.master, tender=self.tender)
        tender = decryption.Tender(
            bid_fields=self.tender.bid_fields,
            ceiling=Decimal(self.tender.ceiling_price),
            floor=None if self.tender.floor_price is None else Decimal(self.tender.floor_price),
        )
        loop = asyncio.get_running_loop()

        def open_one(bid: dict[str, Any]) -> decryption.Outcome:
            return decryption.open_bid(
                blobs=self.ctx.blobs,
                sha256=bid["sha256"],
                size=bid["size"],
                identities=[identity],
                tender=tender,
            )

        # Bids are opened in worker threads and published in the listed order. Each worker
        # holds one plaintext at a time; what waits in the window is only the bid's outcome.
        workers = max(1, self.ctx.workers)
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="opening")
        queue: collections.deque[tuple[dict[str, Any], asyncio.Future[decryption.Outcome]]]
        queue = collections.deque()
        upcoming = iter(pending)

        def fill() -> None:
            while (
                len(queue) < _WINDOW_PER_WORKER * workers
                and (bid := next(upcoming, None)) is not None
            ):
                queue.append((bid, loop.run_in_executor(pool, open_one, bid)))

        try:
            fill()
            while queue:
                # The next bid in order, and with it every following one already opened: a
                # transaction per bid would cost more than opening it.
                bid, future = queue.popleft()
                ready = [bid_event(bid, await future, via)]
                while (
                    queue
                    and len(ready) < _MOST_EVENTS_PER_COMMIT
                    and queue[0][1].done()
                    and queue[0][1].exception() is None  # a failure waits for its turn
                ):
                    bid, future = queue.popleft()
                    ready.append(bid_event(bid, future.result(), via))
                fill()
                async with _transaction(self.ctx, self.tender_id) as session:
                    events = await ev.append_many(
                        session=session,
                        tender_id=self.tender_id,
                        items=ready,
                        lease_owner=self.ctx.instance,
                        at=self.ctx.clock(),
                    )
                for event in events:
                    self.done.setdefault(event.type, []).append(event)
        finally:
            # Never wait here for a thread: on cancellation the event loop must stay free.
            for _, future in queue:
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: it is the step's to retry, not to report
                else:
                    future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    async def _decryption_window(self, listed: list[dict[str, Any]]) -> Waiting | None:
        """Bidder mode: open the window, wait for reveals, close it; Waiting until it closes.

        The close is written first, under the opening's row lock that every reveal takes
        too, so no reveal lands after it; then each bid still sealed is opened with the
        tender's key when backup decryption is on, or withdrawn as not decrypted.
        """
        if ev.WINDOW_OPENED not in self.done:
            closes_at = self.ctx.clock() + timedelta(minutes=self.tender.decryption_window_minutes)
            # To the millisecond, as the event publishes it: the published time is the rule.
            closes_at = closes_at.replace(microsecond=closes_at.microsecond // 1000 * 1000)

            async def opened(session: AsyncSession) -> dict[str, Any]:
                await _set_resume(session, self.tender_id, closes_at)
                return {
                    "closes_at": iso_utc(closes_at),
                    "bids": len(listed),
                    "backup_decryption": self.tender.backup_decryption,
                }

            await self._step(ev.WINDOW_OPENED, opened)
        if ev.WINDOW_CLOSED not in self.done:
            closes_at = _parse_time(self._data(ev.WINDOW_OPENED)["closes_at"])
            async with _transaction(self.ctx, self.tender_id) as session:
                await ev.lock_opening(session=session, tender_id=self.tender_id)
                # Reveals are written by the bidders' requests: read what they decided.
                self.done = {}
                for event in await ev.after(session=session, tender_id=self.tender_id):
                    self.done.setdefault(event.type, []).append(event)
                pending = self._pending(listed)
                if ev.WINDOW_CLOSED not in self.done and pending and self.ctx.clock() < closes_at:
                    # Nobody holds the opening while the bidders have time; only the holder
                    # may let it go (a stale instance must not drop another's lease).
                    released = await session.execute(
                        update(Opening)
                        .where(
                            Opening.tender_id == self.tender_id,
                            Opening.lease_owner == self.ctx.instance,
                        )
                        .values(lease_owner=None, lease_expires_at=None, resume_at=closes_at)
                        .execution_options(synchronize_session=False)
                    )
                    if released.rowcount != 1:  # type: ignore[attr-defined]
                        raise ev.LeaseLost(f"tender {self.tender_id}: taken over meanwhile")
                    return Waiting(closes_at)
                if ev.WINDOW_CLOSED not in self.done:  # else closed by the holder before us
                    await _set_resume(session, self.tender_id, None)
                    await self._append(
                        session,
                        ev.WINDOW_CLOSED,
                        {"opened": len(listed) - len(pending), "still_sealed": len(pending)},
                    )
        if self.tender.backup_decryption:
            await self._decrypt(listed, via="backup")
        else:
            withdrawn = [
                (
                    ev.BID_WITHDRAWN,
                    {key: bid[key] for key in ("bid_id", "bidder_id", "bidder_name")}
                    | {"reason": "not_decrypted"},
                )
                for bid in self._pending(listed)
            ]
            if withdrawn:
                async with _transaction(self.ctx, self.tender_id) as session:
                    events = await ev.append_many(
                        session=session,
                        tender_id=self.tender_id,
                        items=withdrawn,
                        lease_owner=self.ctx.instance,
                        at=self.ctx.clock(),
                    )
                for event in events:
                    self.done.setdefault(event.type, []).append(event)
        return None

    def _valid_bids(self) -> list[dict[str, Any]]:
        return [event.data for event in self.done.get(ev.BID_DECRYPTED, [])]

    # coefficient.drawn
    def _draw(self, method: scoring.Benchmark) -> dict[str, Any]:
        seed = tenders_service.coefficient_seed(master=self.ctx.keys.master, tender=self.tender)
        root = self._data(ev.LOG_SEALED)["tree_head"]["root_hash"]
        index, coefficient = scoring.draw_coefficient(
            seed=seed, root=bytes.fromhex(root), choices=method.coefficient_choices
        )
        return {
            "seed": seed.hex(),
            "commitment": self.tender.coefficient_commitment,
            "root_hash": root,
            "choices": [plain_decimal_text(choice) for choice in method.coefficient_choices],
            "index": index,
            "coefficient": plain_decimal_text(coefficient),
        }

    # scores.computed
    def _score(self, method: scoring.Method, valid: list[dict[str, Any]]) -> dict[str, Any]:
        listed = {bid["bid_id"]: bid for bid in self._data(ev.BIDS_LISTED)["bids"]}
        candidates = [
            scoring.Candidate(
                bid_id=bid["bid_id"],
                price=Decimal(bid["price"]),
                received_at=_parse_time(listed[bid["bid_id"]]["received_at"]),
            )
            for bid in valid
        ]
        seed = root = None
        if isinstance(method, scoring.Benchmark):
            drawn = self._data(ev.COEFFICIENT_DRAWN)
            seed, root = bytes.fromhex(drawn["seed"]), bytes.fromhex(drawn["root_hash"])
        result = scoring.score(method, candidates, seed=seed, root=root)
        return {
            "method": self.tender.scoring["method"],
            "ranking": [
                {
                    "rank": place.rank,
                    "bid_id": place.bid_id,
                    "bidder_id": listed[place.bid_id]["bidder_id"],
                    "bidder_name": listed[place.bid_id]["bidder_name"],
                    "price": money_text(place.price),
                    "score": None if place.score is None else money_text(place.score),
                }
                for place in result.ranking
            ],
            "working": _working(result.working),
        }

    # record.published, then opening.completed or opening.failed, in one transaction
    async def _finish(self, *, failure: dict[str, str] | None) -> None:
        async with _transaction(self.ctx, self.tender_id) as session:
            opening = await session.get(Opening, self.tender_id, with_for_update=True)
            assert opening is not None
            everything = await ev.after(session=session, tender_id=self.tender_id)
            now = self.ctx.clock()
            record = self._record(opening, everything, failure, now)
            # The tender's audit chain as committed now: the record anchors it up to here.
            record["audit"] = await audit.head(
                session=session, chain=audit.tender_chain(self.tender_id)
            )
            text = canonical_json(record)
            signed = self.ctx.keys.signing.sign_document(record)
            opening.record = text.decode("utf-8")
            opening.record_key_id = signed["key_id"]
            opening.record_signature = signed["signature"]
            opening.completed_at = now
            opening.lease_expires_at = now
            await self._append(
                session,
                ev.RECORD_PUBLISHED,
                {"sha256": hashlib.sha256(text).hexdigest(), **signed},
                now,
            )
            status = TenderStatus.failed if failure else TenderStatus.opened
            finished = await session.execute(
                update(Tender)
                .where(Tender.id == self.tender_id, Tender.status == TenderStatus.opening)
                .values(status=status, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            assert finished.rowcount == 1, "only the lease holder finishes"  # type: ignore[attr-defined]
            if failure:
                await self._append(session, ev.FAILED, dict(failure), now)
            else:
                await self._append(session, ev.COMPLETED, {"status": status.value}, now)
            await audit.record(
                session=session,
                action=ev.FAILED if failure else ev.COMPLETED,
                tender_id=self.tender_id,
                details={
                    "record_sha256": hashlib.sha256(text).hexdigest(),
                    "instance": self.ctx.instance,
                }
                | ({"reason": failure["reason"]} if failure else {}),
            )
            await faults.reached(ev.RECORD_PUBLISHED)  # tests only: as in _step

    def _record(
        self,
        opening: Opening,
        everything: list[OpeningEvent],
        failure: dict[str, str] | None,
        now: datetime,
    ) -> dict[str, Any]:
        tender = self.tender
        outcomes = {
            event.data["bid_id"]: event
            for event in everything
            if event.type in (ev.BID_DECRYPTED, ev.BID_REJECTED, ev.BID_WITHDRAWN)
        }
        bids = []
        for bid in self._data(ev.BIDS_LISTED)["bids"]:
            outcome = outcomes.get(bid["bid_id"])
            entry = dict(bid)
            if outcome is None:
                entry["status"] = "not_opened"
            elif outcome.type == ev.BID_DECRYPTED:
                entry["status"] = "decrypted"
                entry |= {k: outcome.data[k] for k in ("price", "fields", "documents", "via")
                          if k in outcome.data}  # fmt: skip
            elif outcome.type == ev.BID_WITHDRAWN:
                entry["status"] = "withdrawn"
                entry["reason"] = outcome.data["reason"]
            else:
                entry["status"] = "rejected"
                entry |= {k: outcome.data[k] for k in ("reason", "detail")}
            bids.append(entry)
        answers = {
            event.data["objection_id"]: event
            for event in everything
            if event.type == ev.OBJECTION_ANSWERED
        }
        objections = []
        for event in everything:
            if event.type == ev.OBJECTION_RAISED:
                answer = answers.get(event.data["objection_id"])
                objections.append(
                    event.data
                    | {"raised_at": iso_utc(event.at)}
                    | {
                        "answer": None
                        if answer is None
                        else answer.data | {"at": iso_utc(answer.at)}
                    }
                )
        scores = self.done.get(ev.SCORES_COMPUTED)
        drawn = self.done.get(ev.COEFFICIENT_DRAWN)
        sealed = self._data(ev.LOG_SEALED)
        return {
            "kind": RECORD_KIND,
            "tender": {
                "id": str(tender.id),
                "reference": tender.reference,
                "title": tender.title,
                "buyer_name": tender.buyer_name,
                "currency": tender.currency,
                "ceiling_price": tender.ceiling_price,
                "floor_price": tender.floor_price,
                "bid_deadline": iso_utc(tender.bid_deadline),
                "opening_mode": tender.opening_mode.value,
                "min_bids": tender.min_bids,
                "scoring": tender.scoring,
                "bid_fields": tender.bid_fields,
                "opening_recipient": tender.opening_recipient,
                "coefficient_commitment": tender.coefficient_commitment,
            },
            "tree_head": sealed,
            "bids": bids,
            "coefficient": drawn[0].data if drawn else None,
            "scores": scores[0].data if scores else None,
            "attendance": [
                event.data | {"at": iso_utc(event.at)}
                for event in everything
                if event.type == ev.CHECKED_IN
            ],
            "objections": objections,
            "outcome": {"status": "failed", **failure} if failure else {"status": "opened"},
            # The events so far, as served, bound into the signature.
            "events": {
                "count": len(everything),
                "sha256": hashlib.sha256(
                    canonical_json([ev.envelope(event) for event in everything])
                ).hexdigest(),
            },
            "times": {
                "bid_deadline": iso_utc(tender.bid_deadline),
                "started_at": iso_utc(opening.started_at or now),
                "sealed_at": sealed["tree_head"]["sealed_at"],
                "published_at": iso_utc(now),
            },
        }


async def _set_resume(session: AsyncSession, tender_id: uuid.UUID, at: datetime | None) -> None:
    await session.execute(
        update(Opening)
        .where(Opening.tender_id == tender_id)
        .values(resume_at=at)
        .execution_options(synchronize_session=False)
    )


def bid_event(
    bid: dict[str, Any], outcome: decryption.Outcome, via: str | None = None
) -> tuple[str, dict[str, Any]]:
    who = {key: bid[key] for key in ("bid_id", "bidder_id", "bidder_name")}
    if via is not None:
        who["via"] = via
    if isinstance(outcome, decryption.Decrypted):
        return ev.BID_DECRYPTED, who | {
            "price": outcome.price,
            "fields": outcome.fields,
            "documents": outcome.documents,
        }
    return ev.BID_REJECTED, who | {"reason": outcome.reason, "detail": outcome.detail}


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _working(working: scoring.ComprehensiveWorking | scoring.BenchmarkWorking | None) -> Any:
    if isinstance(working, scoring.ComprehensiveWorking):
        return {"lowest_price": money_text(working.lowest_price)}
    if isinstance(working, scoring.BenchmarkWorking):
        return {
            "average": money_text(working.average),
            "excluded_prices": [money_text(price) for price in working.excluded_prices],
            "coefficient_index": working.coefficient_index,
            "coefficient": plain_decimal_text(working.coefficient),
            "benchmark_price": money_text(working.benchmark_price),
        }
    return None


def _signed_receipt_body(
    text: str, leaf: str, key_id: str, signature: str, public_key: VerifyKey
) -> dict[str, Any] | None:
    """A log row's receipt body if the row is a receipt the platform signed, else None."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    receipt = {"body": body, "leaf_hash": leaf, "key_id": key_id, "signature": signature}
    if receipt_problems(receipt, {public_key.key_id: public_key}) or not isinstance(body, dict):
        return None
    return body
