"""Response bodies of the audit trail API."""

from typing import Any

from pydantic import BaseModel, Field


class AuditActor(BaseModel):
    """Who acted: the user, with their role and organization at the time."""

    user_id: str | None
    role: str | None
    organization_id: str | None


class AuditEntryRead(BaseModel):
    """One entry, its content exactly as hashed:
    entry_hash = SHA-256(bytes of prev_hash || canonical JSON of every field but the hashes)."""

    chain: str = Field(examples=["tender:7169926e-5b0e-4b5c-9a57-64d1f0c3a0b1"])
    position: int = Field(description="1, 2, 3… in the chain, without gaps")
    at: str = Field(
        description="ISO 8601 UTC with microseconds", examples=["2026-11-27T08:00:03.120456Z"]
    )
    actor: AuditActor | None = Field(description="null for the platform itself")
    action: str = Field(examples=["bid.submitted"])
    tender_id: str | None
    details: dict[str, Any]
    prev_hash: str = Field(description="the previous entry's entry_hash; 64 zeros for the first")
    entry_hash: str


class AuditPage(BaseModel):
    """A page of one chain, in order."""

    chain: str
    entries: list[AuditEntryRead]
    has_more: bool
    next_after: int = Field(description="the `after` that asks for the next page")


class AuditAnchorRead(BaseModel):
    """A chain's head signed by the platform. The signature is Ed25519, by the key `key_id`
    of GET /api/v1/keys, over the canonical JSON of {"kind": "audit_anchor", "chain", "size",
    "head", "anchored_at"}; `head` is the entry_hash of the chain's entry at `size`."""

    id: int = Field(description="1, 2, 3… in the order anchors were made; not signed")
    chain: str = Field(examples=["platform"])
    size: int = Field(description="the number of entries the chain had")
    head: str = Field(description="the entry_hash of its entry at that size")
    anchored_at: str = Field(examples=["2026-11-27T09:00:00.000Z"])
    key_id: str
    signature: str = Field(description="standard base64 of the 64-byte signature")


class AnchorPage(BaseModel):
    """A page of anchors, in the order they were made."""

    anchors: list[AuditAnchorRead]
    has_more: bool
    next_after: int = Field(description="the `after` that asks for the next page")
