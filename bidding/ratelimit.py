"""Rate limits: a token bucket per key, kept in this process's memory, on an injectable clock;
and the pause that sign-ins to an account under attack wait, on the same clock.

Each instance counts for itself: behind a load balancer spreading requests over N instances,
a client gets up to N times the rate. The limits are there to keep a flood from spending the
platform's CPU (Argon2) and disk; the per-account sign-in throttle, which must hold across
instances, lives in the database (bidding.auth.service).
"""

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
# Past this many keys the least recently used bucket is forgotten, which only ever forgives:
# memory stays bounded however many addresses a flood comes from.
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Rate:
    """A bucket of `burst` requests, refilled at `burst` per `period` seconds."""

    burst: int
    period: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.period <= 0:
            raise ValueError("a rate needs at least 1 request in a positive period")

    @classmethod
    def parse(cls, value: Any) -> "Rate":
        """'10/minute' (also second, hour, day): 10 at once, then 10 a minute."""
        if isinstance(value, Rate):
            return value
        match = _RATE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError("a rate is written COUNT/UNIT, e.g. 10/minute (second, hour, day)")
        return cls(burst=int(match[1]), period=_PERIODS[match[2]])

    def __str__(self) -> str:
        unit = next((u for u, s in _PERIODS.items() if s == self.period), None)
        return f"{self.burst}/{unit}" if unit else f"{self.burst}/{self.period:g}s"


class RateLimiter:
    """Token buckets by key: a full bucket lets `burst` requests through at once, then one
    each `period / burst` seconds. A refused request spends nothing."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._per_second = rate.burst / rate.period
        # key -> (tokens left, when counted); the most recently used last.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable) -> float:
        """Spend one request of the key's bucket: 0.0 if it may go ahead, else the seconds
        until it may."""
        now = self._clock()
        tokens, then = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + max(0.0, now - then) * self._per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._per_second
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class RateLimits:
    """The app's limiters: sign-ins and registrations per client address, bid submissions
    per bidding organization and tender; and how a request waits (`pause`, seconds)."""

    sign_in: RateLimiter
    registration: RateLimiter
    submission: RateLimiter
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def of(
        cls,
        *,
        sign_in: Rate,
        registration: Rate,
        submission: Rate,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> "RateLimits":
        return cls(
            sign_in=RateLimiter(sign_in, clock=clock),
            registration=RateLimiter(registration, clock=clock),
            submission=RateLimiter(submission, clock=clock),
            pause=pause,
        )
