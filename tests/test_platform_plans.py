"""Shipped plans of other platforms against their own published worked examples (issue 12).

Each example's figures are copied from the platform's page (cited in the plan file); the usage is the example's
own counts, so the test checks our reading of the rules, line by line.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from sim.pricing.plan import load_plan
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict

NOV = {"start": "2026-11-01", "end": "2026-12-01"}


def lines(bill) -> dict[str, Decimal]:
    return {ln.item: ln.amount for ln in bill.lines}


def test_ably_support_chat_example():
    # ably.com/docs/platform/pricing/examples/support-chat: 250,000 conversations x 20 messages = 5,000,000 sent;
    # x 2 (customer + echo to the agent) = 10,000,000 delivered; 15,000,000 x $2.50/M = $37.50. Customer and agent
    # connections 250,000 x 20 min each = 10,000,000 min -> $10.00; channel minutes 250,000 x 20 = 5,000,000 -> $5.00.
    # "Total cost: $52.50/month" (the example leaves out the $29 package fee).
    usage = usage_from_dict({"period": NOV, "meters": {
        "messages_in": 5_000_000, "messages_out": 10_000_000,
        "connection_seconds": {"items": {"value": [20 * 60], "count": [500_000]}},
        "channel_minutes": 5_000_000}})
    bill = price(usage, load_plan("ably-standard"))
    got = lines(bill)
    assert (got["messages"], got["connection_minutes"], got["channel_minutes"]) == (
        Decimal("37.50"), Decimal("10.00"), Decimal("5.00"))
    assert bill.total - got["base"] == Decimal("52.50") and got["base"] == Decimal("29.00")


def test_ably_realtime_dashboard_example_rounds_up_to_whole_millions():
    # .../examples/realtime-dashboard: 100 patients x 6/min x 480 min x 22 days = 6,336,000 sent, x 5 coordinators =
    # 31,680,000 delivered, 38,016,000 in all billed as "39,000,000 x $2.50/M" = $97.50; 105 users x 8 h x 22 days x
    # 60 = 1,108,800 connection minutes billed as "2,000,000 mins x $1.00/M" = $2.00.
    usage = usage_from_dict({"period": NOV, "meters": {
        "messages_in": 6_336_000, "messages_out": 31_680_000,
        "connection_seconds": {"items": {"value": [8 * 3600], "count": [105 * 22]}}}})
    got = lines(price(usage, load_plan("ably-standard")))
    assert got["messages"] == Decimal("97.50") and got["connection_minutes"] == Decimal("2.00")


def test_ably_standard_limits_are_reported():
    usage = usage_from_dict({"period": NOV, "meters": {"peak_ccu": 10_001, "peak_channels": 9_000}})
    bill = price(usage, load_plan("ably-standard"))
    assert [(v.metric, v.limit) for v in bill.violations] == [("peak_connections", 10_000)]


def test_pubnub_counts_2kib_parts_and_each_delivery():
    # P3: "a single API call to publish an 8 KB message will count as 4 transactions"; P4: one message published to
    # 100 subscribers = 1 replicated + 100 edge transactions. 1,000 publishes of 8,192 B to 100 subscribers:
    # 4,000 replicated x $0.000123 = $0.492 -> $0.49; 400,000 edge x $0.000033 = $13.20; persistence 0.5 GB x $8 = $4;
    # total $17.69 < $49 prepay, topped up to $49.
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [8192], "count": [1000]}},
        "message_sizes_out": {"items": {"value": [8192], "count": [100_000]}},
        "stored_bytes": 0.5e9}})
    bill = price(usage, load_plan("pubnub-transactions"))
    got = lines(bill)
    assert (got["replicated_transactions"], got["edge_transactions"], got["persistence"]) == (
        Decimal("0.49"), Decimal("13.20"), Decimal("4.00"))
    assert got["minimum_commitment"] == Decimal("31.31") and bill.total == Decimal("49.00")


def test_pubnub_free_shares_one_million_transactions():
    # 600,000 publishes of 100 B (1 part each) + 500,000 deliveries of 3,000 B (2 parts each) = 1,600,000 transactions
    usage = usage_from_dict({"period": NOV, "meters": {
        "message_sizes_in": {"items": {"value": [100], "count": [600_000]}},
        "message_sizes_out": {"items": {"value": [3000], "count": [500_000]}}}})
    bill = price(usage, load_plan("pubnub-free"))
    assert bill.total == 0
    assert [(v.metric, v.measured) for v in bill.violations] == [("transactions", 1_600_000)]


def test_firebase_storage_evaluated_daily_beyond_the_free_gigabyte():
    # F1: "$5 for each GB/month, evaluated daily"; 1 GB no-cost. 15 days at 1 GB and 15 at 4 GB: average of the daily
    # averages 2.5 GB; 1.5 GB x $5 = $7.50. 12 GB downloaded: over the no-cost 10 GB, reported (no published price).
    usage = usage_from_dict({"period": NOV, "meters": {
        "stored_bytes": {"interval": "1d", "values": [1e9] * 15 + [4e9] * 15}, "outbound_bytes": 12e9,
        "peak_ccu": 150}})
    blaze = price(usage, load_plan("firebase-rtdb-blaze"))
    assert lines(blaze) == {"storage": Decimal("7.50")}
    assert [v.metric for v in blaze.violations] == ["downloads"]
    spark = price(usage, load_plan("firebase-rtdb-spark"))
    assert spark.total == 0 and [v.metric for v in spark.violations] == ["storage", "downloads", "connections"]


def test_emqx_session_fee_example():
    # E1: "120 sessions for 10 hours, 20 sessions for 10 hours, and 0 sessions for 4 hours ... 120 * 60 * 10 + 20 * 60
    # * 10 + 0 = 84,000, and the session fee is 0 if this falls within the free quota. If the free quota has run out,
    # the session fee will be 84,000 / 1,000,000 * 2 = 0.168, rounded up to $ 0.17."
    example = {"value": [10 * 3600, 10 * 3600], "count": [120, 20]}
    plan = load_plan("emqx-serverless")
    within = price(usage_from_dict({"period": NOV, "meters": {"connection_seconds": {"items": example}}}), plan)
    assert lines(within)["session_minutes"] == 0
    # the free million used by 1,000 connections of 1,000 minutes earlier in the month
    spent = {"value": example["value"] + [1000 * 60], "count": example["count"] + [1000]}
    after = price(usage_from_dict({"period": NOV, "meters": {"connection_seconds": {"items": spent}}}), plan)
    assert lines(after)["session_minutes"] == Decimal("0.17")


def test_emqx_rounds_each_connection_and_bills_binary_gigabytes():
    # 1,000,000 connections of 61 s = 2,000,000 session minutes (not 1,016,667): 1,000,000 x $2/M = $2.00;
    # traffic 3 x 1024^3 out + 1024^3 in = 4 GiB, 1 free, 3 x $0.15 = $0.45
    usage = usage_from_dict({"period": NOV, "meters": {
        "connection_seconds": {"items": {"value": [61], "count": [1_000_000]}},
        "outbound_bytes": 3 * 1024**3, "inbound_bytes": 1024**3}})
    got = lines(price(usage, load_plan("emqx-serverless")))
    assert (got["session_minutes"], got["traffic"]) == (Decimal("2.00"), Decimal("0.45"))
    free = price(usage, load_plan("emqx-serverless-free"))
    assert free.total == 0 and lines(free)["spend_limit"] == Decimal("-2.45")


def test_pusher_counts_each_delivery_and_refuses_past_the_daily_quota():
    # U4: "if one message is published on my-channel and 50 clients are subscribed to that channel then the message
    # count will be 51"; 40,000 publishes to 500 subscribers -> 40,000 + 20,000,000 = 20,040,000.
    from sim.pricing.metering import measure
    from sim.world.plan_enforcer import PlanEnforcer

    plan = load_plan("pusher-sandbox")
    usage = usage_from_dict({"period": NOV, "meters": {"messages_in": 40_000, "messages_out": 20_000_000}})
    assert measure(plan, usage)["messages"].quantity == 20_040_000
    # the runtime quota: 200,000 a day, a publish to 50 subscribers uses 51, so 3,921 fit (199,971) and the 3,922nd
    # and every later one that UTC day are refused
    enf = PlanEnforcer.from_plan(plan, users=1000)
    n = 4000
    t = np.arange(n, dtype=np.int64) * 10_000  # one every 10 s from midnight UTC
    adm = enf.admit_messages(t, np.zeros(n, dtype=np.int64), np.full(n, 50), sizes=np.full(n, 200))
    keep = np.asarray(adm.keep if hasattr(adm, "keep") else adm)
    assert int(keep.sum()) == 3921 and not keep[3921:].any()
    assert enf.report["rejected_messages"] == {"daily_quota": n - 3921}
