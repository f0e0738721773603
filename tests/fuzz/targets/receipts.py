"""A receipt file as the bidder's client reads and checks it."""

import os
import tempfile
from pathlib import Path

from bidding import client
from bidding.crypto.receipts import receipt_problems
from tests.fuzz.keys import KEYS, RECEIPT_SHA256, RECEIPT_SIZE, RECEIPT_TENDER

_FILE = Path(tempfile.gettempdir()) / f"bidding-fuzz-receipt-{os.getpid()}.json"


def receipt(data: bytes) -> None:
    """A receipt file: ClientError when it is no JSON, else its problems in words; no raise."""
    _FILE.write_bytes(data)
    try:
        loaded = client.load_receipt(_FILE)
    except client.ClientError:
        return
    finally:
        _FILE.unlink()
    problems = receipt_problems(loaded, KEYS)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    checked = client.check_receipt(
        loaded, KEYS, tender_id=RECEIPT_TENDER, sha256=RECEIPT_SHA256, size=RECEIPT_SIZE
    )
    assert checked[: len(problems)] == problems
    if isinstance(loaded, dict):
        name = client.receipt_filename(RECEIPT_TENDER, loaded)
        assert name.startswith(f"receipt-{RECEIPT_TENDER}") and "/" not in name
