"""Creating drafts: what is stored, and every bad input refused by name with nothing written."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import utcnow
from tests.tenders.conftest import TENDERS, Cast, count_tenders, create_via_api, tender_body


class TestCreate:
    async def test_an_officer_creates_a_draft_of_their_organization(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        body = tender_body()
        response = await client.post(TENDERS, json=body, headers=cast["author"].headers)
        assert response.status_code == 201
        tender = response.json()
        assert tender["status"] == "draft"
        assert tender["reference"] == body["reference"]
        assert tender["organization"] == {
            "id": str(cast.organization.id),
            "name": cast.organization.name,
        }
        assert tender["opening_recipient"] is None and tender["coefficient_commitment"] is None
        assert tender["published_at"] is None and tender["amendments"] == []
        assert response.headers["Location"].endswith(f"{TENDERS}/{tender['id']}")
        read = await client.get(response.headers["Location"], headers=cast["author"].headers)
        assert read.json()["reference"] == body["reference"]

    async def test_defaults_fill_what_is_left_out(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        body = tender_body()
        for optional in ("description", "floor_price", "opening_mode", "bid_fields"):
            del body[optional]
        tender = (await client.post(TENDERS, json=body, headers=cast["author"].headers)).json()
        assert tender["currency"] == "CNY"
        assert tender["min_bids"] == 3
        assert tender["opening_mode"] == "platform"
        assert tender["floor_price"] is None
        assert tender["public_opening"] is False
        assert [field["name"] for field in tender["bid_fields"]] == ["price"]

    async def test_money_is_kept_exact_with_two_decimal_places(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        tender = await create_via_api(
            client,
            cast["author"].headers,
            ceiling_price="99999999999999.99",
            floor_price="0.5",
        )
        assert tender["ceiling_price"] == "99999999999999.99"
        assert tender["floor_price"] == "0.50"

    async def test_the_deadline_is_kept_in_utc_whatever_offset_it_was_given_in(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        # A month ahead: within the horizon of BIDDING_MAX_DEADLINE_DAYS.
        utc = (utcnow() + timedelta(days=30)).replace(hour=9, minute=30, second=0, microsecond=0)
        beijing = utc + timedelta(hours=8)
        local = beijing.replace(tzinfo=None).isoformat() + "+08:00"
        tender = await create_via_api(client, cast["author"].headers, bid_deadline=local)
        assert tender["bid_deadline"] == utc.strftime("%Y-%m-%dT09:30:00Z")

    async def test_price_is_always_a_required_decimal_field_of_the_bid_form(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        tender = await create_via_api(
            client,
            cast["author"].headers,
            bid_fields=[
                {"name": "duration_days", "label": "Duration", "type": "integer", "min": "1"},
                {"name": "warranty", "label": "Warranty", "type": "text", "required": False},
            ],
        )
        fields = {field["name"]: field for field in tender["bid_fields"]}
        assert list(fields) == ["price", "duration_days", "warranty"]
        assert fields["price"]["type"] == "decimal" and fields["price"]["required"] is True
        assert fields["duration_days"]["min"] == "1"
        assert fields["warranty"]["required"] is False

    async def test_a_price_field_may_be_declared_with_bounds(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        price = {"name": "price", "label": "Total", "type": "decimal", "min": "1", "max": "2e3"}
        response = await client.post(
            TENDERS, json=tender_body(bid_fields=[price]), headers=cast["author"].headers
        )
        assert response.status_code == 422  # "2e3" is not how a decimal is written here
        price["max"] = "2000"
        tender = await create_via_api(client, cast["author"].headers, bid_fields=[price])
        assert tender["bid_fields"] == [{**price, "required": True}]

    @pytest.mark.parametrize(
        "scoring",
        [
            {"method": "lowest_price"},
            {"method": "comprehensive", "price_weight": "30"},
            {"method": "comprehensive", "price_weight": "100"},
            {
                "method": "benchmark",
                "coefficient_choices": ["0.005", "0.01"],
                "trim_threshold": 5,
                "deduct_above": "1",
                "deduct_below": "0.5",
            },
        ],
    )
    async def test_each_scoring_method_is_kept_as_given(
        self, client: httpx.AsyncClient, cast: Cast, scoring: dict[str, Any]
    ) -> None:
        tender = await create_via_api(client, cast["author"].headers, scoring=scoring)
        assert tender["scoring"] == scoring

    async def test_benchmark_defaults(self, client: httpx.AsyncClient, cast: Cast) -> None:
        scoring = {"method": "benchmark", "coefficient_choices": ["0.010", "0"]}
        tender = await create_via_api(client, cast["author"].headers, scoring=scoring)
        assert tender["scoring"] == {
            "method": "benchmark",
            "coefficient_choices": ["0.01", "0"],
            "trim_threshold": 5,
            "deduct_above": "1",
            "deduct_below": "0.5",
        }

    async def test_a_taken_reference_is_a_conflict(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        first = await create_via_api(client, cast["author"].headers)
        again = tender_body(reference=first["reference"])
        response = await client.post(TENDERS, json=again, headers=cast["colleague"].headers)
        assert response.status_code == 409
        assert response.json()["type"] == "reference_taken"
        assert "reference" in response.json()["detail"]
        assert await count_tenders(session) == 1


def _benchmark(**changes: Any) -> dict[str, Any]:
    return {"method": "benchmark", "coefficient_choices": ["0.01"], **changes}


def _past() -> str:
    return (utcnow() - timedelta(minutes=1)).isoformat()


def _naive() -> str:
    return (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat()


# (what the body gets, the field the error must name)
BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "naive deadline": ({"bid_deadline": _naive()}, "bid_deadline"),
    "past deadline": ({"bid_deadline": _past()}, "bid_deadline"),
    "deadline not a time": ({"bid_deadline": "next friday"}, "bid_deadline"),
    "negative ceiling": ({"ceiling_price": "-1.00"}, "ceiling_price"),
    "zero ceiling": ({"ceiling_price": "0"}, "ceiling_price"),
    "negative floor": ({"floor_price": "-0.01"}, "floor_price"),
    "price as a JSON number": ({"ceiling_price": 1250000}, "ceiling_price"),
    "price with a comma": ({"ceiling_price": "1,250,000"}, "ceiling_price"),
    "price in exponent form": ({"ceiling_price": "1.25E6"}, "ceiling_price"),
    "price that is not a number": ({"ceiling_price": "NaN"}, "ceiling_price"),
    "price with three decimals": ({"ceiling_price": "10.005"}, "ceiling_price"),
    "price too large": ({"ceiling_price": "1" + "0" * 15}, "ceiling_price"),
    "price far too large": ({"ceiling_price": "9" * 39}, "ceiling_price"),
    "price with many decimals": ({"ceiling_price": "1." + "0" * 37 + "1"}, "ceiling_price"),
    "price as a list": ({"ceiling_price": ["100"]}, "ceiling_price"),
    "ceiling below the floor": (
        {"ceiling_price": "100.00", "floor_price": "100.01"},
        "floor_price",
    ),
    "unknown scoring method": ({"scoring": {"method": "lottery"}}, "scoring"),
    "scoring without method": ({"scoring": {"price_weight": "30"}}, "scoring"),
    "price weight zero": (
        {"scoring": {"method": "comprehensive", "price_weight": "0"}},
        "price_weight",
    ),
    "price weight above 100": (
        {"scoring": {"method": "comprehensive", "price_weight": "100.5"}},
        "price_weight",
    ),
    "no coefficient choices": (
        {"scoring": _benchmark(coefficient_choices=[])},
        "coefficient_choices",
    ),
    "coefficient of 1": (
        {"scoring": _benchmark(coefficient_choices=["0.01", "1"])},
        "coefficient_choices",
    ),
    "negative coefficient": (
        {"scoring": _benchmark(coefficient_choices=["-0.01"])},
        "coefficient_choices",
    ),
    "repeated coefficient": (
        {"scoring": _benchmark(coefficient_choices=["0.01", "0.010"])},
        "coefficient_choices",
    ),
    "trim threshold below 3": ({"scoring": _benchmark(trim_threshold=2)}, "trim_threshold"),
    "negative deduction": ({"scoring": _benchmark(deduct_below="-1")}, "deduct_below"),
    "unknown scoring option": ({"scoring": _benchmark(bonus="5")}, "bonus"),
    "unknown field type": (
        {"bid_fields": [{"name": "start", "type": "date"}]},
        "bid_fields.0.type",
    ),
    "field name with capitals": (
        {"bid_fields": [{"name": "Duration", "type": "integer"}]},
        "bid_fields.0.name",
    ),
    "field name too long": (
        {"bid_fields": [{"name": "d" * 41, "type": "integer"}]},
        "bid_fields.0.name",
    ),
    "repeated field name": (
        {"bid_fields": [{"name": "days", "type": "integer"}, {"name": "days", "type": "text"}]},
        "bid_fields",
    ),
    "too many fields": (
        {"bid_fields": [{"name": f"f{i}", "type": "text"} for i in range(50)]},
        "bid_fields",
    ),
    "price redefined as text": (
        {"bid_fields": [{"name": "price", "type": "text"}]},
        "bid_fields.0.type",
    ),
    "price made optional": (
        {"bid_fields": [{"name": "price", "type": "decimal", "required": False}]},
        "bid_fields.0.required",
    ),
    "min above max": (
        {"bid_fields": [{"name": "days", "type": "integer", "min": "10", "max": "9"}]},
        "bid_fields.0.max",
    ),
    "fractional bound of an integer field": (
        {"bid_fields": [{"name": "days", "type": "integer", "min": "0.5"}]},
        "bid_fields.0.min",
    ),
    "bounds on a text field": (
        {"bid_fields": [{"name": "note", "type": "text", "max": "10"}]},
        "bid_fields.0.max",
    ),
    "title too long": ({"title": "t" * 201}, "title"),
    "reference too long": ({"reference": "r" * 65}, "reference"),
    "empty reference": ({"reference": "   "}, "reference"),
    "reference with a newline": ({"reference": "ZB-1\nZB-2"}, "reference"),
    "description too long": ({"description": "d" * 20_001}, "description"),
    "buyer name too long": ({"buyer_name": "b" * 201}, "buyer_name"),
    "currency not ISO 4217": ({"currency": "yuan"}, "currency"),
    "unknown opening mode": ({"opening_mode": "officer"}, "opening_mode"),
    "min bids zero": ({"min_bids": 0}, "min_bids"),
    "min bids as text": ({"min_bids": "3"}, "min_bids"),
    "decryption window zero": ({"decryption_window_minutes": 0}, "decryption_window_minutes"),
    "public opening as text": ({"public_opening": "yes"}, "public_opening"),
    "unknown field": ({"budget_code": "X1"}, "budget_code"),
}


class TestCreateRefusals:
    @pytest.mark.parametrize(("changes", "field"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
    async def test_bad_input_is_refused_by_name_and_nothing_is_written(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        changes: dict[str, Any],
        field: str,
    ) -> None:
        response = await client.post(
            TENDERS, json=tender_body(**changes), headers=cast["author"].headers
        )
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["type"] == "validation_error"
        assert any(field in item["field"] for item in error["errors"]), error
        assert field in error["detail"]
        assert await count_tenders(session) == 0

    @pytest.mark.parametrize("missing", ["reference", "title", "ceiling_price", "bid_deadline"])
    async def test_a_missing_required_field_is_named(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, missing: str
    ) -> None:
        body = tender_body()
        del body[missing]
        response = await client.post(TENDERS, json=body, headers=cast["author"].headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == f"body.{missing}"
        assert await count_tenders(session) == 0

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b"reference=ZB-1&title=Road", "application/x-www-form-urlencoded"),
            (b'{"reference": "ZB-1", ', "application/json"),
            (b'["reference", "ZB-1"]', "application/json"),
            (b"\xff\xfe not even text", "application/json"),
        ],
        ids=["form", "truncated JSON", "JSON array", "binary"],
    )
    async def test_a_body_that_is_not_a_json_object_is_refused(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        content: bytes,
        content_type: str,
    ) -> None:
        headers = cast["author"].headers | {"Content-Type": content_type}
        response = await client.post(TENDERS, content=content, headers=headers)
        assert response.status_code == 422
        assert response.json()["type"] == "validation_error"
        assert response.json()["errors"][0]["field"].startswith("body")
        assert await count_tenders(session) == 0
