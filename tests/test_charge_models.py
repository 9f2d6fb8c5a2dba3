"""Generic charge models, metering and rounding, with hand-computed examples."""

from __future__ import annotations

import pytest
from helpers import D, plan_with, usage

from sim.pricing.pricing import price

TIERS = [{"up_to": 100, "unit_price": "1.00"},
         {"up_to": 1000, "unit_price": "0.50", "flat_fee": "10"},
         {"up_to": None, "unit_price": "0.10", "flat_fee": "20"}]


def total(plan, q) -> object:
    return price(usage({"q": q}), plan).total


@pytest.mark.parametrize(("q", "expected"), [
    (0, "0.00"),        # zero usage: no tier reached, no flat fee
    (1, "1.00"),        # 1 x 1.00
    (100, "100.00"),    # boundary is inclusive: all 100 in tier 1
    (101, "110.50"),    # 100 x 1 + (1 x 0.50 + 10 flat)
    (1000, "560.00"),   # 100 + (900 x 0.50 + 10)
    (1500, "630.00"),   # 100 + 460 + (500 x 0.10 + 20)
])
def test_graduated_tiers(q, expected):
    assert total(plan_with({"model": "graduated", "tiers": TIERS}), q) == D(expected)


@pytest.mark.parametrize(("q", "expected"), [
    (0, "0.00"),
    (100, "100.00"),    # all 100 at 1.00
    (101, "60.50"),     # all 101 at 0.50 + 10 flat
    (1000, "510.00"),   # 1000 x 0.50 + 10
    (1001, "120.10"),   # 1001 x 0.10 + 20 -- volume pricing may fall as usage grows
])
def test_volume_tiers(q, expected):
    assert total(plan_with({"model": "volume", "tiers": TIERS}), q) == D(expected)


@pytest.mark.parametrize(("q", "expected"), [(0, "0.00"), (1, "5.00"), (100, "5.00"), (101, "10.00"), (250, "15.00")])
def test_package_partial_blocks_round_up(q, expected):
    assert total(plan_with({"model": "package", "package_size": 100, "package_price": "5"}), q) == D(expected)


def test_included_is_deducted_before_the_model():
    # 1,150 units, 1,000 included -> 150 billable -> graduated: 100 x 1 + 50 x 0.5 + 10 = 135.
    plan = plan_with({"model": "graduated", "tiers": TIERS, "included": 1000})
    b = price(usage({"q": 1150}), plan)
    assert b.lines[0].billable == 150 and b.total == D("135.00")


def test_each_line_rounded_half_up_to_cents_and_total_is_their_sum():
    # 247 x 0.005 = 1.235 -> 1.24 (half-up; banker's rounding would give 1.24 too, so also 1.225 -> 1.23).
    plan = plan_with({"model": "per_unit", "unit_price": "0.005"}, base_fee="0.004")
    b = price(usage({"q": 247}), plan)
    assert b.line("q").amount == D("1.24") and b.line("q").amount_unrounded == D("1.235")
    assert b.line("base").amount == D("0.00")
    assert b.total == D("1.24")
    assert price(usage({"q": 245}), plan).line("q").amount == D("1.23")    # 1.225 -> 1.23


def test_base_fee_minimum_and_addon_order():
    # base 10 + 3 units x 2 = 16; add-on 5 -> 21; minimum 30 -> true-up 9 -> 30.
    plan = plan_with({"model": "per_unit", "unit_price": "2"}, base_fee="10", minimum_commitment="30",
                     addons={"support": {"fee": "5"}})
    b = price(usage({"q": 3}), plan, addons=["support"])
    assert [(line.item, line.amount) for line in b.lines] == [
        ("base", D("10.00")), ("q", D("6.00")), ("support", D("5.00")), ("minimum_commitment", D("9.00"))]
    assert b.total == D("30.00")


@pytest.mark.parametrize(("aggregation", "expected"), [
    ("sum", 10), ("max", 4), ("latest", 1), ("avg", 2.5), ("daily_avg", 2.5), ("unique", 10)])
