"""Tests for scoring: the ranking and every score match the formulas, to the cent.

The formulas are those of docs/architecture.md, Scoring.
"""

import decimal
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidding.rules import scoring
from bidding.rules.scoring import (
    Benchmark,
    BenchmarkWorking,
    Candidate,
    Comprehensive,
    ComprehensiveWorking,
    LowestPrice,
    Result,
)

DEADLINE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
SEED = bytes.fromhex("5eed" * 16)
ROOT = hashlib.sha256(b"sealed tree head").digest()


def bid(bid_id: str, price: str, minutes_before_deadline: int = 60) -> Candidate:
    """A valid bid received the given number of minutes before the deadline."""
    received_at = DEADLINE - timedelta(minutes=minutes_before_deadline)
    return Candidate(bid_id=bid_id, price=Decimal(price), received_at=received_at)


def table(result: Result) -> list[tuple[int, str, str | None]]:
    """The ranking as the opening record prints it: rank, bid, score text."""
    return [
        (row.rank, row.bid_id, None if row.score is None else str(row.score))
        for row in result.ranking
    ]


def benchmark(*choices: str, **options: object) -> Benchmark:
    """A benchmark method as a tender stores it: decimals as strings."""
    method = scoring.parse_method(
        {"method": "benchmark", "coefficient_choices": list(choices), **options}
    )
    assert isinstance(method, Benchmark)
    return method


def benchmark_working(result: Result) -> BenchmarkWorking:
    assert isinstance(result.working, BenchmarkWorking)
    return result.working


