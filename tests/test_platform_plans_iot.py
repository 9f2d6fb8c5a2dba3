"""Shipped IoT platform plans (AWS IoT Core, Azure IoT Hub) against their published examples and rules.

Each figure is copied from the page cited in the plan file (sim/pricing/plans/aws-iot-core*.yaml,
azure-iot-hub-*.yaml); the usages are built by hand, so each test checks our reading of one rule. The last tests
price the simulated IoT fleet (scenarios/iot-trackers.yaml) and recompute every line from its meters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from sim.pricing.metering import measure
from sim.pricing.plan import load_plan
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict
from sim.world.plan_enforcer import PlanEnforcer

NOV = {"start": "2026-11-01", "end": "2026-12-01"}       # 30 days
DEC = {"start": "2026-12-01", "end": "2027-01-01"}       # 31 days
DAY_S = 86_400
H = 3_600_000
CENT = Decimal("0.01")


def lines(bill) -> dict[str, Decimal]:
    return {ln.item: ln.amount for ln in bill.lines}


def cents(x) -> Decimal:
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


# -- AWS IoT Core ---------------------------------------------------------------------------------------------
def test_aws_pricing_example_connectivity_and_messaging():
    # A1's example (Europe (Ireland)): 100,000 devices connected for 30 days, each sending 325 messages of 1 KB a
    # day. "Minutes of connection = 100,000 connections * 60 minutes/hour * 24 hours/day * 30 days = 4,320,000,000
    # minutes of connection"; "* $0.08/1,000,000 minutes of connection = $345.60". "Messages = 100,000 devices * 325
    # messages/device-day * 30 days = 975,000,000 messages"; "* $1.00/1,000,000 messages = $975.00". (The example's
    # Device Shadow and rules charges are not metered by the simulator and not in the plan.)
    usage = usage_from_dict({"period": NOV, "meters": {
        "connection_seconds": {"items": {"value": [30 * DAY_S], "count": [100_000]}},
        "message_sizes_in": {"items": {"value": [1024], "count": [100_000 * 325 * 30]}}}})
    bill = price(usage, load_plan("aws-iot-core"))
    assert lines(bill) == {"connectivity": Decimal("345.60"), "messaging": Decimal("975.00")}
    assert bill.total == Decimal("1320.60") and not bill.violations
    assert bill.line("connectivity").quantity == 4_320_000_000
    assert bill.line("messaging").quantity == 975_000_000


def test_aws_rounds_each_message_to_5_kb_parts_and_each_connection_to_whole_minutes():
    # messages in: 0 B and 5,120 B are one message each, 5,121 B two, 8,192 B (8 KB) two, 12,000 B three;
    # out (sent by the service): 100 B one, 10,241 B three.
    # 1,000 x 1 + 1,000 x 1 + 1,000 x 2 + 1,000 x 2 + 1,000 x 3 = 9,000 in; 500 x 1 + 500 x 3 = 2,000 out; 11,000 in all
    # connections: 60 s = 1 minute, 61 s = 2, 3,599 s = 60 (each on its own: not 3,720 s / 60 = 62 minutes)
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [0, 5120, 5121, 8192, 12_000], "count": [1000] * 5}},
        "message_sizes_out": {"items": {"value": [100, 10_241], "count": [500, 500]}},
        "connection_seconds": {"items": {"value": [60, 61, 3599], "count": [1, 1, 1]}}}})
    plan = load_plan("aws-iot-core")
    q = measure(plan, usage)
    assert (q["messages_in"].quantity, q["messages_out"].quantity, q["messages"].quantity) == (9000, 2000, 11_000)
    assert q["connection_minutes"].quantity == 1 + 2 + 60
    # 11,000 x $1.00/M = $0.011 -> $0.01; 63 minutes x $0.08/M = $0.00000504 -> $0.00
    assert lines(price(usage, plan)) == {"messaging": Decimal("0.01"), "connectivity": Decimal("0.00")}


def test_aws_free_tier_covers_its_50_device_illustration():
    # A1: "the AWS Free Tier would help you run a 50-device workload, where each device: Connects for 24 hours a day;
    # Exchanges 300 messages per day (message size 5 KB or smaller)". In December (31 days): 50 x 1,440 x 31 =
    # 2,232,000 minutes <= 2,250,000 free; 50 x 300 x 31 = 465,000 messages <= 500,000 free.
    usage = usage_from_dict({"period": DEC, "meters": {
        "connection_seconds": {"items": {"value": [31 * DAY_S], "count": [50]}},
        "message_sizes_in": {"items": {"value": [5120], "count": [50 * 300 * 31]}}}})
    free = price(usage, load_plan("aws-iot-core-free-tier"))
    assert free.total == 0 and lines(free) == {"connectivity": 0, "messaging": 0}
    # after the first 12 months: 2,232,000 x $0.08/M = $0.17856 -> $0.18; 465,000 x $1.00/M = $0.465 -> $0.47
    paid = price(usage, load_plan("aws-iot-core"))
    assert lines(paid) == {"connectivity": Decimal("0.18"), "messaging": Decimal("0.47")}
    assert paid.total == Decimal("0.65")


def test_aws_free_tier_bills_what_exceeds_it():
    # 3,250,000 minutes (one connection-month of 3,250,000 minutes): 1,000,000 beyond the free 2,250,000 -> $0.08;
    # 1,500,000 messages of 6,000 B = 3,000,000 messages: 2,500,000 beyond the free 500,000 -> $2.50
    usage = usage_from_dict({"period": NOV, "meters": {
        "connection_seconds": {"items": {"value": [60], "count": [3_250_000]}},
        "message_sizes_in": {"items": {"value": [6000], "count": [1_500_000]}}}})
    bill = price(usage, load_plan("aws-iot-core-free-tier"))
    assert lines(bill) == {"connectivity": Decimal("0.08"), "messaging": Decimal("2.50")}
    assert bill.line("messaging").billable == 2_500_000


def test_aws_beyond_the_first_billion_messages_is_reported_not_repriced():
    # the next tiers' rates were not found: 1,000,000,001 messages are billed at the first tier's $1.00/M
    # ($1,000.000001 -> $1,000.00) and the month is reported past the first billion
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [200], "count": [1_000_000_001]}}}})
    bill = price(usage, load_plan("aws-iot-core"))
    assert lines(bill)["messaging"] == Decimal("1000.00")
    assert [(v.metric, v.measured, v.limit) for v in bill.violations] == [("messages", 1_000_000_001, 1_000_000_000)]


# -- Azure IoT Hub ----------------------------------------------------------------------------------------------
def test_azure_s1_unit_is_a_monthly_fee_in_cny():
    # Z1 (azure.cn): "S1 ¥ 254.40" per unit per month, tax-inclusive; no per-message charge within the quota.
    # The billing doc's example 2 (Z5): a device sending "one 100-KB device-to-cloud message every hour" uses
    # "25 (100 KB / 4 KB) messages * 24 hours" = 600 a day; 30 days: 18,000 of the quota, still ¥254.40.
    plan = load_plan("azure-iot-hub-s1")
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [100 * 1024], "count": [24 * 30]}}, "devices": 1}})
    bill = price(usage, plan)
    assert bill.currency == "CNY" and lines(bill) == {"s1_unit": Decimal("254.40")} and not bill.violations
    assert measure(plan, usage)["messages"].quantity == 25 * 24 * 30
    # a whole month's fee for any period: the page gives no part-month rule (the plan header says so)
    two_days = usage_from_dict({"period": {"start": "2026-11-01", "end": "2026-11-03"}, "meters": {}})
    assert price(two_days, plan).total == Decimal("254.40")


def test_azure_message_chunks_4_kb_on_s1_and_half_kb_on_free():
    # Z5: "a 6-KB message is charged 2 messages" (4-KB chunks, 4,096 B); "a 100-byte message is charged as one";
    # the free tier meters "0.5K-byte chunks" (512 B): 100 B = 1, 512 B = 1, 513 B = 2, 6 KB (6,144 B) = 12
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [100, 512, 513, 6144], "count": [1, 1, 1, 1]}},
        "message_sizes_out": {"items": {"value": [4097], "count": [1]}}}})   # cloud-to-device: 2 (S1), 9 (free)
    s1 = measure(load_plan("azure-iot-hub-s1"), usage)
    free = measure(load_plan("azure-iot-hub-free"), usage)
    assert (s1["messages_in"].quantity, s1["messages_out"].quantity) == (1 + 1 + 1 + 2, 2)
    assert (free["messages_in"].quantity, free["messages_out"].quantity) == (1 + 1 + 2 + 12, 9)


def test_azure_free_costs_nothing_and_reports_more_than_500_devices():
    plan = load_plan("azure-iot-hub-free")
    bill = price(usage_from_dict({"period": NOV, "meters": {"devices": 501}}), plan)
    assert bill.total == 0 and not plan.charges_anything
    assert [(v.metric, v.limit) for v in bill.violations] == [("devices", 500)]


def _enforcer(name: str) -> PlanEnforcer:
    e = PlanEnforcer.from_plan(load_plan(name), users=1)
    e.begin(datetime(2026, 11, 1, tzinfo=UTC), 3 * 1440)
    return e


def test_azure_s1_daily_quota_refuses_past_400000_chunks_until_the_next_utc_day():
    # Z3/Z6: 400,000 messages a day per S1 unit, in 4 KB chunks; past it requests fail (403002) until the next UTC
    # day. 250,000 messages of 5,000 B (2 chunks each) on Nov 1: 200,000 fit (400,000 chunks), the 200,001st and
    # every later one that day are refused; on Nov 2 the quota is fresh.
    enf = _enforcer("azure-iot-hub-s1")
    n = 250_000
    t = np.arange(n, dtype=np.int64) * 300                  # one every 300 ms from 00:00 UTC (75,000 s < 1 day)
    adm = enf.admit_messages(t, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), sizes=np.full(n, 5000))
    assert int(adm.keep.sum()) == 200_000 and not adm.keep[200_000:].any()
    day = enf.report["quota_days"][0]
    assert (day["day"], day["used"], day["limit"], day["rejected"]) == ("2026-11-01", 400_000, 400_000, 50_000)
    assert day["reached_at"] == "2026-11-01T16:39:59.700000+00:00"   # message 199,999 (0-based) at 59,999.7 s
    nxt = enf.admit_messages(np.array([24 * H + 1]), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                             sizes=np.array([5000]))
    assert nxt is None or bool(nxt.keep.all())
    assert enf.report["rejected_messages"] == {"daily_quota": 50_000}


def test_azure_free_daily_quota_uses_half_kb_units():
    # Z1/Z2: Free, 8,000 messages a day, 0.5 KB meter size. The billing doc's example 1 (Z5): "one 1-KB
    # device-to-cloud message per minute" = 1,440 a day (in 4 KB chunks). On the free tier each 1 KB (1,024 B)
    # message is 2 chunks of 512 B: one such device uses 2,880 of the 8,000 a day.
    enf = _enforcer("azure-iot-hub-free")
    per_min = np.arange(1440, dtype=np.int64) * 60_000
    adm = enf.admit_messages(per_min, np.zeros(1440, dtype=np.int64), np.zeros(1440, dtype=np.int64),
                             sizes=np.full(1440, 1024))
    assert adm is None or bool(adm.keep.all())                # 2,880 of 8,000 chunks: all accepted
    # five such devices on Nov 2: 7,200 messages x 2 chunks; 4,000 fit (8,000 chunks), 3,200 refused
    t = 24 * H + np.repeat(per_min, 5)
    adm = enf.admit_messages(t, np.zeros(t.size, dtype=np.int64), np.zeros(t.size, dtype=np.int64),
                             sizes=np.full(t.size, 1024))
    assert int(adm.keep.sum()) == 4000 and not adm.keep[4000:].any()
    assert enf.report["rejected_messages"] == {"daily_quota": 3200}


# -- the simulated IoT fleet -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fleet():
    from sim.scenario import load_scenario
    from sim.simulate import simulate

    r = simulate(load_scenario("iot-trackers", ["iot.devices=50", "simulation.days=2"]), progress=False,
                 raise_errors=True)
    return r.usage, usage_from_dict(r.usage, "<t>")


def items(meter) -> tuple[np.ndarray, np.ndarray]:
    it = meter["items"]
    return np.asarray(it["value"], dtype=np.int64), np.asarray(it["count"], dtype=np.int64)


def test_aws_prices_the_simulated_fleet_from_its_meters(fleet):
    raw, usage = fleet
    m = raw["meters"]
    size_in, n_in = items(m["message_sizes_in"])
    size_out, n_out = items(m["message_sizes_out"])
    messages = int((np.maximum(1, -(-size_in // 5120)) * n_in).sum() + (np.maximum(1, -(-size_out // 5120)) * n_out).sum())
    secs, n_conn = items(m["connection_seconds"])
    minutes = int((-(-secs // 60) * n_conn).sum())
    assert minutes == sum(m["connection_minutes"]["values"])   # the simulator's own per-connection rounding
    assert messages == sum(m["messages_in"]["values"]) > 0      # 100-300 B telemetry: one message each
    bill = price(usage, load_plan("aws-iot-core"))
    ls = {ln.item: ln for ln in bill.lines}
    assert (ls["messaging"].quantity, ls["connectivity"].quantity) == (messages, minutes)
    assert ls["messaging"].amount == cents(Decimal(messages) * Decimal("0.000001"))
    assert ls["connectivity"].amount == cents(Decimal(minutes) * Decimal("0.00000008"))
    assert bill.total == ls["messaging"].amount + ls["connectivity"].amount and not bill.missing_meters
    # 50 trackers for 2 days fit the free tier's 2,250,000 minutes and 500,000 messages
    assert minutes <= 2_250_000 and messages <= 500_000
    assert price(usage, load_plan("aws-iot-core-free-tier")).total == 0


def test_azure_prices_the_simulated_fleet_from_its_meters(fleet):
    raw, usage = fleet
    m = raw["meters"]
    size_in, n_in = items(m["message_sizes_in"])
    s1 = load_plan("azure-iot-hub-s1")
    bill = price(usage, s1)
    assert lines(bill) == {"s1_unit": Decimal("254.40")} and not bill.violations and not bill.missing_meters
    chunks = int((np.maximum(1, -(-size_in // 4096)) * n_in).sum())
    assert measure(s1, usage)["messages"].quantity == chunks
    free = price(usage, load_plan("azure-iot-hub-free"))
    assert free.total == 0 and not free.violations           # 50 devices <= 500
    # per UTC day (the period is in UTC) the fleet sends more than the free tier's 8,000 messages and less than
    # S1's 400,000: on Azure the free hub would refuse the rest of each day (the simulated fleet does not enforce
    # the quota yet: the plan header says so)
    at = np.asarray(m["message_sizes_in"]["items"]["at"], dtype=np.int64)
    per_day = np.bincount(at, weights=np.maximum(1, -(-size_in // 512)) * n_in)
    assert len(per_day) == 2 and all(8000 < d < 400_000 for d in per_day)
