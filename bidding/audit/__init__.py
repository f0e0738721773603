"""The audit trail: hash-chained, append-only entries of security-relevant actions."""
