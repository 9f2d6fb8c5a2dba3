"""Every rule of ../shared/reference/seeds.md, one test each, computed by hand in the comment."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from helpers import GB, D, amounts, bill

from sim.meters import MeterBook
from sim.pricing.plan import load_plan
from sim.pricing.quote import quote

UTC = ZoneInfo("UTC")

# ---------------------------------------------------------------- messaging seed (000)


def test_free_quota_is_1000_mau_5gb_1gb_2gb_and_continues_in_payg():
    # Exactly at the free quota on Cloud: every usage line is 0; only the $49 minimum remains.
    b = bill("mesibo-cloud", {"mau": 1000, "outbound_bytes": 5 * GB,
                              "stored_bytes": {"interval": "1d", "values": [1 * GB] * 30}, "turn_bytes": 2 * GB})
    a = amounts(b)
    assert a["mau"] == a["outbound_bytes"] == a["stored_bytes"] == a["turn_bytes"] == D("0.00")
    assert a["minimum_commitment"] == D("49.00") and b.total == D("49.00")


def test_cloud_prices_per_mau_bandwidth_storage_turn():
    # 6,000 MAU -> 5,000 x $0.01 = $50; 15 GB out -> 10 x $0.90 = $9; storage 3 GB avg -> 2 x $2.50 = $5;
    # TURN 12 GB -> 10 x $0.30 = $3. Total $67 (above the minimum, so no true-up).
    b = bill("mesibo-cloud", {"mau": 6000, "outbound_bytes": 15 * GB,
                              "stored_bytes": {"interval": "1d", "values": [3 * GB] * 30}, "turn_bytes": 12 * GB})
    assert amounts(b) == {"mau": D("50.00"), "outbound_bytes": D("9.00"), "stored_bytes": D("5.00"),
                          "turn_bytes": D("3.00")}
    assert b.total == D("67.00")


def test_on_premise_bills_mau_only_with_no_minimum():
    # 6,000 MAU -> $50; 15 GB out, storage and TURN are free; no monthly commitment ("NO OTHER CHARGES").
    b = bill("mesibo-onprem", {"mau": 6000, "outbound_bytes": 15 * GB, "turn_bytes": 12 * GB, "peak_ccu": 3000})
    assert amounts(b) == {"mau": D("50.00")}
    assert set(b.unknown_meters) == {"outbound_bytes", "turn_bytes", "peak_ccu"}   # reported, not priced
    small = bill("mesibo-onprem", {"mau": 1500})
    assert small.total == D("5.00")        # 500 x $0.01, not raised to $49


def test_concurrency_rule_bills_ten_times_peak_ccu():
    # 10,000 MAU with 1,500 peak CCU (15 % > 10 %): billable MAU = 10 x 1,500 = 15,000, before the free quota:
    # (15,000 - 1,000) x $0.01 = $140.
    b = bill("mesibo-cloud", {"mau": 10_000, "peak_ccu": 1500})
    line = b.line("mau")
    assert line.quantity == 15_000 and line.billable == 14_000 and line.amount == D("140.00")
    assert "10 x peak_ccu" in line.explanation
    # At exactly 10 % (1,000 CCU) nothing changes: (10,000 - 1,000) x $0.01 = $90.
    assert bill("mesibo-cloud", {"mau": 10_000, "peak_ccu": 1000}).line("mau").amount == D("90.00")


def test_minimum_commitment_raises_a_small_bill_to_49():
    # 2,000 MAU -> $10; bill below $49 -> true-up line $39, total $49.
    b = bill("mesibo-cloud", {"mau": 2000})
    assert amounts(b)["minimum_commitment"] == D("39.00") and b.total == D("49.00")


def test_bandwidth_is_outbound_session_layer_and_tcpip_is_not_billed():
    # A run that moved 100 B of payload + 22 B TLS record + 52 B TCP/IP out: the billed outbound meter holds
    # 122 B, the tcpip bytes are reported in the breakdown only.
    book = MeterBook(start=datetime(2026, 11, 1, tzinfo=UTC), minutes=60, days=1)
    book.add_bytes("out", "payload", 3, 100)
    book.add_bytes("out", "tls_record", 3, 22)
    book.add_bytes("out", "tcpip", 3, 52)
    book.add_bytes("in", "payload", 3, 999)     # inbound is never the bandwidth meter
    doc = book.to_usage(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert sum(doc["meters"]["outbound_bytes"]["values"]) == 122
    assert doc["breakdown"]["outbound"]["tcpip"] == 52


def test_storage_is_the_monthly_average_on_cloud():
    # 4 GB stored for the first 15 days, 0 after: monthly average 2 GB -> 1 GB over the free 1 GB -> $2.50.
    b = bill("mesibo-cloud", {"stored_bytes": {"interval": "1d", "values": [4 * GB] * 15 + [0] * 15}})
    assert b.line("stored_bytes").quantity == 2 and b.line("stored_bytes").amount == D("2.50")


def test_notifications_at_50_and_75_percent_of_free_limits_with_times():
    # Free plan, 5 GB bandwidth limit: 0.25 GB per day. 50 % = 2.5 GB is reached at the end of day 10
    # (2026-11-11T00:00), 75 % = 3.75 GB at the end of day 15 (2026-11-16T00:00); 7.5 GB total exceeds the limit.
    b = bill("mesibo-free", {"outbound_bytes": {"interval": "1d", "values": [0.25 * GB] * 30}})
    out = [(n.meter, n.threshold, n.at.isoformat()) for n in b.notifications]
    assert out == [("outbound_bytes", 0.5, "2026-11-11T00:00:00+00:00"),
                   ("outbound_bytes", 0.75, "2026-11-16T00:00:00+00:00")]
    v = b.violations[0]
    assert (v.meter, v.measured, v.limit) == ("outbound_bytes", D("7.5"), D("5"))
    assert v.at.isoformat() == "2026-11-21T00:00:00+00:00"   # 5.0 GB at the end of Nov 20, above it in Nov 21


def test_rate_limit_is_a_plan_parameter_not_priced():
    # The seed gives no number for the message rate limit (FAQ): no shipped plan prices messages per second.
    for name in ("mesibo-free", "mesibo-cloud", "mesibo-onprem"):
        assert "messages" not in load_plan(name).meters()


def test_calculator_is_payload_only_without_minimum():
    # 1,000 MAU, 1 M messages x 50 B = 0.05 GB: within the free quota -> $0 (the calculator ignores the $49
    # minimum), while a bill for the same usage is raised to $49.
    q = quote(load_plan("mesibo-cloud"), mau=1000, messages=1_000_000, size=50)
    assert q.total == D("0.00") and q.notes == ("minimum commitment not applied",)
    assert bill("mesibo-cloud", {"mau": 1000, "outbound_bytes": 50_000_000}).total == D("49.00")


def test_inconsistency_1_table_quota_vs_example_quota():
    # Same usage, two readings: table (1,000 free MAU at $0.01) vs example (20K free at $0.001).
    usage = {"mau": 100_000, "outbound_bytes": 6 * GB}
    assert bill("mesibo-cloud", usage).line("mau").amount == D("990.00")       # 99,000 x 0.01
    assert bill("mesibo-cloud-example", usage).line("mau").amount == D("80.00")  # 80,000 x 0.001


def test_inconsistency_2_bandwidth_090_storage_250():
    b = bill("mesibo-cloud", {"outbound_bytes": 6 * GB, "stored_bytes": {"interval": "1d", "values": [2 * GB] * 30}})
    assert b.line("outbound_bytes").unit_price == D("0.90") and b.line("stored_bytes").unit_price == D("2.50")


def test_inconsistency_3_ten_percent_rule_on_free_and_cloud_not_onprem():
    usage = {"mau": 10_000, "peak_ccu": 2000}   # 20 % of MAU
    assert bill("mesibo-cloud", usage).line("mau").quantity == 20_000
    free = bill("mesibo-free", usage)
    assert any(v.metric == "peak_ccu" and v.limit == 1000 for v in free.violations)   # 10 % of 10,000
    assert bill("mesibo-onprem", usage).line("mau").quantity == 10_000


# ---------------------------------------------------------------- IoT seed (004)

FLESPI_INCLUDED = {"channels": 3, "streams": 3, "devices": 1000, "containers": 10_000, "abques": 10_000,
                   "cdns": 10_000, "mqtt_sessions": 10_000, "tokens": 10_000, "subaccounts": 10_000, "limits": 1000}


def _daily(n):
    return {"interval": "1d", "values": [n] * 30}


def test_commercial_included_quotas_cost_only_the_base_fee():
    b = bill("flespi-commercial", {k: _daily(v) for k, v in FLESPI_INCLUDED.items()}
             | {"stored_bytes": _daily(1 * GB)})
    assert b.total == D("100.00")


@pytest.mark.parametrize(("meter", "extra", "cost"), [
    ("channels", 1, "30.00"),        # extra channel $30
    ("streams", 2, "20.00"),         # extra stream $10
    ("devices", 100, "1.00"),        # extra 100 devices $1
    ("containers", 1000, "1.00"),    # extra 1,000 containers $1
    ("abques", 2500, "3.00"),        # 2,500 extra -> 3 blocks of 1,000
    ("cdns", 1, "1.00"),             # a partial block is a whole block
    ("mqtt_sessions", 1000, "1.00"),
    ("tokens", 1000, "1.00"),
    ("subaccounts", 1000, "1.00"),
    ("limits", 1000, "1.00"),
])
def test_commercial_extras(meter, extra, cost):
    b = bill("flespi-commercial", {meter: _daily(FLESPI_INCLUDED[meter] + extra)})
    assert b.line(meter).amount == D(cost)
    assert b.total == D("100") + D(cost)


def test_extra_storage_is_one_dollar_per_gb():
    # 2.2 GB average -> ceil 3 GB -> 2 GB over the included 1 GB -> $2.
    assert bill("flespi-commercial", {"stored_bytes": _daily(2.2 * GB)}).line("stored_bytes").amount == D("2.00")


def test_sla_addons():
    assert bill("flespi-commercial", {}, addons=["sla_basic"]).total == D("1000.00")
    assert bill("flespi-commercial", {}, addons=["sla_premium"]).total == D("3100.00")


def test_free_plan_cannot_be_extended_and_reports_violations():
    # 5 channels on Free: nothing is billed, a violation names the meter, the measured value and the limit.
    b = bill("flespi-free", {"channels": _daily(5), "devices": _daily(100)})
    assert b.total == D("0.00") and b.lines == ()
    assert [(v.meter, v.measured, v.limit) for v in b.violations] == [("channels", D(5), D(3))]
    assert b.to_dict()["violations"][0]["measured"] == 5


def test_free_plan_has_no_subaccounts_or_limits():
    b = bill("flespi-free", {"subaccounts": _daily(1)})
    assert [v.meter for v in b.violations] == ["subaccounts"]


def test_storage_is_minute_snapshots_averaged_per_day_then_month():
    # Daily averages, not a plain mean, when days differ in length. New York, November 2026: DST ends on
    # Nov 1, so that day has 25 hours; hourly snapshots -> 721 values. Day 1 holds 25 snapshots of 2.5 GB,
    # the other 29 days 1 GB. Average of daily averages = (2.5 + 29 x 1) / 30 = 1.05 GB -> ceil 2 GB -> $1.
    # (A plain mean would be (25 x 2.5 + 696 x 1) / 721 = 1.052 GB: the same GB here, so we also check the
    # measured value itself.)
    values = [2.5 * GB] * 25 + [1 * GB] * 696
    period = {"start": "2026-11-01", "end": "2026-12-01", "tz": "America/New_York"}
    b = bill("flespi-commercial", {"stored_bytes": {"interval": "1h", "values": values}}, period)
    assert b.line("stored_bytes").metered == D("1050000000")     # the meter's reading, in bytes
    assert b.line("stored_bytes").measured == D("1.05")           # the line's unit, GB
    assert b.line("stored_bytes").amount == D("1.00")
    plain = np.mean(values)
    assert plain != 1.05 * GB


def test_elements_are_daily_counts_averaged_and_rounded_up():
    # 3 streams for 20 days and 4 for 10: (3 x 20 + 4 x 10) / 30 = 3.33 -> 4 -> 1 extra -> $10.
    b = bill("flespi-commercial", {"streams": {"interval": "1d", "values": [3] * 20 + [4] * 10}})
    assert b.line("streams").quantity == 4 and b.line("streams").amount == D("10.00")


def test_storage_limits_are_per_element_at_runtime_not_in_the_bill():
    # "storage is not redistributed between the elements": a per-element runtime restriction (enforced by the
    # simulator), so Commercial bills the *total* average: two elements x 0.6 GB = 1.2 GB -> 2 GB -> $1.
    b = bill("flespi-commercial", {"stored_bytes": _daily(1.2 * GB)})
    assert b.line("stored_bytes").amount == D("1.00")


def test_billing_timeline():
    # Invoice for November by December 5; due December 28; reminder 3 days before (December 25); unpaid on
    # January 1 -> downgraded to Free.
    assert bill("flespi-commercial", {}).schedule == {
        "invoice_by": "2026-12-05", "due": "2026-12-28", "reminder": "2026-12-25",
        "downgrade_if_unpaid": "2027-01-01", "downgrade_to": "flespi-free"}


def test_partial_block_is_a_whole_block():
    # seeds.md: 250 extra devices -> 3 blocks of 100 -> $3.
    assert bill("flespi-commercial", {"devices": _daily(1250)}).line("devices").amount == D("3.00")
