"""The refusals of tenders, documents and sealed bids, each with its status and type."""

from bidding.errors import BadRequest, Conflict, NotFound, Unprocessable


class ReferenceTaken(Conflict):
    """The organization already has a tender with this reference."""

    type = "reference_taken"


class DeadlineTooFar(Unprocessable):
    """The deadline is further away than the platform allows."""

    type = "deadline_too_far"


class NotEditable(Conflict):
    """The tender's status no longer allows the change."""

    type = "not_editable"


class NotAmendable(Conflict):
    """Only a published tender is amended."""

    type = "not_amendable"


class DeadlinePassed(Conflict):
    """The tender's deadline has passed."""

    type = "deadline_passed"


class DeadlineMovedEarlier(Unprocessable):
    """An amendment may only move the deadline later."""

    type = "deadline_moved_earlier"


class NotADraft(Conflict):
    """Only a draft can be published."""

    type = "not_a_draft"


class BiddingPeriodTooShort(Unprocessable):
    """Too little time between publication and deadline."""

    type = "bidding_period_too_short"


class NotCancellable(Conflict):
    """The tender's status does not allow cancelling it."""

    type = "not_cancellable"


class TooManyDocuments(Conflict):
    """The tender has as many documents as it may."""

    type = "too_many"


class NameTaken(Conflict):
    """The tender already has a document of this name."""

    type = "name_taken"


class TenderNotOpen(Conflict):
    """The tender takes no bids (not published)."""

    type = "tender_not_open"


class IdempotencyKeyReused(Conflict):
    """The Idempotency-Key was used for another upload."""

    type = "idempotency_key_reused"


class NoBidToWithdraw(Conflict):
    """There is no bid to withdraw."""

    type = "no_bid"


class NoBid(NotFound):
    """The bidder has no bid for the tender."""

    type = "no_bid"


class BidUnreadable(Conflict):
    """The stored bid's header cannot be read."""

    type = "bid_unreadable"


class NotSealed(Unprocessable):
    """The upload is not an age file sealed to the tender."""

    type = "not_sealed"


class UploadInterrupted(BadRequest):
    """The client went away during the upload."""

    type = "upload_interrupted"


class UploadStalled(BadRequest):
    """The upload stopped coming."""

    type = "upload_stalled"


class BadLength(BadRequest):
    """A Content-Length that is not a non-negative integer."""

    type = "bad_length"
