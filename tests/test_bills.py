"""Bills people can trust: clean quantities, one unit per row, the period's reading said on the bill, one name
for the cheapest plan (ties reported), and only the usage's ``meters`` priced."""

from __future__ import annotations

import json
from decimal import Decimal

from helpers import GB, D, amounts, bill, usage

from sim.cli import main
from sim.comparison import PlanOutcome
from sim.pricing.bill import clean, quantity_text
from sim.pricing.plan import load_plan
from sim.pricing.pricing import is_one_month, price
from sim.pricing.report import bill_table, cheapest, comparison
from sim.pricing.usage import Usage, usage_from_dict
from sim.run import bills_document

TWO_DAYS = {"start": "2026-11-01", "end": "2026-11-03"}
FORTY_FIVE_DAYS = {"start": "2026-11-01", "end": "2026-12-16"}      # 30 November days + 15 December days


# ---------------------------------------------------------------- clean quantities


def test_clean_rounds_float_noise_for_display_only():
    # bytes to whole bytes; a byte's worth of GB (9 places); at most 12 significant digits elsewhere
    assert clean(D("401739214.9999999"), "bytes") == D("401739215")
    assert clean(D("0.4017392149999999"), "GB") == D("0.401739215")
    assert clean(D("4.500000000"), "channels") == D("4.5")
    assert clean(D("80000"), "MAU") == D("80000") and quantity_text(D("80000")) == "80,000"
    assert quantity_text(D("0.000001")) == "0.000001"
    assert quantity_text(D("401739214.9999999"), "bytes") == "401,739,215"


def test_noisy_byte_sum_shows_whole_bytes_while_pricing_stays_exact():
    # 401,739,214.9999999 bytes (a float sum's noise) on mesibo-cloud: 0.401739215 GB, within the 5 GB included.
    b = bill("mesibo-cloud", {"mau": 500, "outbound_bytes": 401_739_214.9999999})
    line = b.line("outbound_bytes")
    d = line.to_dict()
    assert d["measured"] == 0.401739215 and d["unit"] == "GB"
    assert d["metered"] == {"quantity": 401_739_215, "unit": "bytes"}
    assert "401,739,215 bytes = 0.401739215 GB" in line.explanation
    text = bill_table(b) + json.dumps(b.to_dict())
    assert "9999" not in text and "401739214" not in text
    # the exact Decimal is kept for pricing: 5,000,000,001 bytes -> 1 byte over 5 GB -> 0.000000001 GB x 0.90
    # = 0.0000000009 unrounded, 0.00 on the line
    over = bill("mesibo-cloud", {"mau": 500, "outbound_bytes": 5_000_000_001}).line("outbound_bytes")
    assert over.billable == D("0.000000001") and over.amount_unrounded == D("0.0000000009")
    assert over.amount == D("0.00")


def test_violation_and_notification_quantities_are_clean():
    # mesibo-free: 7.5 GB out (limit 5 GB) -> the violation says 7.5, the notification levels 2.5 and 3.75 GB.
    b = bill("mesibo-free", {"mau": 10, "outbound_bytes": 7_499_999_999.9999999})
    v = next(x for x in b.to_dict()["violations"] if x["meter"] == "outbound_bytes")
    assert v["measured"] == 7.5 and v["limit"] == 5
    levels = sorted(n["level"] for n in b.to_dict()["notifications"] if n["meter"] == "outbound_bytes")
    assert levels == [2.5, 3.75]


# ---------------------------------------------------------------- one unit per row