def test_aggregations_on_a_series(aggregation, expected):
    # Four 6-hour snapshots over one day: 1, 4, 4, 1 -> wait: values 1, 4, 4, 1 give sum 10, max 4, latest 1,
    # mean 2.5 (one day, so daily_avg is the same), unique (first-seen counts) 10.
    plan = plan_with({"model": "per_unit", "unit_price": "1"}, {"meter": "q", "aggregation": aggregation})
    u = usage({"q": {"interval": "6h", "values": [1, 4, 4, 1]}}, {"start": "2026-11-01", "end": "2026-11-02"})
    assert price(u, plan).lines[0].quantity == D(str(expected))


def test_unique_over_id_lists():
    # ids per day: {a, b}, {b, c}, {a} -> 3 distinct; the 3rd distinct id first appears on day 2.
    plan = plan_with({"model": "per_unit", "unit_price": "1"}, {"meter": "q", "aggregation": "unique"},
                     notifications={"thresholds": [1.0], "of": "included"})
    plan = plan.model_copy(update={"charges": [plan.charges[0].model_copy(update={"included": D(3)})]})
    u = usage({"q": {"interval": "1d", "ids": [["a", "b"], ["b", "c"], ["a"]]}},
              {"start": "2026-11-01", "end": "2026-11-04"})
    b = price(u, plan)
    assert b.lines[0].quantity == 3
    assert b.notifications[0].at.isoformat() == "2026-11-03T00:00:00+00:00"   # end of day 2 (Nov 2)


@pytest.mark.parametrize(("mode", "precision", "expected"), [
    ("ceil", 0, "3"), ("floor", 0, "2"), ("half_up", 0, "3"), ("ceil", 1, "2.6"), ("half_up", 2, "2.55")])
def test_quantity_rounding(mode, precision, expected):
    plan = plan_with({"model": "per_unit", "unit_price": "1"},
                     {"meter": "q", "aggregation": "sum", "round": {"mode": mode, "precision": precision}})
    assert price(usage({"q": 2.55}), plan).lines[0].quantity == D(expected)


def test_float_noise_does_not_tip_a_ceiling():
    # 0.1 + 0.2 = 0.30000000000000004 in binary floats; summed in GB units it must still round up to 1, not 2
    # when the true total is exactly 1 (ten 0.1 GB intervals).
    plan = plan_with({"model": "per_unit", "unit_price": "1"},
                     {"meter": "q", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB", "round": {"mode": "ceil"}})
    u = usage({"q": {"interval": "1d", "values": [0.1e9] * 10}}, {"start": "2026-11-01", "end": "2026-11-11"})
    assert price(u, plan).lines[0].quantity == 1
    noisy = usage({"q": {"interval": "1d", "values": [0.1] * 10}}, {"start": "2026-11-01", "end": "2026-11-11"})
    plan2 = plan_with({"model": "per_unit", "unit_price": "1"},
                      {"meter": "q", "aggregation": "sum", "round": {"mode": "ceil"}})
    assert sum([0.1] * 10) != 1.0 and price(noisy, plan2).lines[0].quantity == 1


def test_unit_conversion_decimal_and_binary():
    plan = plan_with({"model": "per_unit", "unit_price": "1"},
                     {"meter": "q", "aggregation": "sum", "meter_unit": "bytes", "unit": "GiB"})
    assert price(usage({"q": 2**31}), plan).lines[0].quantity == 2


def test_missing_meter_counts_as_zero_and_is_reported():
    plan = plan_with({"model": "per_unit", "unit_price": "1"})
    b = price(usage({"other": 5}), plan)
    assert b.total == 0 and b.missing_meters == ("q",) and b.unknown_meters == ("other",)


def test_bill_to_dataframe_and_dict():
    plan = plan_with({"model": "per_unit", "unit_price": "0.5"}, base_fee="1")
    b = price(usage({"q": 3}), plan)
    df = b.to_dataframe()
    assert list(df.index) == ["base", "q"] and df.loc["q", "amount"] == D("1.50")
    d = b.to_dict()
    assert d["total"] == "2.50" and [x["amount"] for x in d["lines"]] == ["1.00", "1.50"]
