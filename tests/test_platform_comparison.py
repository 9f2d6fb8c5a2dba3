"""``scenarios/platform-comparison.yaml``: one chat app priced under the seeds' plans and the other platforms'.

The scenario is run for two days instead of thirty (the same app, the same per-day behaviour) so that the test
stays short; every shipped chat-platform plan prices it from the meters the simulator wrote, each bill line is
recomputed here by hand from those meters with the plan's published rule, and a limit that refuses (Pusher's
daily message quota) acts on its own run.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from sim.comparison import run_plans
from sim.pricing.plan import load_plan, plans_by_platform
from sim.scenario import load_scenario

PATH = "scenarios/platform-comparison.yaml"
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def compared():
    sc = load_scenario(PATH, ["simulation.days=2"])
    plans = [load_plan(p) for p in sc.plans]
    base, outcomes = run_plans(sc, plans, progress=False)
    assert base.ok, base.error
    return sc, base, {o.plan: o for o in outcomes}


def lines(outcome) -> dict:
    return {line.item: line for line in outcome.bill.lines}


def items(meter):
    it = meter["items"]
    return np.asarray(it["value"], dtype=np.int64), np.asarray(it["count"], dtype=np.int64)


def cents(x) -> Decimal:
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


def test_the_scenario_holds_every_shipped_chat_platform_plan():
    sc = load_scenario(PATH)
    shipped = {p.name for platform, ps in plans_by_platform().items() if platform != "flespi" for p in ps}
    assert set(sc.plans) == shipped - {"mesibo-cloud-example"}  # the seed's worked example, not a plan one buys


def test_every_plan_prices_the_app_from_meters_the_simulator_wrote(compared):
    _, base, outcomes = compared
    for name, o in outcomes.items():
        plan = load_plan(name)
        missing = plan.meters() - set(o.usage["meters"])
        assert not missing, (name, missing)
        total = sum((line.amount for line in o.bill.lines), Decimal(0))
        assert o.bill.total == total and o.bill.total == o.bill.total.quantize(CENT), name
    priced = {n for n, o in outcomes.items() if o.bill.total > 0}
    assert {"mesibo-cloud", "mesibo-onprem", "ably-standard", "pubnub-transactions", "emqx-serverless"} <= priced


def test_ably_bills_inbound_plus_outbound_messages_and_channel_minutes_by_the_million(compared):
    _, _, outcomes = compared
    o = outcomes["ably-standard"]
    m, ls = o.usage["meters"], lines(o)
    messages = sum(m["messages_in"]["values"]) + sum(m["messages_out"]["values"])
    assert ls["messages"].quantity == messages > 1_000_000
    assert ls["messages"].amount == -(-messages // 1_000_000) * Decimal("2.50")
    channel = sum(m["channel_minutes"]["values"])
    assert ls["channel_minutes"].amount == -(-channel // 1_000_000) * Decimal("1.00")
    seconds = items(m["connection_seconds"])
    total_s = int((seconds[0] * seconds[1]).sum())
    assert ls["connection_minutes"].metered == total_s  # exact seconds: Ably publishes no per-connection rounding
    assert abs(ls["connection_minutes"].quantity - Decimal(total_s) / 60) < Decimal("1e-6")
    assert ls["base"].amount == cents(Decimal(29) * 2 / 30)  # prorated daily: 2 of November's 30 days
    # a paid package's limits are not a free tier
    from sim.pricing.headroom import headroom
    from sim.pricing.usage import usage_from_dict

    h = headroom(usage_from_dict(o.usage, "<t>"), load_plan("ably-standard"))
    assert not h.free and h.text().startswith("leaves the plan's limits at")


def test_pubnub_counts_a_transaction_per_started_2_kib_of_each_message(compared):
    _, _, outcomes = compared
    o = outcomes["pubnub-transactions"]
    ls = lines(o)
    for meter, item in (("message_sizes_in", "replicated_transactions"), ("message_sizes_out", "edge_transactions")):
        size, count = items(o.usage["meters"][meter])
        tx = int((np.maximum(1, -(-size // 2048)) * count).sum())
        assert ls[item].quantity == tx > int(count.sum())  # media messages are several transactions each


def test_emqx_rounds_each_session_up_to_a_minute_as_the_simulators_connection_minutes(compared):
    _, _, outcomes = compared
    o = outcomes["emqx-serverless"]
    m, ls = o.usage["meters"], lines(o)
    assert ls["session_minutes"].quantity == sum(m["connection_minutes"]["values"])
    gib = Decimal(2**30)
    traffic = (Decimal(sum(m["outbound_bytes"]["values"])) + Decimal(sum(m["inbound_bytes"]["values"]))) / gib
    assert abs(ls["traffic"].quantity - traffic) < Decimal("1e-6")
    free = outcomes["emqx-serverless-free"]
    assert free.bill.total == 0 and any(line.item == "spend_limit" for line in free.bill.lines)


def test_pushers_daily_quota_refuses_the_app_past_200000_messages_a_utc_day(compared):
    _, base, outcomes = compared
    o = outcomes["pusher-sandbox"]
    assert o.enforced and o.binds
    days = o.usage["enforcement"]["quota_days"]
    assert [d["day"] for d in days] == ["2026-11-01", "2026-11-02"]
    assert all(d["used"] <= d["limit"] == 200_000 and d["rejected"] > 0 for d in days)
    assert o.usage["counts"]["delivered"] < base.usage["counts"]["delivered"]
    # the unrestricted app sends more than the quota: what the quota counts, per UTC day
    per_day = (np.asarray(base.usage["meters"]["messages_in"]["values"]).reshape(2, 1440).sum(axis=1))
    assert (per_day > 200_000).all()


def test_free_tiers_the_app_outgrows_are_reported(compared):
    _, _, outcomes = compared
    for name, metric in (("pusher-sandbox", "connections"), ("firebase-rtdb-spark", "connections")):
        violations = {v.metric for v in outcomes[name].bill.violations}
        assert metric in violations, (name, violations)
    assert not outcomes["ably-standard"].bill.violations  # 10,000 concurrent connections is far away


def test_the_iot_hubs_limits_act_on_the_app_and_the_cheapest_is_chosen_in_one_currency(compared):
    sc, base, outcomes = compared
    free = outcomes["azure-iot-hub-free"]
    assert "devices" in {v.metric for v in free.bill.violations}  # 5,000 users > 500 devices
    assert base.usage["meters"]["devices"]["values"] == [sc.population.users] * 2
    days = free.usage["enforcement"]["quota_days"]
    assert all(d["limit"] == 8000 and d["used"] <= 8000 and d["rejected"] > 0 for d in days)
    s1 = outcomes["azure-iot-hub-s1"]
    assert s1.bill.currency == "CNY" and s1.bill.total == Decimal("254.40")
    from sim.comparison import cheapest_usable
    from sim.pricing.report import cheapest

    bills = [o.bill for o in outcomes.values()]
    assert outcomes[cheapest_usable(list(outcomes.values())) or "mesibo-onprem"].bill.currency == "USD"
    name, tie = cheapest(bills)
    assert all(outcomes[n].bill.currency == "USD" for n in [name, *tie] if n)


def test_totals_in_different_currencies_are_never_compared():
    """The cheapest is chosen among the bills in the currency most of them use: a CNY 1.00 bill is not 'cheaper'
    than USD 10.00 ones."""
    from sim.pricing.plan import plan_from_dict
    from sim.pricing.pricing import price
    from sim.pricing.report import cheapest, comparison
    from sim.pricing.usage import usage_from_dict

    usage = usage_from_dict({"period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
                             "meters": {"mau": 1}}, "<t>")

    def plan(name, currency, fee):
        return plan_from_dict({"name": name, "description": name, "currency": currency, "base_fee": fee,
                               "metrics": {"mau": {"meter": "mau", "aggregation": "max"}}}, name)

    bills = [price(usage, plan(n, c, f)) for n, c, f in (("u10", "USD", "10"), ("c1", "CNY", "1"), ("u12", "USD", "12"))]
    assert cheapest(bills) == ("u10", [])
    assert cheapest(bills[1:2]) == ("c1", [])
    assert "plans in CNY are not compared" in comparison(bills)
