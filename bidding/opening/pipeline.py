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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.crypto.canonical import canonical_json
from bidding.db import iso_utc
from bidding.opening import decryption, faults, lease, payloads, record, sealed_log, secrets
from bidding.opening import events as ev
from bidding.opening.models import Opening, OpeningEvent
from bidding.rules import scoring
from bidding.rules.money import money_text, plain_decimal_text
from bidding.tenders.models import OpeningMode, Tender, TenderStatus

_MOST_EVENTS_PER_COMMIT = 64
_WINDOW_PER_WORKER = 16
E = TypeVar("E", bound=payloads.Event)


async def run(
    ctx: lease.Context, tender_id: uuid.UUID, *, actor: audit.Actor | None = None
) -> lease.Claim:
    """Claim the tender's opening and, if this instance got it, carry it to the end.

    This is the one way into an opening, the scheduler's and anyone else's (`actor`): before
    the deadline it refuses (NotDue), and the refusal is audited. Raises LeaseLost when
    another instance took the opening over meanwhile.
    """
    claimed = await lease.claim(ctx, tender_id, actor=actor)
    if not isinstance(claimed, lease.Claimed):
        return claimed
    opening = _Opening(ctx, tender_id)
    work = asyncio.create_task(opening.run(), name=f"opening-{tender_id}")
    keeper = asyncio.create_task(lease.keep_lease(ctx, tender_id), name=f"lease-{tender_id}")
    try:
        await asyncio.wait({work, keeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, keeper):
            task.cancel()
        await asyncio.gather(work, keeper, return_exceptions=True)
    if work.cancelled():
        raise ev.LeaseLost(f"tender {tender_id}: the opening was taken over")
    waiting: lease.Waiting | None = work.result()  # raises what the pipeline raised
    return claimed if waiting is None else waiting


@dataclass
class _Opening:
    """One run of the pipeline by the lease holder, resuming after the events already written."""

    ctx: lease.Context
    tender_id: uuid.UUID
    tender: Tender = field(init=False)
    done: dict[str, list[OpeningEvent]] = field(init=False)

    async def run(self) -> lease.Waiting | None:
        """Carry the opening as far as it can go now; Waiting while bidders may still reveal."""
        async with self.ctx.session_factory() as session:
            tender = await session.get(Tender, self.tender_id)
            assert tender is not None, "a claimed tender exists"
            self.tender = tender
            self._read(await ev.after(session=session, tender_id=self.tender_id))
        if ev.LOG_SEALED not in self.done:
            await self._step(self._seal_log)
        if ev.BIDS_LISTED not in self.done:
            await self._step(self._list_bids)
        listed = self._first(payloads.BidsListed).bids
        if len(listed) < self.tender.min_bids:
            await self._finish(
                failure=payloads.Failed(
                    reason="too_few_bids",
                    detail=f"{len(listed)} bids were handed in; at least "
                    f"{self.tender.min_bids} are needed",
                )
            )
            return None
        if self.tender.opening_mode is OpeningMode.bidder:
            waiting = await self._decryption_window(listed)
            if waiting is not None:
                return waiting
        else:
            await self._decrypt(listed)
        valid = [
            ev.payload(event, payloads.BidDecrypted)
            for event in self.done.get(ev.BID_DECRYPTED, [])
        ]
        if len(valid) < self.tender.min_bids:
            await self._finish(
                failure=payloads.Failed(
                    reason="too_few_valid_bids",
                    detail=f"{len(valid)} of {len(listed)} bids are valid; at least "
                    f"{self.tender.min_bids} are needed",
                )
            )
            return None
        method = self.tender.terms.method
        if isinstance(method, scoring.Benchmark) and ev.COEFFICIENT_DRAWN not in self.done:
            await self._step(lambda _session: self._draw(method))
        if ev.SCORES_COMPUTED not in self.done:
            await self._step(lambda _session: self._score(method, valid))
        await self._finish(failure=None)
        return None

    def _read(self, events: list[OpeningEvent]) -> None:
        self.done = {}
        self._add(events)

    def _add(self, events: list[OpeningEvent]) -> None:
        for event in events:
            self.done.setdefault(event.type, []).append(event)

    def _first(self, kind: type[E]) -> E:
        return ev.payload(self.done[kind.type][0], kind)

    async def _append(
        self, session: AsyncSession, payload: payloads.Event, at: datetime | None = None
    ) -> None:
        await self._append_many(session, [payload], at)

    async def _append_many(
        self, session: AsyncSession, items: list[payloads.Event], at: datetime | None = None
    ) -> None:
        events = await ev.append_many(
            session=session,
            tender_id=self.tender_id,
            items=items,
            lease_owner=self.ctx.instance,
            at=at or self.ctx.clock(),
        )
        self._add(events)

    async def _step(
        self, make: Callable[[AsyncSession], payloads.Event | Awaitable[payloads.Event]]
    ) -> None:
        async with lease.transaction(self.ctx, self.tender_id) as session:
            made = make(session)
            payload = await made if isinstance(made, Awaitable) else made
            await self._append(session, payload)
            await faults.reached(payload.type)  # tests only: a kill lands in this transaction

    # log.sealed
    async def _seal_log(self, session: AsyncSession) -> payloads.LogSealed:
        return await sealed_log.seal(
            session=session,
            tender_id=self.tender_id,
            signing=self.ctx.keys.signing,
            at=self.ctx.clock(),
        )

    # bids.listed
    async def _list_bids(self, session: AsyncSession) -> payloads.BidsListed:
        return await sealed_log.list_bids(
            session=session, tender_id=self.tender_id, public_key=self.ctx.keys.signing.public_key
        )

    # bid.decrypted / bid.rejected
    def _pending(self, listed: tuple[payloads.ListedBid, ...]) -> list[payloads.ListedBid]:
        """The listed bids with no outcome yet."""
        decided = ev.decided(event for type in ev.OUTCOMES for event in self.done.get(type, []))
        return [bid for bid in listed if bid.bid_id not in decided]

    async def _decrypt(
        self, listed: tuple[payloads.ListedBid, ...], via: str | None = None
    ) -> None:
        pending = self._pending(listed)
        if not pending:
            return
        identity = secrets.opening_identity(master=self.ctx.keys.master, tender=self.tender)
        terms = self.tender.terms
        loop = asyncio.get_running_loop()

        def open_one(bid: payloads.ListedBid) -> decryption.Outcome:
            return decryption.open_bid(
                blobs=self.ctx.blobs,
                sha256=bid.sha256,
                size=bid.size,
                identities=[identity],
                terms=terms,
            )

        # Bids are opened in worker threads and published in the listed order. Each worker
        # holds one plaintext at a time; what waits in the window is only the bid's outcome.
        workers = max(1, self.ctx.workers)
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="opening")
        queue: collections.deque[tuple[payloads.ListedBid, asyncio.Future[decryption.Outcome]]]
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
                ready: list[payloads.Event] = [decryption.outcome_event(bid, await future, via)]
                while (
                    queue
                    and len(ready) < _MOST_EVENTS_PER_COMMIT
                    and queue[0][1].done()
                    and queue[0][1].exception() is None  # a failure waits for its turn
                ):
                    bid, future = queue.popleft()
                    ready.append(decryption.outcome_event(bid, future.result(), via))
                fill()
                async with lease.transaction(self.ctx, self.tender_id) as session:
                    await self._append_many(session, ready)
        finally:
            # Never wait here for a thread: on cancellation the event loop must stay free.
            for _, future in queue:
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: it is the step's to retry, not to report
                else:
                    future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    async def _decryption_window(
        self, listed: tuple[payloads.ListedBid, ...]
    ) -> lease.Waiting | None:
        """Bidder mode: open the window, wait for reveals, close it; Waiting until it closes.

        The close is written first, under the opening's row lock that every reveal takes
        too, so no reveal lands after it; then each bid still sealed is opened with the
        tender's key when backup decryption is on, or withdrawn as not decrypted.
        """
        if ev.WINDOW_OPENED not in self.done:
            closes_at = self.ctx.clock() + timedelta(minutes=self.tender.decryption_window_minutes)
            # To the millisecond, as the event publishes it: the published time is the rule.
            closes_at = closes_at.replace(microsecond=closes_at.microsecond // 1000 * 1000)

            async def opened(session: AsyncSession) -> payloads.WindowOpened:
                await lease.resume_at(session, self.tender_id, closes_at)
                return payloads.WindowOpened(
                    closes_at=iso_utc(closes_at),
                    bids=len(listed),
                    backup_decryption=self.tender.backup_decryption,
                )

            await self._step(opened)
        if ev.WINDOW_CLOSED not in self.done:
            closes_at = _parse_time(self._first(payloads.WindowOpened).closes_at)
            async with lease.transaction(self.ctx, self.tender_id) as session:
                await ev.lock_opening(session=session, tender_id=self.tender_id)
                # Reveals are written by the bidders' requests: read what they decided.
                self._read(await ev.after(session=session, tender_id=self.tender_id))
                pending = self._pending(listed)
                if ev.WINDOW_CLOSED not in self.done and pending and self.ctx.clock() < closes_at:
                    # Nobody holds the opening while the bidders have time.
                    await lease.release(session, self.ctx, self.tender_id, resume_at=closes_at)
                    return lease.Waiting(closes_at)
                if ev.WINDOW_CLOSED not in self.done:  # else closed by the holder before us
                    await lease.resume_at(session, self.tender_id, None)
                    await self._append(
                        session,
                        payloads.WindowClosed(
                            opened=len(listed) - len(pending), still_sealed=len(pending)
                        ),
                    )
        if self.tender.backup_decryption:
            await self._decrypt(listed, via="backup")
        else:
            withdrawn: list[payloads.Event] = [
                payloads.BidWithdrawn(
                    bid_id=bid.bid_id,
                    bidder_id=bid.bidder_id,
                    bidder_name=bid.bidder_name,
                    reason="not_decrypted",
                )
                for bid in self._pending(listed)
            ]
            if withdrawn:
                async with lease.transaction(self.ctx, self.tender_id) as session:
                    await self._append_many(session, withdrawn)
        return None

    # coefficient.drawn
    def _draw(self, method: scoring.Benchmark) -> payloads.CoefficientDrawn:
        seed = secrets.coefficient_seed(master=self.ctx.keys.master, tender=self.tender)
        root = self._first(payloads.LogSealed).tree_head.root_hash
        index, coefficient = scoring.draw_coefficient(
            seed=seed, root=bytes.fromhex(root), choices=method.coefficient_choices
        )
        return payloads.CoefficientDrawn(
            seed=seed.hex(),
            commitment=self.tender.coefficient_commitment,
            root_hash=root,
            choices=tuple(plain_decimal_text(choice) for choice in method.coefficient_choices),
            index=index,
            coefficient=plain_decimal_text(coefficient),
        )

    # scores.computed
    def _score(
        self, method: scoring.Method, valid: list[payloads.BidDecrypted]
    ) -> payloads.ScoresComputed:
        listed = {bid.bid_id: bid for bid in self._first(payloads.BidsListed).bids}
        candidates = [
            scoring.Candidate(
                bid_id=bid.bid_id,
                price=Decimal(bid.price),
                received_at=_parse_time(listed[bid.bid_id].received_at),
            )
            for bid in valid
        ]
        seed = root = None
        if isinstance(method, scoring.Benchmark):
            drawn = self._first(payloads.CoefficientDrawn)
            seed, root = bytes.fromhex(drawn.seed), bytes.fromhex(drawn.root_hash)
        result = scoring.score(method, candidates, seed=seed, root=root)
        return payloads.ScoresComputed(
            method=self.tender.scoring["method"],
            ranking=tuple(
                payloads.Place(
                    rank=place.rank,
                    bid_id=place.bid_id,
                    bidder_id=listed[place.bid_id].bidder_id,
                    bidder_name=listed[place.bid_id].bidder_name,
                    price=money_text(place.price),
                    score=None if place.score is None else money_text(place.score),
                )
                for place in result.ranking
            ),
            working=_working(result.working),
        )

    # record.published, then opening.completed or opening.failed, in one transaction
    async def _finish(self, *, failure: payloads.Failed | None) -> None:
        async with lease.transaction(self.ctx, self.tender_id) as session:
            opening = await session.get(Opening, self.tender_id, with_for_update=True)
            assert opening is not None
            everything = await ev.after(session=session, tender_id=self.tender_id)
            now = self.ctx.clock()
            document = record.build(
                tender=self.tender,
                opening=opening,
                events=everything,
                failure=failure,
                published_at=now,
            )
            # The tender's audit chain as committed now: the record anchors it up to here.
            document["audit"] = await audit.head(
                session=session, chain=audit.tender_chain(self.tender_id)
            )
            text = canonical_json(document)
            signed = self.ctx.keys.signing.sign_document(document)
            opening.record = text.decode("utf-8")
            opening.record_key_id = signed["key_id"]
            opening.record_signature = signed["signature"]
            opening.completed_at = now
            opening.lease_expires_at = now
            published = payloads.RecordPublished(
                sha256=hashlib.sha256(text).hexdigest(),
                key_id=signed["key_id"],
                signature=signed["signature"],
            )
            await self._append(session, published, now)
            status = TenderStatus.failed if failure else TenderStatus.opened
            finished = await session.execute(
                update(Tender)
                .where(Tender.id == self.tender_id, Tender.status == TenderStatus.opening)
                .values(status=status, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            assert finished.rowcount == 1, "only the lease holder finishes"  # type: ignore[attr-defined]
            await self._append(session, failure or payloads.Completed(status=status.value), now)
            await audit.record(
                session=session,
                action=ev.FAILED if failure else ev.COMPLETED,
                tender_id=self.tender_id,
                details={
                    "record_sha256": hashlib.sha256(text).hexdigest(),
                    "instance": self.ctx.instance,
                }
                | ({"reason": failure.reason} if failure else {}),
            )
            await faults.reached(ev.RECORD_PUBLISHED)  # tests only: as in _step


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _working(
    working: scoring.ComprehensiveWorking | scoring.BenchmarkWorking | None,
) -> dict[str, Any] | None:
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
