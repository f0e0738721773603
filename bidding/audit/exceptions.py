"""The refusals of the audit trail's readers."""

from bidding.errors import Conflict


class AuditSealed(Conflict):
    """A published tender's trail, which would tell who bid, before its opening."""

    type = "audit_sealed"
