"""Deadline-driven openings: one APScheduler job per tender, rebuilt from the database.

The jobs are a cache of the tenders table (docs/architecture.md, Principles): at start-up, after
every publish, amendment or cancellation here, and every few seconds for changes made by other
instances, the jobs are made to match the published tenders' deadlines. Every instance schedules
every deadline; the compare-and-set in the pipeline lets exactly one of them open the tender.

The same scheduler signs the audit trail's moved chain heads at intervals
(bidding.audit.anchors): every instance tries, one anchor per head is made.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from sqlalchemy import select

from bidding.audit import anchors as audit_anchors
from bidding.opening import events as ev
from bidding.opening import lease, pipeline
from bidding.opening import service as opening_service
from bidding.opening.models import Opening
from bidding.tenders.models import Tender, TenderStatus

logger = logging.getLogger(__name__)

_JOB_PREFIX = "opening:"
_RETRY_FIRST = timedelta(seconds=1)
_RETRY_MOST = timedelta(seconds=30)
# After another instance's lease runs out, a moment of slack before taking over.
_TAKEOVER_SLACK = timedelta(milliseconds=200)


def instance_name() -> str:
    """A name for this process, unique across restarts: host, pid and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _next_look(
    now: datetime, lease_expires_at: datetime | None, resume_at: datetime | None
) -> datetime:
    """When an unfinished opening is to be looked at: a takeover once the lease lapses; held
    by nobody, when it is to resume (a bidder-mode window's close, or now)."""
    if lease_expires_at is not None:
        return max(now, lease_expires_at + _TAKEOVER_SLACK)
    return max(now, resume_at or now)


