"""The refusals of the opening room and of the opening's readers, each with its status and
type."""

from bidding.errors import Conflict, NotFound, Unprocessable


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


class CheckInClosed(Conflict):
    """Check-in ends with the opening."""

    type = "check_in_closed"


class CheckInNotOpen(Conflict):
    """Bidders check in from the bid deadline on."""

    type = "check_in_not_open"


class OpeningNotRunning(Conflict):
    """Objections are raised while the opening is in progress."""

    type = "opening_not_running"


class ObjectionNotFound(NotFound):
    """No objection with this id in the opening."""

    type = "objection_not_found"


class AlreadyAnswered(Conflict):
    """An objection is answered once."""

    type = "already_answered"


class AlreadyConfirmed(Conflict):
    """A bidder confirms the record once."""

    type = "already_confirmed"


class WindowNotOpen(Conflict):
    """The decryption window has not opened yet."""

    type = "window_not_open"


class WindowClosed(Conflict):
    """The decryption window has closed, or the opening is over."""

    type = "window_closed"


class AlreadyOpened(Conflict):
    """The bid has been opened already."""

    type = "already_opened"


class TooManyTries(Conflict):
    """The bid's wrong file keys have used up its tries."""

    type = "too_many_tries"


class FileKeyRefused(Unprocessable):
    """The revealed file key does not open the bid; `tries_left` says how many remain."""

    type = "wrong_file_key"
