"""Fault injection for the reliability tests (test-only): a pause at a named point of the
opening, so that a test can kill the process exactly there.

`BIDDING_FAULT_PAUSE=<point>:<seconds>` in a server's environment makes its opening wait that
long each time it reaches that point, inside the step's transaction, its event written and not
yet committed. The points are the event types of the steps written one event at a time
(log.sealed, bids.listed, decryption.window_opened, coefficient.drawn, scores.computed) and
record.published (the record signed, the opening's row locked, the tender's status and the
final events written). Unset, as it is everywhere but in tests/reliability, `reached` does
nothing. Never set it in production: it only delays openings.
"""

import asyncio
import logging
import os

logger = logging.getLogger(__name__)

PAUSE_ENV = "BIDDING_FAULT_PAUSE"


async def reached(point: str) -> None:
    """Pause here when the environment asks for a pause at this point (tests only)."""
    asked = os.environ.get(PAUSE_ENV)
    if not asked:
        return
    name, _, seconds = asked.rpartition(":")
    if name != point:
        return
    # The tests wait for this line in the server's log before they kill it.
    logger.warning("fault injection: pausing %s s at %s (%s)", seconds, point, PAUSE_ENV)
    await asyncio.sleep(float(seconds))
