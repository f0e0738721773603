"""A tender's scoring method, its settings' rules, and the ranking of the valid bids in Decimal.

The rules are those of docs/architecture.md, Scoring.

Pure: no FastAPI, no database. The caller decides which bids are valid (decrypted, form valid,
floor <= price <= ceiling) and passes them as candidates; this module ranks what it is given.
Every rule of the ranking is a total order: after the method's own rules the bid id breaks a tie,
so the ranking never depends on the order the bids arrive in and no two bids share a rank.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any, Final

from bidding.rules.money import CENT

HUNDRED: Final = Decimal(100)
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)

# The defaults of benchmark scoring (docs/architecture.md, Scoring).
DEFAULT_TRIM_THRESHOLD: Final = 5
DEFAULT_DEDUCT_ABOVE: Final = Decimal(1)
DEFAULT_DEDUCT_BELOW: Final = Decimal("0.5")
# Trimming one highest and one lowest price must leave at least one to average.
MIN_TRIM_THRESHOLD: Final = 3
# Limits of what a tender may configure.
MAX_TRIM_THRESHOLD: Final = 1000
MAX_PRICE_WEIGHT: Final = HUNDRED
MAX_COEFFICIENT_CHOICES: Final = 100

# A context of our own, never the global one: 50 digits hold any sum of prices exactly, and
# each formula below multiplies first and divides once, so a result that is exactly halfway
# between two cents stays exact and ROUND_HALF_UP rounds it up.
_CONTEXT = Context(
    prec=50, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow]
)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A valid bid to be ranked: its id, its price and when its sealed file was received."""

    bid_id: str
    price: Decimal
    received_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.price, Decimal) or not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"bid {self.bid_id}: price must be a positive Decimal")
        if self.received_at.tzinfo is None:
            raise ValueError(f"bid {self.bid_id}: received_at must be timezone-aware")


# --- the rules of a method's settings ------------------------------------------------------
# Each says why a value is refused, in the words the tender API answers with, or None.


def price_weight_problem(weight: Decimal) -> str | None:
    """Why a comprehensive price weight is refused, or None."""
    if not weight.is_finite() or weight <= 0:
        return "must be greater than 0"
    if weight > MAX_PRICE_WEIGHT:
        return f"must be at most {MAX_PRICE_WEIGHT}"
    return None


def coefficient_choices_problem(choices: Sequence[Decimal]) -> str | None:
    """Why a benchmark's coefficient choices are refused, or None."""
    if not 1 <= len(choices) <= MAX_COEFFICIENT_CHOICES:
        return f"must hold 1 to {MAX_COEFFICIENT_CHOICES} choices"
    for choice in choices:
        # K < 1 keeps the benchmark price B = A * (1 - K) positive.
        if not choice.is_finite() or not 0 <= choice < 1:
            return f"each choice must be at least 0 and below 1, not {choice}"
    if len(set(choices)) != len(choices):
        # A repeated choice would silently double its chance of being drawn.
        return "choices must be unique"
    return None


def trim_threshold_problem(threshold: int) -> str | None:
    """Why a benchmark's trim threshold is refused, or None."""
    if isinstance(threshold, bool) or not MIN_TRIM_THRESHOLD <= threshold <= MAX_TRIM_THRESHOLD:
        return f"must be a whole number from {MIN_TRIM_THRESHOLD} to {MAX_TRIM_THRESHOLD}"
    return None


def deduction_problem(deduction: Decimal) -> str | None:
    """Why a benchmark's deduction rate is refused, or None."""
    # A negative deduction would score a distant bid above 100.
    if not deduction.is_finite() or deduction < 0:
        return "must not be negative"
    return None


def _check(name: str, problem: str | None) -> None:
    if problem is not None:
        raise ValueError(f"scoring: {name} {problem}")


# --- methods -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LowestPrice:
    """Rank by price, lowest first."""


@dataclass(frozen=True, slots=True)
class Comprehensive:
    """The price part of comprehensive scoring: the lowest price scores price_weight."""

    price_weight: Decimal

    def __post_init__(self) -> None:
        _check("price_weight", price_weight_problem(self.price_weight))


