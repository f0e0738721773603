"""The refusals of the opening's readers, each with its status and type."""

from bidding.errors import Conflict, NotFound


class RecordNotPublished(Conflict):
    """The opening record is published when the opening ends."""

    type = "record_not_published"


class NotScored(Conflict):
    """The results come once the opening has scored the bids."""

    type = "not_scored"


class LogNotSealed(Conflict):
    """The receipt log is sealed at the deadline."""

    type = "log_not_sealed"


class LeafNotFound(NotFound):
    """No receipt with this leaf hash is in the sealed log."""

    type = "leaf_not_found"


class LeavesNotPublished(Conflict):
    """The log's receipts are published once the opening has ended."""

    type = "leaves_not_published"