class OpeningScheduler:
    """Runs each tender's opening at its deadline, in this process, if it wins the claim."""

    def __init__(
        self,
        ctx: lease.Context,
        *,
        sync_every: timedelta,
        anchor_every: timedelta | None = None,
    ) -> None:
        self.ctx = ctx
        self._sync_every = sync_every
        self._anchor_every = anchor_every
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._failures: dict[uuid.UUID, int] = {}

    async def start(self) -> None:
        """Start the scheduler, schedule every tender, and resume unfinished openings."""
        self._scheduler.start()
        await self.sync()
        self._scheduler.add_job(
            self.sync,
            "interval",
            seconds=self._sync_every.total_seconds(),
            id="openings:sync",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=None,
        )
        if self._anchor_every is not None:
            self._scheduler.add_job(
                self.anchor,
                "interval",
                seconds=self._anchor_every.total_seconds(),
                id="audit:anchor",
                replace_existing=True,
                coalesce=True,
                misfire_grace_time=None,
            )

    async def stop(self) -> None:
        """Stop scheduling and cancel the openings running here; their leases will expire."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def anchor(self) -> list[audit_anchors.Anchor]:
        """Sign the heads of the audit chains that moved; the anchors this instance made."""
        made = await audit_anchors.anchor_moved_chains(
            session_factory=self.ctx.session_factory,
            signing=self.ctx.keys.signing,
            recorded=opening_service.recorded,
            clock=self.ctx.clock,
        )
        if made:
            logger.info("audit: anchored %d chain heads", len(made))
        return made

    def scheduled_at(self, tender_id: uuid.UUID) -> datetime | None:
        """When the tender's opening job will next run here, if one is scheduled."""
        job = self._scheduler.get_job(_JOB_PREFIX + str(tender_id))
        return None if job is None else job.next_run_time

    def _schedule(self, tender_id: uuid.UUID, at: datetime) -> None:
        # An overdue date still runs (misfire_grace_time=None): no opening may be skipped.
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=at,
            args=[tender_id],
            id=_JOB_PREFIX + str(tender_id),
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def _unschedule(self, tender_id: uuid.UUID) -> None:
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(_JOB_PREFIX + str(tender_id))

    async def sync(self) -> None:
        """Make the jobs match the database: published deadlines and unfinished openings."""
        async with self.ctx.session_factory() as session:
            published = (
                await session.execute(
                    select(Tender.id, Tender.bid_deadline).where(
                        Tender.status == TenderStatus.published
                    )
                )
            ).all()
            unfinished = (
                await session.execute(
                    select(Tender.id, Opening.lease_expires_at, Opening.resume_at)
                    .outerjoin(Opening, Opening.tender_id == Tender.id)
                    .where(Tender.status == TenderStatus.opening)
                )
            ).all()
        deadlines = {tender_id: deadline for tender_id, deadline in published}
        wanted = dict(deadlines)
        now = self.ctx.clock()
        for tender_id, lease_expires_at, resume_at in unfinished:
            wanted[tender_id] = _next_look(now, lease_expires_at, resume_at)
        for tender_id, at in wanted.items():
            if tender_id in self._running:
                continue
            current = self.scheduled_at(tender_id)
            # A deadline moved elsewhere is followed. An unfinished opening is looked at no
            # later than its lease allows a takeover, whatever job it had before.
            if current is None or (current != at if tender_id in deadlines else current > at):
                self._schedule(tender_id, at)
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_JOB_PREFIX):
                tender_id = uuid.UUID(job.id.removeprefix(_JOB_PREFIX))
                if tender_id not in wanted:
                    self._unschedule(tender_id)

    async def deadline_changed(self, tender_id: uuid.UUID) -> None:
        """Schedule, move or drop one tender's job after a change made by this instance (a
        publication, an amendment, a cancellation, the last reveal of a window)."""
        async with self.ctx.session_factory() as session:
            row = (
                await session.execute(
                    select(Tender.status, Tender.bid_deadline).where(Tender.id == tender_id)
                )
            ).first()
            opening = await session.get(Opening, tender_id)
        if row is not None and row.status is TenderStatus.published:
            self._schedule(tender_id, row.bid_deadline)
        elif row is not None and row.status is TenderStatus.opening and opening is not None:
            if tender_id not in self._running:
                at = _next_look(self.ctx.clock(), opening.lease_expires_at, opening.resume_at)
                self._schedule(tender_id, at)
        elif row is None or row.status is not TenderStatus.opening:
            self._unschedule(tender_id)

    async def _fire(self, tender_id: uuid.UUID) -> None:
        if tender_id in self._running:
            return
        self._running[tender_id] = asyncio.create_task(
            self._open(tender_id), name=f"open-{tender_id}"
        )

    async def _open(self, tender_id: uuid.UUID) -> None:
        try:
            outcome = await pipeline.run(self.ctx, tender_id)
        except ev.LeaseLost:
            logger.warning("tender %s: another instance took the opening over", tender_id)
            self._schedule(tender_id, self.ctx.clock() + self.ctx.lease)
        except Exception:
            failures = self._failures[tender_id] = self._failures.get(tender_id, 0) + 1
            delay = min(_RETRY_FIRST * 2 ** (failures - 1), _RETRY_MOST)
            logger.exception(
                "tender %s: the opening failed (attempt %d); retrying in %s",
                tender_id,
                failures,
                delay,
            )
            self._schedule(tender_id, self.ctx.clock() + delay)
        else:
            self._failures.pop(tender_id, None)
            match outcome:
                case lease.NotDue(deadline=deadline):
                    self._schedule(tender_id, deadline)
                case lease.HeldElsewhere(until=until):
                    self._schedule(tender_id, until + _TAKEOVER_SLACK)
                case lease.Waiting(until=until):
                    # The last reveal may have come while this run was letting go.
                    async with self.ctx.session_factory() as session:
                        resume_at = await session.scalar(
                            select(Opening.resume_at).where(Opening.tender_id == tender_id)
                        )
                    self._schedule(tender_id, min(until, resume_at or until))
                case lease.Claimed():
                    logger.info("tender %s: opening finished", tender_id)
        finally:
            self._running.pop(tender_id, None)