@dataclass(frozen=True, slots=True)
class Benchmark:
    """Benchmark price (基准价法): score by distance from the trimmed mean lowered by K."""

    coefficient_choices: tuple[Decimal, ...]
    trim_threshold: int = DEFAULT_TRIM_THRESHOLD
    deduct_above: Decimal = DEFAULT_DEDUCT_ABOVE
    deduct_below: Decimal = DEFAULT_DEDUCT_BELOW

    def __post_init__(self) -> None:
        _check("coefficient_choices", coefficient_choices_problem(self.coefficient_choices))
        _check("trim_threshold", trim_threshold_problem(self.trim_threshold))
        _check("deduct_above", deduction_problem(self.deduct_above))
        _check("deduct_below", deduction_problem(self.deduct_below))


Method = LowestPrice | Comprehensive | Benchmark


def _decimal(value: object, name: str) -> Decimal:
    # Binary floats are refused: 0.1 as a float is not the 0.1 the officer wrote.
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"scoring: {name} is not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"scoring: {name} must be a decimal in a string, not {value!r}")
    if not number.is_finite():
        raise ValueError(f"scoring: {name} must be a finite number, not {value!r}")
    return number


def _only_keys(config: Mapping[str, object], allowed: Iterable[str]) -> None:
    # A misspelt key must not silently fall back to a default and change the scores.
    unknown = sorted(set(config) - {"method", *allowed})
    if unknown:
        raise ValueError(f"scoring: unknown keys {', '.join(unknown)}")


def parse_method(config: Mapping[str, object]) -> Method:
    """The typed scoring method of a tender's stored `scoring` config; ValueError if malformed."""
    method = config.get("method")
    if method == "lowest_price":
        _only_keys(config, ())
        return LowestPrice()
    if method == "comprehensive":
        _only_keys(config, ("price_weight",))
        return Comprehensive(price_weight=_decimal(config.get("price_weight"), "price_weight"))
    if method == "benchmark":
        _only_keys(
            config, ("coefficient_choices", "trim_threshold", "deduct_above", "deduct_below")
        )
        choices = config.get("coefficient_choices")
        if not isinstance(choices, list | tuple):
            raise ValueError("scoring: coefficient_choices must be a list of decimal strings")
        trim_threshold = config.get("trim_threshold", DEFAULT_TRIM_THRESHOLD)
        if isinstance(trim_threshold, bool) or not isinstance(trim_threshold, int):
            raise ValueError("scoring: trim_threshold must be a whole number")
        return Benchmark(
            coefficient_choices=tuple(
                _decimal(choice, "coefficient_choices") for choice in choices
            ),
            trim_threshold=trim_threshold,
            deduct_above=_decimal(config.get("deduct_above", DEFAULT_DEDUCT_ABOVE), "deduct_above"),
            deduct_below=_decimal(config.get("deduct_below", DEFAULT_DEDUCT_BELOW), "deduct_below"),
        )
    raise ValueError(f"scoring: unknown method {method!r}")


# --- output --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Score:
    """One bid's place in the ranking.

    `score` is None for lowest_price, the price score (out of price_weight) for comprehensive
    and the score out of 100 for benchmark; it is quantized to 0.01.
    """

    bid_id: str
    price: Decimal
    score: Decimal | None
    rank: int


@dataclass(frozen=True, slots=True)
class ComprehensiveWorking:
    """The values behind comprehensive price scores: P_min, the lowest valid price."""

    lowest_price: Decimal


@dataclass(frozen=True, slots=True)
class BenchmarkWorking:
    """The values behind benchmark scores, for the opening record to show.

    `excluded_prices` are the lowest and the highest price left out of the average when there
    were at least trim_threshold bids, and empty otherwise.
    """

    average: Decimal  # A
    excluded_prices: tuple[Decimal, ...]
    coefficient_index: int
    coefficient: Decimal  # K
    benchmark_price: Decimal  # B


@dataclass(frozen=True, slots=True)
class Result:
    """The ranking in rank order (ranks 1..n) and the method's intermediate values."""

    ranking: tuple[Score, ...]
    working: ComprehensiveWorking | BenchmarkWorking | None = None


# --- the methods ---------------------------------------------------------------------------