def test_a_row_is_in_one_unit_and_the_raw_bytes_are_in_the_explanation():
    # 6.5e9 bytes on mesibo-cloud: measured 6.5 GB, included 5 GB, billable 1.5 GB x $0.90 = $1.35.
    b = bill("mesibo-cloud", {"mau": 1000, "outbound_bytes": 6_500_000_000})
    line = b.line("outbound_bytes")
    assert (line.measured, line.quantity, line.included, line.billable, line.unit) == (
        D("6.5"), D("6.5"), D(5), D("1.5"), "GB")
    assert line.metered == D(6_500_000_000) and line.meter_unit == "bytes"
    assert line.amount == D("1.35")
    row = next(r for r in bill_table(b).splitlines() if r.startswith("| outbound_bytes"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # item, measured, aggregation, quantity, included, billable, unit, unit price, amount
    assert cells == ["outbound_bytes", "6.5", "sum", "6.5", "5", "1.5", "GB", "0.90", "1.35"]
    assert "sum of outbound_bytes = 6,500,000,000 bytes = 6.5 GB" in line.explanation
    # a metric without conversion has no separate meter reading
    assert b.line("mau").to_dict()["metered"] is None


def test_derived_quantity_has_its_own_column():
    # 10,000 MAU, 1,500 peak CCU: billed as 10 x 1,500 = 15,000 MAU; 14,000 billable x $0.01 = $140.
    b = bill("mesibo-cloud", {"mau": 10_000, "peak_ccu": 1500})
    row = next(r for r in bill_table(b).splitlines() if r.startswith("| mau"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["mau", "10,000", "unique", "15,000", "1,000", "14,000", "MAU", "0.01", "140.00"]


# ---------------------------------------------------------------- the period: billed as one month


def test_a_two_day_period_is_billed_as_one_month_and_says_so():
    # 2 days, 500 MAU, 4 GB out on mesibo-cloud: the full monthly quotas apply (1,000 MAU, 5 GB included), so every
    # usage line is 0, and the full $49 minimum applies (not 49 x 2/30 = 3.27). Prorating would have billed
    # 4 - 5 x 2/30 = 3.667 GB.
    b = bill("mesibo-cloud", {"mau": 500, "outbound_bytes": 4 * GB}, TWO_DAYS)
    assert amounts(b)["outbound_bytes"] == D("0.00") and amounts(b)["mau"] == D("0.00")
    assert b.total == D("49.00")
    note = ("period 2026-11-01 to 2026-11-03 is 2 days, shorter than a month: billed as one monthly period (the "
            "plan's monthly included quantities, base fee and minimum commitment apply in full, not prorated)")
    assert b.notes == (note,) and b.to_dict()["notes"] == [note]
    assert f"note: {note}" in bill_table(b)


def test_a_45_day_period_is_billed_as_one_month_and_says_so():
    # flespi-commercial over 45 days: one $100 base fee (not 150); 1,000 devices every day = the included 1,000.
    # 4 channels every day: daily average 4 -> 1 extra x $30. Total $130.
    b = bill("flespi-commercial", {"devices": {"interval": "1d", "values": [1000] * 45},
                                   "channels": {"interval": "1d", "values": [4] * 45}}, FORTY_FIVE_DAYS)
    assert amounts(b)["base"] == D("100.00") and amounts(b)["devices"] == D("0.00")
    assert amounts(b)["channels"] == D("30.00") and b.total == D("130.00")
    assert b.notes == ("period 2026-11-01 to 2026-12-16 is 45 days, longer than a month: billed as one monthly "
                       "period (the plan's monthly included quantities, base fee and minimum commitment apply in "
                       "full, not multiplied)",)
    # mesibo-cloud over 45 days: 6,000 MAU -> 5,000 x $0.01 = $50; 6 GB -> 1 GB x $0.90 = $0.90; $50.90 > $49.
    m = bill("mesibo-cloud", {"mau": 6000, "outbound_bytes": 6 * GB}, FORTY_FIVE_DAYS)
    assert m.total == D("50.90") and "minimum_commitment" not in amounts(m)
    assert "longer than a month" in m.notes[0]


def test_calendar_months_carry_no_period_note():
    for period in ({"start": "2026-11-01", "end": "2026-12-01"},
                   {"start": "2026-11-01", "end": "2026-12-01", "tz": "America/New_York"},   # a 25-hour day
                   {"start": "2026-11-15", "end": "2026-12-15", "tz": "Europe/Berlin"},
                   {"start": "2027-02-01", "end": "2027-03-01"},                             # 28 days
                   {"start": "2027-01-31", "end": "2027-02-28"}):                            # the 31st -> last day
        u = usage({"mau": 10}, period)
        assert is_one_month(u), period
        assert price(u, load_plan("mesibo-cloud")).notes == ()
    assert not is_one_month(usage({}, {"start": "2026-11-01", "end": "2026-12-02"}))


def test_the_minimum_note_and_the_period_note_together():
    b = bill("mesibo-cloud", {"mau": 10}, TWO_DAYS, apply_minimum=False)
    assert b.notes[0] == "minimum commitment not applied" and "shorter than a month" in b.notes[1]
    assert b.total == D("0.00")


# ---------------------------------------------------------------- cheapest, and ties


def test_cheapest_is_a_plan_name_or_a_reported_tie():
    small = usage({"mau": 500})
    cloud, example, onprem = (price(small, load_plan(n)) for n in ("mesibo-cloud", "mesibo-cloud-example",
                                                                  "mesibo-onprem"))
    # 500 MAU: on-premise $0 (within its 1,000 free MAU); both cloud plans $49 (the minimum)
    assert cheapest([cloud, onprem]) == ("mesibo-onprem", [])
    assert cheapest([cloud, example]) == (None, ["mesibo-cloud", "mesibo-cloud-example"])
    assert cheapest([]) == (None, [])
    assert cheapest([cloud, cloud]) == ("mesibo-cloud", [])          # one plan listed twice is no tie
    table = comparison([cloud, example])
    total = next(r for r in table.splitlines() if r.startswith("| TOTAL"))
    assert total.count("USD 49.00 <- cheapest (tie)") == 2


def test_sim_price_json_says_cheapest_and_tie(capsys, tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text("period: {start: 2026-11-01, end: 2026-12-01}\nmeters: {mau: 500}\n")
    assert main(["price", str(path), "--plan", "mesibo-cloud", "--plan", "mesibo-cloud-example",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [b["total"] for b in doc["bills"]] == ["49.00", "49.00"]
    assert doc["cheapest"] is None and doc["tie"] == ["mesibo-cloud", "mesibo-cloud-example"]
    assert main(["price", str(path), "--plan", "mesibo-cloud", "--plan", "mesibo-onprem", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cheapest"] == "mesibo-onprem" and doc["tie"] == [] and "best" not in doc
    assert main(["price", str(path), "--plan", "mesibo-cloud", "--plan", "mesibo-cloud-example"]) == 0
    assert capsys.readouterr().out.count("<- cheapest (tie)") == 2


def _outcome(plan: str, meters: dict) -> PlanOutcome:
    return PlanOutcome(plan=plan, bill=bill(plan, meters), quote=None, usage={}, enforced=False)


def test_bills_json_uses_the_same_names():
    # 500 MAU: mesibo-cloud and mesibo-cloud-example both $49 -> a tie; with on-premise ($0) it is the cheapest.
    tie = bills_document([_outcome("mesibo-cloud", {"mau": 500}), _outcome("mesibo-cloud-example", {"mau": 500})])
    assert "best" not in tie and tie["cheapest"] is None and tie["tie"] == ["mesibo-cloud", "mesibo-cloud-example"]
    one = bills_document([_outcome("mesibo-cloud", {"mau": 500}), _outcome("mesibo-onprem", {"mau": 500})])
    assert one["cheapest"] == "mesibo-onprem" and one["tie"] == []
    assert bills_document([]) == {"bills": [], "cheapest": None, "tie": []}


# ---------------------------------------------------------------- only `meters` is priced


def test_pricing_ignores_every_usage_section_but_meters():
    meters = {"mau": 6000, "outbound_bytes": 15 * GB}
    plain = price(usage(meters), load_plan("mesibo-cloud"))
    # informational figures outside `meters` (daily active users, counts, anything): never priced, never "unknown"
    extra = {"activity": {"dau": {"interval": "1d", "values": [4000] * 30}},
             "counts": {"connections": 10, "mau": 99_999}, "breakdown": {"outbound": {"payload": 1}},
             "anything": {"outbound_bytes": 10**15}}
    rich = Usage(period=plain_period(), meters=usage(meters).meters, source="<test>", extra=extra)
    b = price(rich, load_plan("mesibo-cloud"))
    # 5,000 x $0.01 = $50 + 10 GB x $0.90 = $9 -> $59, as without the sections
    assert b.total == plain.total == D("59.00")
    assert b.unknown_meters == () and b.to_dict()["lines"] == plain.to_dict()["lines"]
    # the simulator's sections read from a document are kept, not priced
    doc = usage_from_dict({"period": {"start": "2026-11-01", "end": "2026-12-01"}, "meters": meters,
                           "counts": {"dau": 4000}, "breakdown": {}, "run": {"seed": 1}}, "<test>")
    assert price(doc, load_plan("mesibo-cloud")).unknown_meters == ()


def plain_period():
    return usage({}).period


def test_quantities_in_json_are_numbers_not_noise():
    # stored_bytes as minute snapshots of 1/3 GB: the mean is 333,333,333.33... bytes (a repeating decimal, not
    # float noise); shown as 0.333333333 GB; within the 1 GB included.
    values = [GB / 3] * 1440
    b = bill("mesibo-cloud", {"mau": 10, "stored_bytes": {"interval": "1min", "values": values}},
             {"start": "2026-11-01", "end": "2026-11-02"})
    d = b.line("stored_bytes").to_dict()
    assert d["measured"] == 0.333333333 and d["metered"] == {"quantity": 333_333_333, "unit": "bytes"}
    assert isinstance(d["metered"]["quantity"], int)
    assert Decimal(str(d["measured"])) == D("0.333333333")
