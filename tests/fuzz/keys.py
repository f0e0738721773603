"""Fixed keys of the fuzz targets, so that the seed corpus holds files sealed to them and
receipts signed by them. Test keys only: they protect nothing."""

import hashlib

from bidding.crypto import age
from bidding.crypto.signing import SigningKey

IDENTITY = age.Identity(hashlib.sha256(b"bidding fuzz identity").digest())
STRANGER = age.Identity(hashlib.sha256(b"bidding fuzz stranger").digest())
NOBODY = age.Identity(hashlib.sha256(b"bidding fuzz nobody").digest())  # no seed is sealed to it
SIGNING_KEY = SigningKey.from_private_bytes(hashlib.sha256(b"bidding fuzz receipts").digest())
KEYS = {SIGNING_KEY.key_id: SIGNING_KEY.public_key}

# What the receipt seeds say, and what the receipt target checks them against.
RECEIPT_TENDER = "6c1d8a2e-0000-4000-8000-000000000001"
RECEIPT_SHA256 = "ab" * 32
RECEIPT_SIZE = 1234
