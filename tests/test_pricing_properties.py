"""Property tests: the invariants every bill must keep, for any usage and any (non-volume) plan."""

from __future__ import annotations

from decimal import Decimal

from helpers import GB, usage
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.pricing.bill import cents
from sim.pricing.plan import load_plan, plan_from_dict
from sim.pricing.pricing import price

SHIPPED = ["mesibo-cloud", "mesibo-cloud-example", "mesibo-onprem", "mesibo-free", "flespi-commercial", "flespi-free"]
byte_amounts = st.floats(min_value=0, max_value=50 * GB, allow_nan=False)
counts = st.integers(min_value=0, max_value=200_000)
daily = st.lists(st.integers(min_value=0, max_value=20_000), min_size=30, max_size=30)


def _meters(mau, ccu, out, turn, store, elements):
    return {"mau": mau, "peak_ccu": ccu, "outbound_bytes": out, "turn_bytes": turn,
            "stored_bytes": {"interval": "1d", "values": store},
            "channels": {"interval": "1d", "values": elements}, "devices": {"interval": "1d", "values": elements}}


usage_meters = st.builds(_meters, counts, counts, byte_amounts, byte_amounts,
                         st.lists(byte_amounts, min_size=30, max_size=30), daily)

tier_prices = st.lists(st.decimals(min_value=0, max_value=5, places=3), min_size=1, max_size=4)


@st.composite
def graduated_plans(draw):
    prices = draw(tier_prices)
    bounds = sorted(draw(st.sets(st.integers(1, 10**6), min_size=len(prices) - 1, max_size=len(prices) - 1)))
    tiers = [{"up_to": b, "unit_price": str(p), "flat_fee": str(draw(st.decimals(0, 50, places=2)))}
             for b, p in zip(bounds, prices, strict=False)]
    tiers.append({"up_to": None, "unit_price": str(prices[-1])})
    return plan_from_dict({
        "name": "g", "description": "generated graduated plan",
        "base_fee": str(draw(st.decimals(0, 100, places=2))),
        "minimum_commitment": str(draw(st.decimals(0, 200, places=2))),
        "metrics": {"out": {"meter": "outbound_bytes", "aggregation": "sum", "meter_unit": "bytes", "unit": "GB",
                            "round": {"mode": draw(st.sampled_from(["ceil", "floor", "half_up"])), "precision": 1}}},
        "charges": [{"metric": "out", "model": "graduated", "tiers": tiers,
                     "included": str(draw(st.decimals(0, 10, places=1)))}],
    })


@settings(max_examples=60, deadline=None)
@given(meters=usage_meters, plan_name=st.sampled_from(SHIPPED))
def test_total_is_the_sum_of_rounded_lines(meters, plan_name):
    b = price(usage(meters), load_plan(plan_name))
    assert b.total == sum((line.amount for line in b.lines), Decimal(0))
    for line in b.lines:
        assert line.amount == cents(line.amount_unrounded)
        assert line.amount.as_tuple().exponent == -2
    d = b.to_dict()
    assert Decimal(d["total"]) == sum(Decimal(x["amount"]) for x in d["lines"])


@settings(max_examples=60, deadline=None)
@given(meters=usage_meters, plan_name=st.sampled_from(SHIPPED), extra=byte_amounts, extra_mau=counts)
def test_bill_never_falls_when_a_summed_meter_grows(meters, plan_name, extra, extra_mau):
    plan = load_plan(plan_name)
    before = price(usage(meters), plan).total
    grown = dict(meters, outbound_bytes=meters["outbound_bytes"] + extra, turn_bytes=meters["turn_bytes"] + extra,
                 mau=meters["mau"] + extra_mau)
    assert price(usage(grown), plan).total >= before


@settings(max_examples=80, deadline=None)
@given(plan=graduated_plans(), a=byte_amounts, b=byte_amounts)
def test_graduated_plans_are_monotone(plan, a, b):
    lo, hi = sorted((a, b))
    assert price(usage({"outbound_bytes": hi}), plan).total >= price(usage({"outbound_bytes": lo}), plan).total
