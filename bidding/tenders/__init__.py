"""Tenders and their lifecycle: drafts, publication, amendments, cancellation."""