def draw_coefficient(
    *, seed: bytes, root: bytes, choices: Sequence[Decimal]
) -> tuple[int, Decimal]:
    """The index and value of K: sha256(seed || root) as a big-endian integer, mod len(choices).

    Neither the officer (who committed to the seed before any bid) nor a bidder (whose bid
    changes the sealed root) can steer the draw alone.
    """
    if not choices:
        raise ValueError("no coefficient choices to draw from")
    digest = hashlib.sha256(seed + root).digest()
    index = int.from_bytes(digest, "big") % len(choices)
    return index, choices[index]


def _ranked(
    candidates: Sequence[Candidate],
    scores: Mapping[str, Decimal | None],
    key: Callable[[Candidate], tuple[Any, ...]],
) -> tuple[Score, ...]:
    # The bid id closes every key, so the order is total and independent of input order.
    ordered = sorted(candidates, key=lambda bid: (*key(bid), bid.bid_id))
    return tuple(
        Score(bid_id=bid.bid_id, price=bid.price, score=scores[bid.bid_id], rank=rank)
        for rank, bid in enumerate(ordered, start=1)
    )


def _lowest_price(candidates: Sequence[Candidate]) -> Result:
    scores = dict.fromkeys((bid.bid_id for bid in candidates), None)
    return Result(ranking=_ranked(candidates, scores, lambda bid: (bid.price, bid.received_at)))


def _comprehensive(method: Comprehensive, candidates: Sequence[Candidate]) -> Result:
    lowest = min(bid.price for bid in candidates)
    scores = {bid.bid_id: _cents(lowest * method.price_weight / bid.price) for bid in candidates}
    ranking = _ranked(candidates, scores, lambda bid: (-scores[bid.bid_id], bid.received_at))
    return Result(ranking=ranking, working=ComprehensiveWorking(lowest_price=lowest))


def _benchmark_score(price: Decimal, benchmark: Decimal, method: Benchmark) -> Decimal:
    deduct = method.deduct_above if price > benchmark else method.deduct_below
    if benchmark == 0:
        # Only when A * (1 - K) rounds to 0.00 (sub-cent prices): the limit of the formula
        # as B falls to 0, where every (positive) price is infinitely far above B.
        return _cents(HUNDRED if deduct == 0 else _ZERO)
    deduction = abs(price - benchmark) * HUNDRED * deduct / benchmark
    return _cents(max(_ZERO, HUNDRED - deduction))


def _benchmark(
    method: Benchmark, candidates: Sequence[Candidate], *, seed: bytes, root: bytes
) -> Result:
    prices = sorted(bid.price for bid in candidates)
    excluded: tuple[Decimal, ...] = ()
    if len(prices) >= method.trim_threshold:
        excluded = (prices[0], prices[-1])
        prices = prices[1:-1]
    average = _cents(sum(prices, _ZERO) / len(prices))
    index, coefficient = draw_coefficient(seed=seed, root=root, choices=method.coefficient_choices)
    benchmark = _cents(average * (_ONE - coefficient))
    scores = {bid.bid_id: _benchmark_score(bid.price, benchmark, method) for bid in candidates}
    ranking = _ranked(
        candidates, scores, lambda bid: (-scores[bid.bid_id], bid.price, bid.received_at)
    )
    working = BenchmarkWorking(
        average=average,
        excluded_prices=excluded,
        coefficient_index=index,
        coefficient=coefficient,
        benchmark_price=benchmark,
    )
    return Result(ranking=ranking, working=working)


def score(
    method: Method,
    candidates: Sequence[Candidate],
    *,
    seed: bytes | None = None,
    root: bytes | None = None,
) -> Result:
    """Score and rank the valid bids; benchmark needs the coefficient seed and the sealed root.

    No bids give an empty ranking (the pipeline decides what a failed opening is).
    """
    ids = [bid.bid_id for bid in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError("each bid may be a candidate only once")
    if isinstance(method, Benchmark) and (seed is None or root is None):
        raise ValueError("benchmark scoring needs the coefficient seed and the sealed root hash")
    if not candidates:
        return Result(ranking=())
    with localcontext(_CONTEXT):
        match method:
            case LowestPrice():
                return _lowest_price(candidates)
            case Comprehensive():
                return _comprehensive(method, candidates)
            case Benchmark():
                assert seed is not None and root is not None, "checked above"
                return _benchmark(method, candidates, seed=seed, root=root)
