"""Pricing primitives other platforms need (issue 12), each against numbers computed by hand.

Per-item rounding of distribution meters, composite metrics sharing one allowance, allowances proportional to
another metric, daily cadence, fees per month/day/hour with daily proration, discounts, and one bill over several
entities.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from sim.errors import InputError
from sim.pricing.metering import measure
from sim.pricing.plan import plan_from_dict
from sim.pricing.pricing import price, price_entities
from sim.pricing.usage import usage_from_dict

NOV = {"start": "2026-11-01", "end": "2026-12-01"}


def usage(meters: dict, period: dict = NOV):
    return usage_from_dict({"period": period, "meters": meters})


def plan(metrics: dict, charges: list, **kw):
    return plan_from_dict({"name": "p", "description": "test", "metrics": metrics, "charges": charges, **kw})


def line(bill, item):
    return next(ln for ln in bill.lines if ln.item == item)


SIZES = {"items": {"value": [0, 100, 5000, 5001, 8000, 12000], "count": [1, 10, 2, 3, 4, 1]}}


# -- per-item rounding ---------------------------------------------------------------------------------------------
def test_each_message_rounded_up_to_5kb_steps_with_a_minimum_of_one():
    # 0 B -> 1 (minimum), 100 -> 1, 5000 -> 1, 5001 -> 2, 8000 -> 2, 12000 -> 3 (steps of 5 KB = 5000 B)
    # 1*1 + 10*1 + 2*1 + 3*2 + 4*2 + 1*3 = 30 messages
    p = plan({"msgs": {"meter": "message_sizes_in", "aggregation": "sum", "meter_unit": "bytes", "unit": "messages",
                       "each": {"step": 5, "step_unit": "KB", "minimum": 1}}},
             [{"metric": "msgs", "model": "per_unit", "unit_price": "0.000001"}])
    ln = line(price(usage({"message_sizes_in": SIZES}), p), "message_sizes_in")
    assert ln.quantity == 30
    assert ln.amount_unrounded == Decimal("0.000030")
    assert "rounded up to whole 5 KB, at least 1" in ln.explanation


def test_each_without_minimum_and_in_binary_units():
    # steps of 4 KiB = 4096 B: 0 -> 0, 100 -> 1, 5000 -> 2, 5001 -> 2, 8000 -> 2, 12000 -> 3
    # 0 + 10 + 4 + 6 + 8 + 3 = 31
    p = plan({"chunks": {"meter": "message_sizes_in", "aggregation": "sum", "meter_unit": "bytes", "unit": "chunks",
                         "each": {"step": 4, "step_unit": "KiB"}}},
             [{"metric": "chunks", "model": "per_unit", "unit_price": "1"}])
    assert line(price(usage({"message_sizes_in": SIZES}), p), "message_sizes_in").quantity == 31


def test_count_sum_and_max_of_a_distribution():
    u = usage({"message_sizes_in": SIZES})
    p = plan({"n": {"meter": "message_sizes_in", "aggregation": "count", "unit": "messages"},
              "bytes": {"meter": "message_sizes_in", "aggregation": "sum", "unit": "bytes"},
              "largest": {"meter": "message_sizes_in", "aggregation": "max", "unit": "bytes"}},
             [{"metric": "n", "item": "n", "model": "per_unit", "unit_price": "1"},
              {"metric": "bytes", "item": "bytes", "model": "per_unit", "unit_price": "0"},
              {"metric": "largest", "item": "largest", "model": "per_unit", "unit_price": "0"}])
    b = price(u, p)
    assert line(b, "n").quantity == 21
    assert line(b, "bytes").quantity == 1000 + 10000 + 15003 + 32000 + 12000
    assert line(b, "largest").quantity == 12000


def test_connection_minutes_rounded_per_connection():
    # connections of 1 s, 60 s, 61 s, 3600 s and 3601 s: 1 + 1 + 2 + 60 + 61 = 125 started minutes (7,323 s = 122.05 min
    # unrounded); AWS IoT Core charges per million minutes
    conns = {"interval": "1d", "items": {"at": [0, 0, 1, 5, 29], "value": [1, 60, 61, 3600, 3601], "count": [1, 1, 1, 1, 1]}}
    p = plan({"minutes": {"meter": "connection_seconds", "aggregation": "sum", "meter_unit": "seconds",
                          "unit": "minutes", "each": {"step": 1, "step_unit": "minutes"}},
              "raw": {"meter": "connection_seconds", "aggregation": "sum", "meter_unit": "seconds", "unit": "minutes"}},
             [{"metric": "minutes", "item": "rounded", "model": "per_unit", "unit_price": "0.08"},
              {"metric": "raw", "item": "raw", "model": "per_unit", "unit_price": "0.08"}])
    b = price(usage({"connection_seconds": conns}), p)
    assert line(b, "rounded").quantity == 125 and line(b, "rounded").amount == Decimal("10.00")
    assert line(b, "raw").quantity == Decimal("122.05") and line(b, "raw").amount == Decimal("9.76")


def test_each_on_a_total_is_bad_input():
    p = plan({"m": {"meter": "msgs", "aggregation": "sum", "meter_unit": "bytes", "unit": "messages",
                    "each": {"step": 5000}}}, [{"metric": "m", "model": "per_unit", "unit_price": "1"}])
    with pytest.raises(InputError, match="meters.msgs: each .* needs a distribution meter"):
        price(usage({"msgs": 5}), p)


# -- composite metrics and dependent allowances --------------------------------------------------------------------
def test_one_allowance_shared_by_two_meters():
    # 3,000,000 in + 5,000,000 out = 8,000,000 messages; 6,000,000 included; 2,000,000 x $2.50 per million = $5.00
    p = plan({"in": {"meter": "messages_in", "aggregation": "sum", "unit": "messages"},
              "out": {"meter": "messages_out", "aggregation": "sum", "unit": "messages"},
              "messages": {"sum_of": ["in", "out"], "unit": "messages"}},
             [{"metric": "messages", "included": 6_000_000, "model": "package", "package_size": 1_000_000,
               "package_price": "2.50"}])
    ln = line(price(usage({"messages_in": 3_000_000, "messages_out": 5_000_000}), p), "messages")
    assert (ln.quantity, ln.billable, ln.amount) == (8_000_000, 2_000_000, Decimal("5.00"))
    assert "in 3,000,000 + out 5,000,000" in ln.explanation


def test_composite_adds_parts_after_their_own_rounding():
    # each part ceil'd to whole GB first: 1.2 -> 2 and 0.1 -> 1, so 3 GB (not ceil(1.3) = 2)
    p = plan({"a": {"meter": "a", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB", "round": {"mode": "ceil"}},
              "b": {"meter": "b", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB", "round": {"mode": "ceil"}},
              "ab": {"sum_of": ["a", "b"], "unit": "GB"}},
             [{"metric": "ab", "model": "per_unit", "unit_price": "1"}])
    assert line(price(usage({"a": 1.2e9, "b": 1e8}), p), "ab").quantity == 3


def test_allowance_proportional_to_mau():
    # 1,500 MAU x 1,000 messages each + 100,000 = 1,600,000 included; 2,100,000 sent -> 500,000 x $0.000001 = $0.50
    p = plan({"mau": {"meter": "mau", "aggregation": "unique", "unit": "MAU"},
              "msgs": {"meter": "messages_in", "aggregation": "sum", "unit": "messages"}},
             [{"metric": "msgs", "included": 100_000, "included_per": {"metric": "mau", "multiplier": 1000},
               "model": "per_unit", "unit_price": "0.000001"}])
    ln = line(price(usage({"mau": 1500, "messages_in": 2_100_000}), p), "messages_in")
    assert (ln.included, ln.billable, ln.amount) == (1_600_000, 500_000, Decimal("0.50"))
    assert "1,000 per mau x 1,500" in ln.explanation


# -- daily cadence ----------------------------------------------------------------------------------------------------
def test_daily_charge_rounds_each_day_and_uses_a_monthly_allowance_day_by_day():
    # 30 days of 0.4 GB: per-day ceil -> 1 GB a day = 30 GB (a monthly ceil would give 12 GB).
    # 10 GB monthly allowance used up on day 10 (Nov 10); 20 GB x $0.10 = $2.00
    p = plan({"gb": {"meter": "outbound_bytes", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB",
                     "round": {"mode": "ceil"}}},
             [{"metric": "gb", "cadence": "daily", "included": 10, "model": "per_unit", "unit_price": "0.10"}])
    b = price(usage({"outbound_bytes": {"interval": "1d", "values": [0.4e9] * 30}}), p)
    ln = line(b, "outbound_bytes")
    assert (ln.quantity, ln.billable, ln.amount) == (30, 20, Decimal("2.00"))
    assert "used up on 2026-11-10" in ln.explanation
    assert len(ln.detail) == 20 and ln.detail[0].startswith("2026-11-11: 1 GB")


def test_daily_free_quantity_and_package_per_day_from_a_minute_series():
    # 1,440 minutes a day; the first 10 days 10 messages a minute (14,400 a day), then 1 a minute (1,440 a day).
    # 5,000 free a day; packages of 10,000 at $1 a day: 14,400 - 5,000 = 9,400 -> one package -> $1 x 10 days;
    # 1,440 a day is under the free 5,000. Total $10.00
    values = [10] * (1440 * 10) + [1] * (1440 * 20)
    p = plan({"m": {"meter": "messages_in", "aggregation": "sum", "unit": "messages"}},
             [{"metric": "m", "cadence": "daily", "included_per_day": 5000, "model": "package",
               "package_size": 10_000, "package_price": "1"}])
    ln = line(price(usage({"messages_in": {"interval": "1min", "values": values}}), p), "messages_in")
    assert ln.amount == Decimal("10.00") and ln.billable == 94_000 and ln.quantity == 14400 * 10 + 1440 * 20


def test_daily_charge_on_a_total_is_bad_input():
    p = plan({"m": {"meter": "m", "aggregation": "sum"}},
             [{"metric": "m", "cadence": "daily", "model": "per_unit", "unit_price": "1"}])
    with pytest.raises(InputError, match="meters.m: a daily charge needs a series"):
        price(usage({"m": 5}), p)


# -- commitment terms: fees, proration, discounts ------------------------------------------------------------------------
def test_provisioned_units_billed_by_the_hour():
    # 2 units x $0.25 an hour x 720 hours (November) = $360.00; 10 days -> 240 hours -> $120.00
    p = plan({}, [], fees=[{"item": "nodes", "quantity": 2, "unit_price": "0.25", "per": "hour"}])
    assert line(price(usage({}), p), "nodes").amount == Decimal("360.00")
    ten = price(usage({}, {"start": "2026-11-01", "end": "2026-11-11"}), p)
    assert line(ten, "nodes").amount == Decimal("120.00")


def test_units_sized_by_a_metric():
    # hub units: ceil(peak daily messages / 400,000) with at least 1 unit, $25 a month each: 1,000,001 -> 3 units -> $75
    p = plan_from_dict({"name": "p", "description": "t", "metrics": {
        "units": {"meter": "daily_peak", "aggregation": "max", "unit": "units", "round": {"mode": "ceil"}}},
        "fees": [{"item": "hub_units", "metric": "units", "minimum_quantity": 1, "unit_price": "25"}]})
    b = price(usage({"daily_peak": 1_000_001 / 400_000}), p)
    assert line(b, "hub_units").amount == Decimal("75.00")
    assert line(price(usage({"daily_peak": 0}), p), "hub_units").amount == Decimal("25.00")


def test_base_fee_prorated_daily_for_part_of_a_month():
    # $29 a month from Nov 10 to Dec 1: 21 of November's 30 days -> 29 x 21/30 = $20.30
    p = plan({}, [], base_fee="29", prorate="daily")
    b = price(usage({}, {"start": "2026-11-10", "end": "2026-12-01"}), p)
    assert line(b, "base").amount == Decimal("20.30")
    assert any("prorated daily" in n for n in b.notes)
    assert line(price(usage({}), p), "base").amount == Decimal("29.00")  # a whole month in full
    full = plan({}, [], base_fee="29")  # without prorate: any period pays the whole fee
    assert line(price(usage({}, {"start": "2026-11-10", "end": "2026-12-01"}), full), "base").amount == Decimal("29.00")


def test_annual_prepaid_discount_on_the_base_fee():
    # $399 a month, 20 % off for an annual prepaid commitment: -$79.80; usage lines not discounted
    p = plan({"m": {"meter": "m", "aggregation": "sum"}}, [{"metric": "m", "model": "per_unit", "unit_price": "1"}],
             base_fee="399", discounts=[{"item": "annual_prepay", "fraction": "0.2", "applies_to": ["base"],
                                         "term": "annual, prepaid"}])
    b = price(usage({"m": 10}), p)
    assert line(b, "annual_prepay").amount == Decimal("-79.80")
    assert b.total == Decimal("399") - Decimal("79.80") + 10


def test_discount_counts_before_the_minimum_commitment():
    # $40 of usage, 10 % off = -$4.00 -> $36.00, topped up to the $49 minimum with $13.00
    p = plan({"m": {"meter": "m", "aggregation": "sum"}}, [{"metric": "m", "model": "per_unit", "unit_price": "1"}],
             minimum_commitment="49", discounts=[{"item": "promo", "fraction": "0.1"}])
    b = price(usage({"m": 40}), p)
    assert line(b, "promo").amount == Decimal("-4.00")
    assert line(b, "minimum_commitment").amount == Decimal("13.00") and b.total == Decimal("49.00")


# -- one bill over several entities -------------------------------------------------------------------------------------
def _peaks(a: list[int], b: list[int]):
    return ({"a": usage({"ccu": {"interval": "1h", "values": a + [0] * (720 - len(a))}, "bytes": 3e9}),
             "b": usage({"ccu": {"interval": "1h", "values": b + [0] * (720 - len(b))}, "bytes": 4e9})})


@pytest.mark.parametrize("rule, peak", [("sum", 100 + 80), ("peak_of_sum", 150), ("max", 100)])
def test_organisation_peak_over_apps(rule, peak):
    # app a peaks at 100 in hour 0, app b at 80 in hour 1; together they never exceed 100 + 50 = 150 (hour 1: 70 + 80)
    usages = _peaks([100, 70], [50, 80])
    p = plan({"peak": {"meter": "ccu", "aggregation": "max", "unit": "connections", "across_entities": rule},
              "gb": {"meter": "bytes", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB"}},
             [{"metric": "peak", "item": "peak", "included": 100, "model": "per_unit", "unit_price": "1"},
              {"metric": "gb", "item": "gb", "included": 5, "model": "per_unit", "unit_price": "1"}])
    b = price_entities(usages, p)
    assert line(b, "peak").quantity == peak and line(b, "peak").amount == peak - 100
    assert line(b, "gb").quantity == 7 and line(b, "gb").amount == 2  # one allowance for the account: 3 + 4 - 5
    assert any(n.startswith("gb over 2 entities (summed): a 3 GB, b 4 GB -> 7 GB") for n in b.notes)


def test_entities_need_one_period():
    p = plan({"m": {"meter": "m", "aggregation": "sum"}}, [{"metric": "m", "model": "per_unit", "unit_price": "1"}])
    with pytest.raises(InputError, match="one bill needs one period"):
        price_entities({"a": usage({"m": 1}), "b": usage({"m": 1}, {"start": "2026-10-01", "end": "2026-11-01"})}, p)


# -- validation ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metrics, charges, extra, msg", [
    ({"m": {"meter": "m", "aggregation": "max", "each": {"step": 1}}}, [], {}, "each .* goes with aggregation: sum"),
    ({"m": {"meter": "m", "aggregation": "sum", "each": {"step": 0}}}, [], {}, "step must be positive"),
    ({"m": {"sum_of": ["x"]}}, [], {}, "unknown metric 'x'"),
    ({"m": {"sum_of": ["n"], "meter": "q"}, "n": {"meter": "n", "aggregation": "sum"}}, [], {}, "takes no meter"),
    ({"m": {"unit": "x"}}, [], {}, "a metric needs meter"),
    ({"m": {"meter": "m", "aggregation": "sum"}}, [{"metric": "m", "included_per_day": 5, "model": "per_unit",
                                                     "unit_price": "1"}], {}, "included_per_day needs cadence: daily"),
    ({}, [], {"fees": [{"item": "base", "unit_price": "1"}]}, "two bill lines would be named 'base'"),
    ({}, [], {"discounts": [{"item": "d", "fraction": "0.1", "applies_to": ["nope"]}]}, "unknown bill line 'nope'"),
    ({}, [], {"discounts": [{"item": "d", "fraction": "1.5"}]}, "less than or equal to 1"),
])
def test_bad_plans_say_which_field(metrics, charges, extra, msg):
    with pytest.raises(InputError, match=msg):
        plan(metrics, charges, **extra)


# -- sim plans ---------------------------------------------------------------------------------------------------------
def test_sim_plans_groups_shipped_plans_by_platform(capsys):
    from sim.cli import main
    from sim.pricing.plan import shipped_plan_objects

    assert main(["plans"]) == 0
    out = capsys.readouterr().out
    plans = shipped_plan_objects()
    assert all(p.platform for p in plans.values()), "every shipped plan names its platform"
    for platform in {p.platform for p in plans.values()}:
        block = out.split(f"{platform}:\n", 1)[1].split("\n\n", 1)[0]
        assert sorted(line.split()[0] for line in block.splitlines()) == sorted(
            n for n, p in plans.items() if p.platform == platform)


def test_spend_limit_caps_the_bill():
    # $0.90/GB, 5 GB included, 300 GB -> $265.50 of charges; a $100 spend limit stops the service: -$165.50, total $100
    p = plan({"gb": {"meter": "outbound_bytes", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB"}},
             [{"metric": "gb", "included": 5, "model": "per_unit", "unit_price": "0.90"}],
             spend_limit={"amount": "100"})
    b = price(usage({"outbound_bytes": 300e9}), p)
    assert line(b, "spend_limit").amount == Decimal("-165.50") and b.total == Decimal("100.00")
    under = price(usage({"outbound_bytes": 50e9}), p)
    assert under.total == Decimal("40.50") and all(ln.item != "spend_limit" for ln in under.lines)


def test_a_grown_app_has_more_items_of_each_size_in_its_distributions():
    """sim.pricing.headroom.scale_usage: growth by g multiplies a distribution's counts (g times the messages of
    each size), so a per-item rounded metric grows by g: 3 x (2 KiB parts of 100 B and 5,000 B) = 3 x (1 + 3)."""
    from sim.pricing.headroom import scale_usage

    u = usage_from_dict({"period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
                         "meters": {"message_sizes_in": {"items": {"value": [100, 5000], "count": [1, 1]}}}}, "<t>")
    plan = plan_from_dict({"name": "p", "description": "p", "metrics": {"tx": {
        "meter": "message_sizes_in", "aggregation": "sum", "meter_unit": "bytes", "unit": "tx",
        "each": {"step": 2, "step_unit": "KiB", "minimum": 1}}}}, "<p>")
    assert measure(plan, u)["tx"].quantity == 4
    assert measure(plan, scale_usage(u, 3.0))["tx"].quantity == 12