class TestParseMethod:
    def test_the_stored_configs_become_typed_methods(self) -> None:
        assert scoring.parse_method({"method": "lowest_price"}) == LowestPrice()
        assert scoring.parse_method(
            {"method": "comprehensive", "price_weight": "30"}
        ) == Comprehensive(price_weight=Decimal("30"))
        stored = {
            "method": "benchmark",
            "coefficient_choices": ["0.005", "0.01"],
            "trim_threshold": 6,
            "deduct_above": "1.5",
            "deduct_below": "0.8",
        }
        assert scoring.parse_method(stored) == Benchmark(
            coefficient_choices=(Decimal("0.005"), Decimal("0.01")),
            trim_threshold=6,
            deduct_above=Decimal("1.5"),
            deduct_below=Decimal("0.8"),
        )

    def test_benchmark_defaults_are_those_of_the_design(self) -> None:
        method = scoring.parse_method({"method": "benchmark", "coefficient_choices": ["0"]})
        assert method == Benchmark(
            coefficient_choices=(Decimal("0"),),
            trim_threshold=5,
            deduct_above=Decimal("1"),
            deduct_below=Decimal("0.5"),
        )

    @pytest.mark.parametrize(
        "config",
        [
            {},
            {"method": "lottery"},
            {"method": "lowest_price", "price_weight": "30"},  # a key the method has not
            {"method": "comprehensive"},
            {"method": "comprehensive", "price_weight": 0.3},  # a binary float
            {"method": "comprehensive", "price_weight": "thirty"},
            {"method": "comprehensive", "price_weight": "NaN"},
            {"method": "comprehensive", "price_weight": "0"},
            {"method": "benchmark"},
            {"method": "benchmark", "coefficient_choices": []},
            {"method": "benchmark", "coefficient_choices": "0.01"},
            {"method": "benchmark", "coefficient_choices": ["1"]},  # B would be 0
            {"method": "benchmark", "coefficient_choices": ["-0.01"]},
            {"method": "benchmark", "coefficient_choices": ["0.01"], "trim_threshold": 2},
            {"method": "benchmark", "coefficient_choices": ["0.01"], "trim_threshold": "5"},
            {"method": "benchmark", "coefficient_choices": ["0.01"], "deduct_above": "-1"},
            {"method": "benchmark", "coefficient_choices": ["0.01"], "deduct_belw": "1"},
        ],
    )
    def test_a_malformed_config_is_refused(self, config: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            scoring.parse_method(config)


class TestDrawCoefficient:
    def test_the_index_is_sha256_of_seed_then_root_big_endian_mod_the_choices(self) -> None:
        choices = [Decimal(n) / 1000 for n in range(100)]  # 0.000 .. 0.099
        digest = hashlib.sha256(SEED + ROOT).digest()
        expected = int.from_bytes(digest, "big") % len(choices)
        # The pair tells the mistakes apart: another byte order or concatenation would differ.
        assert expected != int.from_bytes(digest, "little") % len(choices)
        swapped = hashlib.sha256(ROOT + SEED).digest()
        assert expected != int.from_bytes(swapped, "big") % len(choices)

        assert scoring.draw_coefficient(seed=SEED, root=ROOT, choices=choices) == (
            expected,
            choices[expected],
        )

    def test_a_single_choice_is_always_drawn(self) -> None:
        assert scoring.draw_coefficient(seed=SEED, root=ROOT, choices=[Decimal("0.02")]) == (
            0,
            Decimal("0.02"),
        )

    def test_no_choices_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            scoring.draw_coefficient(seed=SEED, root=ROOT, choices=[])


class TestLowestPrice:
    def test_the_cheapest_bid_wins(self) -> None:
        bids = [bid("a", "1200000.00"), bid("b", "998000.50"), bid("c", "1000000.00")]
        result = scoring.score(LowestPrice(), bids)
        assert table(result) == [(1, "b", None), (2, "c", None), (3, "a", None)]
        assert [row.price for row in result.ranking] == [
            Decimal("998000.50"),
            Decimal("1000000.00"),
            Decimal("1200000.00"),
        ]
        assert result.working is None

    def test_equal_prices_are_ranked_by_who_bid_first(self) -> None:
        bids = [
            bid("bid-1", "500000.00", minutes_before_deadline=5),
            bid("bid-3", "500000.00", minutes_before_deadline=300),
            bid("bid-2", "499999.99", minutes_before_deadline=1),
        ]
        result = scoring.score(LowestPrice(), bids)
        # The cheapest first, however late; then bid-3 before bid-1 because it came first.
        assert [row.bid_id for row in result.ranking] == ["bid-2", "bid-3", "bid-1"]

    def test_same_price_and_same_time_fall_back_to_the_bid_id(self) -> None:
        # Received in the same microsecond: the bid id is the last, stable tie-break.
        bids = [bid("b-2", "100.00", 10), bid("b-1", "100.00", 10)]
        result = scoring.score(LowestPrice(), bids)
        assert [(row.rank, row.bid_id) for row in result.ranking] == [(1, "b-1"), (2, "b-2")]


class TestComprehensive:
    def test_price_scores_are_p_min_over_p_times_the_weight(self) -> None:
        # Weight 30, P_min = 300,000.00:
        #   300,000 / 300,000 * 30 = 30            -> 30.00
        #   300,000 / 400,000 * 30 = 22.5          -> 22.50
        #   300,000 / 450,000 * 30 = 20            -> 20.00
        #   300,000 / 700,000 * 30 = 12.857142...  -> 12.86
        bids = [
            bid("d", "700000.00"),
            bid("b", "400000.00"),
            bid("a", "300000.00"),
            bid("c", "450000.00"),
        ]
        result = scoring.score(Comprehensive(price_weight=Decimal("30")), bids)
        assert table(result) == [
            (1, "a", "30.00"),
            (2, "b", "22.50"),
            (3, "c", "20.00"),
            (4, "d", "12.86"),
        ]
        assert result.working == ComprehensiveWorking(lowest_price=Decimal("300000.00"))

    def test_a_half_cent_rounds_up(self) -> None:
        # 1,000.00 / 9,600.00 * 30 = 3.125 -> 3.13 (ROUND_HALF_EVEN would give 3.12).
        bids = [bid("cheap", "1000.00"), bid("dear", "9600.00")]
        result = scoring.score(Comprehensive(price_weight=Decimal("30")), bids)
        assert table(result) == [(1, "cheap", "30.00"), (2, "dear", "3.13")]

    def test_an_exact_half_stays_exact_when_p_min_over_p_does_not_terminate(self) -> None:
        # 100 / 700 * 0.035 = 0.005 exactly -> 0.01; dividing first (0.142857... cut at 50
        # digits, times 0.035) lands a hair below the half and would round down to 0.00.
        bids = [bid("cheap", "100.00"), bid("dear", "700.00")]
        result = scoring.score(Comprehensive(price_weight=Decimal("0.035")), bids)
        assert table(result) == [(1, "cheap", "0.04"), (2, "dear", "0.01")]

    def test_equal_price_scores_are_ranked_by_who_bid_first(self) -> None:
        # Weight 30, P_min = 100,000.00; 100,000.01 scores 29.9997 -> 30.00 as well. The
        # rule is price score, then receipt time, so the earliest of the three ranks first.
        bids = [
            bid("bid-2 cheapest", "100000.00", minutes_before_deadline=10),
            bid("bid-3 a cent dearer", "100000.01", minutes_before_deadline=20),
            bid("bid-1 cheapest", "100000.00", minutes_before_deadline=5),
        ]
        result = scoring.score(Comprehensive(price_weight=Decimal("30")), bids)
        assert table(result) == [
            (1, "bid-3 a cent dearer", "30.00"),
            (2, "bid-2 cheapest", "30.00"),
            (3, "bid-1 cheapest", "30.00"),
        ]


class TestBenchmark:
    def test_six_bids_drop_the_highest_and_the_lowest_before_averaging(self) -> None:
        # Choices 0.03 / 0.04 / 0.05 / 0.06; this seed and root draw index 2, so K = 0.05.
        choices = ("0.03", "0.04", "0.05", "0.06")
        seed, root = b"coefficient seed 7", hashlib.sha256(b"tree head").digest()
        index = int.from_bytes(hashlib.sha256(seed + root).digest(), "big") % len(choices)
        assert index == 2
        # n = 6 >= 5: drop 1,200,000 and 800,000;
        #   A = (1,000,000 + 950,000 + 900,000 + 1,050,000) / 4 = 975,000.00
        #   B = 975,000 * (1 - 0.05) = 926,250.00
        # Above B (E = 1), below B (E = 0.5); score = 100 - |P - B| / B * 100 * E:
        #   900,000    below: 26,250 / 926,250 * 50  =  1.4170 -> 98.58
        #   950,000    above: 23,750 / 926,250 * 100 =  2.5641 -> 97.44
        #   800,000    below: 126,250 / 926,250 * 50 =  6.8151 -> 93.18
        #   1,000,000  above: 73,750 / 926,250 * 100 =  7.9622 -> 92.04
        #   1,050,000  above: 123,750 / 926,250 * 100 = 13.3603 -> 86.64
        #   1,200,000  above: 273,750 / 926,250 * 100 = 29.5547 -> 70.45 (scored, not averaged)
        bids = [
            bid("a", "1000000.00"),
            bid("b", "950000.00"),
            bid("c", "900000.00"),
            bid("d", "1050000.00"),
            bid("e", "1200000.00"),
            bid("f", "800000.00"),
        ]
        result = scoring.score(benchmark(*choices), bids, seed=seed, root=root)
        assert result.working == BenchmarkWorking(
            average=Decimal("975000.00"),
            excluded_prices=(Decimal("800000.00"), Decimal("1200000.00")),
            coefficient_index=2,
            coefficient=Decimal("0.05"),
            benchmark_price=Decimal("926250.00"),
        )
        assert table(result) == [
            (1, "c", "98.58"),
            (2, "b", "97.44"),
            (3, "f", "93.18"),
            (4, "a", "92.04"),
            (5, "d", "86.64"),
            (6, "e", "70.45"),
        ]

    def test_four_bids_under_the_threshold_are_all_averaged(self) -> None:
        # n = 4 < 5: A = (100 + 110 + 120 + 150) / 4 = 120.00 (trimmed it would be 115.00);
        # K = 0.02: B = 120 * 0.98 = 117.60.
        #   120  above:  2.40 / 117.60 * 100 =  2.0408 -> 97.96
        #   110  below:  7.60 / 117.60 * 50  =  3.2313 -> 96.77
        #   100  below: 17.60 / 117.60 * 50  =  7.4830 -> 92.52
        #   150  above: 32.40 / 117.60 * 100 = 27.5510 -> 72.45
        bids = [bid("p100", "100.00"), bid("p110", "110.00"), bid("p120", "120.00")]
        bids.append(bid("p150", "150.00"))
        result = scoring.score(benchmark("0.02"), bids, seed=SEED, root=ROOT)
        working = benchmark_working(result)
        assert (working.average, working.excluded_prices) == (Decimal("120.00"), ())
        assert working.benchmark_price == Decimal("117.60")
        assert table(result) == [
            (1, "p120", "97.96"),
            (2, "p110", "96.77"),
            (3, "p100", "92.52"),
            (4, "p150", "72.45"),
        ]

    def test_the_trim_threshold_is_the_tenders(self) -> None:
        # Same four bids with trim_threshold 4: A = (110 + 120) / 2 = 115.00, B = 112.70.
        bids = [bid("p100", "100.00"), bid("p110", "110.00"), bid("p120", "120.00")]
        bids.append(bid("p150", "150.00"))
        method = benchmark("0.02", trim_threshold=4)
        working = benchmark_working(scoring.score(method, bids, seed=SEED, root=ROOT))
        assert working.average == Decimal("115.00")
        assert working.excluded_prices == (Decimal("100.00"), Decimal("150.00"))
        assert working.benchmark_price == Decimal("112.70")

    def test_a_bid_exactly_at_the_benchmark_scores_100(self) -> None:
        # A = (90 + 100 + 110) / 3 = 100.00; K = 0.1: B = 90.00.
        #   90   at B                         -> 100.00
        #   100  above: 10 / 90 * 100 = 11.11 ->  88.89
        #   110  above: 20 / 90 * 100 = 22.22 ->  77.78
        bids = [bid("p110", "110.00"), bid("p100", "100.00"), bid("p90", "90.00")]
        result = scoring.score(benchmark("0.1"), bids, seed=SEED, root=ROOT)
        assert benchmark_working(result).benchmark_price == Decimal("90.00")
        assert table(result) == [(1, "p90", "100.00"), (2, "p100", "88.89"), (3, "p110", "77.78")]

    def test_a_bid_far_above_the_benchmark_scores_0_not_less(self) -> None:
        # A = (100 + 100 + 1000) / 3 = 400.00; K = 0: B = 400.00.
        #   1000  above: 600 / 400 * 100 = 150 -> 100 - 150 = -50 -> 0.00
        #   100   below: 300 / 400 * 50 = 37.5 -> 62.50, twice: the earlier bid ranks first
        bids = [
            bid("bid-0 far above", "1000.00", minutes_before_deadline=90),
            bid("bid-1 later", "100.00", minutes_before_deadline=10),
            bid("bid-2 earlier", "100.00", minutes_before_deadline=20),
        ]
        result = scoring.score(benchmark("0"), bids, seed=SEED, root=ROOT)
        assert table(result) == [
            (1, "bid-2 earlier", "62.50"),
            (2, "bid-1 later", "62.50"),
            (3, "bid-0 far above", "0.00"),
        ]

    def test_deductions_per_percent_are_the_tenders(self) -> None:
        # B = 100.00; 2 points per percent above, 1 below: 105 -> 90.00, 95 -> 95.00.
        bids = [bid("p95", "95.00"), bid("p100", "100.00"), bid("p105", "105.00")]
        method = benchmark("0", deduct_above="2", deduct_below="1")
        result = scoring.score(method, bids, seed=SEED, root=ROOT)
        assert table(result) == [(1, "p100", "100.00"), (2, "p95", "95.00"), (3, "p105", "90.00")]

    def test_equal_scores_go_to_the_lower_price(self) -> None:
        # B = 100.00 with E = 1 on both sides: 98 and 102 both score 98.00; 98 is cheaper,
        # so it ranks first even though 102 was received earlier.
        bids = [bid("p102", "102.00", 300), bid("p98", "98.00", 1), bid("p100", "100.00")]
        method = benchmark("0", deduct_below="1")
        result = scoring.score(method, bids, seed=SEED, root=ROOT)
        assert table(result) == [(1, "p100", "100.00"), (2, "p98", "98.00"), (3, "p102", "98.00")]

    def test_a_half_cent_score_rounds_up(self) -> None:
        # A = 100.00, K = 0: B = 100.00. 99.97 below: 0.03 / 100 * 100 * 0.5 = 0.015
        # -> 99.985 -> 99.99 (ROUND_HALF_EVEN or truncation would give 99.98).
        bids = [bid("low", "99.97"), bid("at", "100.00"), bid("high", "100.03")]
        result = scoring.score(benchmark("0"), bids, seed=SEED, root=ROOT)
        assert table(result) == [(1, "at", "100.00"), (2, "low", "99.99"), (3, "high", "99.97")]

    def test_a_half_cent_average_and_benchmark_round_up(self) -> None:
        # A = (100.00 + 100.01) / 2 = 100.005 -> 100.01; K = 0.5: B = 50.005 -> 50.01.
        #   100.00  above: 49.99 / 50.01 * 100 = 99.9600 -> 0.04
        #   100.01  above: 50.00 / 50.01 * 100 = 99.9800 -> 0.02
        bids = [bid("a", "100.00"), bid("b", "100.01")]
        result = scoring.score(benchmark("0.5"), bids, seed=SEED, root=ROOT)
        working = benchmark_working(result)
        assert (working.average, working.benchmark_price) == (Decimal("100.01"), Decimal("50.01"))
        assert table(result) == [(1, "a", "0.04"), (2, "b", "0.02")]

    def test_a_benchmark_that_rounds_to_zero_scores_by_the_formulas_limit(self) -> None:
        # A = 0.01, K = 0.6: B = 0.004 -> 0.00. Every price is infinitely far above B.
        bids = [bid("a", "0.01"), bid("b", "0.01", 1)]
        result = scoring.score(benchmark("0.6"), bids, seed=SEED, root=ROOT)
        assert benchmark_working(result).benchmark_price == Decimal("0.00")
        assert table(result) == [(1, "a", "0.00"), (2, "b", "0.00")]


class TestScore:
    @pytest.mark.parametrize(
        "method",
        [LowestPrice(), Comprehensive(price_weight=Decimal("30")), benchmark("0.01")],
    )
    def test_no_valid_bids_is_an_empty_ranking(self, method: scoring.Method) -> None:
        assert scoring.score(method, [], seed=SEED, root=ROOT) == Result(ranking=(), working=None)

    @pytest.mark.parametrize("missing", ["seed", "root"])
    def test_benchmark_needs_the_seed_and_the_root(self, missing: str) -> None:
        keys = {"seed": SEED, "root": ROOT, missing: None}
        with pytest.raises(ValueError, match="seed"):
            scoring.score(benchmark("0.01"), [bid("a", "1.00")], **keys)
        with pytest.raises(ValueError, match="seed"):
            scoring.score(benchmark("0.01"), [], **keys)

    def test_a_bid_counted_twice_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            scoring.score(LowestPrice(), [bid("a", "1.00"), bid("a", "2.00")])

    @pytest.mark.parametrize("price", ["0", "-1.00", "NaN", "Infinity"])
    def test_a_candidate_needs_a_positive_price(self, price: str) -> None:
        with pytest.raises(ValueError):
            bid("a", price)

    def test_a_candidate_needs_an_aware_time(self) -> None:
        with pytest.raises(ValueError):
            Candidate(bid_id="a", price=Decimal("1.00"), received_at=datetime(2026, 1, 1))

    def test_the_callers_decimal_context_changes_nothing(self) -> None:
        bids = [bid("p110", "110.00"), bid("p100", "100.00"), bid("p90", "90.00")]
        expected = scoring.score(benchmark("0.1"), bids, seed=SEED, root=ROOT)
        with decimal.localcontext() as context:
            context.prec = 3
            context.rounding = decimal.ROUND_DOWN
            assert scoring.score(benchmark("0.1"), bids, seed=SEED, root=ROOT) == expected
            assert (context.prec, context.rounding) == (3, decimal.ROUND_DOWN)
        assert table(expected)[-1] == (3, "p110", "77.78")


# --- properties ----------------------------------------------------------------------------

# Prices up to the platform's 15 integer digits; a narrow band as well, so ties are common.
cents = st.one_of(st.integers(1, 10**17 - 1), st.integers(99_990, 100_010))
prices = cents.map(lambda n: Decimal(n).scaleb(-2))
received_times = st.integers(0, 100).map(lambda s: DEADLINE - timedelta(seconds=s))


@st.composite
def candidate_lists(draw: st.DrawFn, min_size: int = 0) -> list[Candidate]:
    rows = draw(st.lists(st.tuples(prices, received_times), min_size=min_size, max_size=25))
    return [Candidate(f"bid-{i:02}", price, at) for i, (price, at) in enumerate(rows)]


comprehensive_methods = st.builds(
    Comprehensive, price_weight=st.integers(1, 10_000).map(lambda n: Decimal(n).scaleb(-2))
)
benchmark_methods = st.builds(
    Benchmark,
    coefficient_choices=st.lists(
        st.integers(0, 999).map(lambda n: Decimal(n).scaleb(-3)),
        min_size=1,
        max_size=10,
        unique=True,
    ).map(tuple),
    trim_threshold=st.integers(3, 10),
    deduct_above=st.integers(0, 500).map(lambda n: Decimal(n).scaleb(-2)),
    deduct_below=st.integers(0, 500).map(lambda n: Decimal(n).scaleb(-2)),
)
methods = st.one_of(st.just(LowestPrice()), comprehensive_methods, benchmark_methods)
hashes = st.binary(min_size=32, max_size=32)


def scores_of(ranking: Sequence[scoring.Score]) -> list[Decimal]:
    return [row.score for row in ranking if row.score is not None]


class TestProperties:
    @given(methods, candidate_lists(), hashes, hashes)
    def test_the_ranking_is_every_bid_once_ranked_1_to_n(
        self, method: scoring.Method, bids: list[Candidate], seed: bytes, root: bytes
    ) -> None:
        result = scoring.score(method, bids, seed=seed, root=root)
        assert sorted((row.bid_id, row.price) for row in result.ranking) == sorted(
            (candidate.bid_id, candidate.price) for candidate in bids
        )
        assert [row.rank for row in result.ranking] == list(range(1, len(bids) + 1))

    @given(methods, candidate_lists(), hashes, hashes, st.data())
    def test_the_order_bids_are_given_in_changes_nothing(
        self,
        method: scoring.Method,
        bids: list[Candidate],
        seed: bytes,
        root: bytes,
        data: st.DataObject,
    ) -> None:
        shuffled = data.draw(st.permutations(bids))
        assert scoring.score(method, shuffled, seed=seed, root=root) == scoring.score(
            method, bids, seed=seed, root=root
        )

    @given(candidate_lists())
    def test_lowest_price_ranks_prices_non_decreasing(self, bids: list[Candidate]) -> None:
        ranked = [row.price for row in scoring.score(LowestPrice(), bids).ranking]
        assert ranked == sorted(ranked)

    @given(benchmark_methods, candidate_lists(min_size=1), hashes, hashes)
    def test_benchmark_scores_are_cents_from_0_to_100_in_rank_order(
        self, method: Benchmark, bids: list[Candidate], seed: bytes, root: bytes
    ) -> None:
        result = scoring.score(method, bids, seed=seed, root=root)
        scores = scores_of(result.ranking)
        assert len(scores) == len(bids)
        assert all(
            0 <= value <= 100 and value == value.quantize(Decimal("0.01")) for value in scores
        )
        assert scores == sorted(scores, reverse=True)
        working = benchmark_working(result)
        assert working.coefficient == method.coefficient_choices[working.coefficient_index]

    @given(comprehensive_methods, candidate_lists(min_size=1))
    def test_comprehensive_gives_the_cheapest_bid_the_full_weight(
        self, method: Comprehensive, bids: list[Candidate]
    ) -> None:
        result = scoring.score(method, bids)
        cheapest = min(candidate.price for candidate in bids)
        assert result.working == ComprehensiveWorking(lowest_price=cheapest)
        by_price = {row.price: row.score for row in result.ranking}
        assert by_price[cheapest] == method.price_weight
        scores = scores_of(result.ranking)
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= value <= method.price_weight for value in scores)
