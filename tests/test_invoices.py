"""The IoT seed's billing timeline (sim/pricing/invoices.py), worked by hand from the seed's dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from sim.pricing.invoices import calendar_months, invoice_timeline
from sim.pricing.plan import load_plan


def pay(policy: str, late_days: int = 0) -> SimpleNamespace:
    return SimpleNamespace(policy=policy, late_days=late_days)


def d(y, m, day, tz=UTC) -> datetime:
    return datetime(y, m, day, tzinfo=tz)


NOV = [d(2026, 11, 1)]
NOV_END = d(2026, 12, 1)


def test_november_never_paid_seed_dates():
    tl = invoice_timeline(NOV, NOV_END, pay("never"), UTC)
    (inv,) = tl.invoices
    assert inv.month == "2026-11"
    assert inv.issued == d(2026, 12, 5) and inv.due == d(2026, 12, 28) and inv.reminder == d(2026, 12, 25)
    assert inv.paid is None and inv.late and inv.reminder_sent
    assert tl.downgrades == [(d(2027, 1, 1), None)]
    assert [(e[1], e[0]) for e in tl.events()] == [
        ("invoice", d(2026, 12, 5)), ("reminder", d(2026, 12, 25)), ("due", d(2026, 12, 28)),
        ("downgrade", d(2027, 1, 1)),
    ]  # fmt: skip
    # the whole timeline of a one-month run happens after it, flagged
    doc = tl.to_dict()
    json.dumps(doc)
    assert all(e["after_run"] for e in doc["events"]) and doc["invoices"][0]["after_run"]
    assert doc["downgrades"] == [
        {"start": "2027-01-01T00:00:00+00:00", "end": None, "month": "2026-11", "after_run": True,
         "restored_after_run": True}
    ]  # fmt: skip
    assert tl.windows_s() == []  # nothing acts inside the simulated month


def test_late_by_ten_days_downgraded_until_the_payment():
    ms = [d(2026, 11, 1), d(2026, 12, 1), d(2027, 1, 1)]
    tl = invoice_timeline(ms, d(2027, 2, 1), pay("late", 10), UTC)
    nov, dec, jan = tl.invoices
    assert nov.paid == d(2027, 1, 7) and nov.late
    # the payment while downgraded pays both invoices (December's was issued on January 5)
    assert dec.issued == d(2027, 1, 5) and dec.paid == d(2027, 1, 7) and not dec.late
    assert not dec.reminder_sent  # paid before its reminder of January 25
    assert tl.downgrades[0] == (d(2027, 1, 1), d(2027, 1, 7))
    ev = [(e[0], e[1], e[2]) for e in tl.events() if e[0] <= d(2027, 1, 7)]
    assert ev[-4:] == [
        (d(2027, 1, 5), "invoice", "2026-12"), (d(2027, 1, 7), "paid", "2026-11"),
        (d(2027, 1, 7), "paid", "2026-12"), (d(2027, 1, 7), "restore", "2026-11"),
    ]  # fmt: skip
    # January's invoice: due February 28, paid March 10, downgraded March 1 (after the run)
    assert jan.due == d(2027, 2, 28) and jan.paid == d(2027, 3, 10)
    assert tl.downgrades[1] == (d(2027, 3, 1), d(2027, 3, 10))
    assert tl.windows_s() == [(61 * 86400, 67 * 86400)]  # Jan 1 - Jan 7 from November 1
    assert [w["after_run"] for w in tl.to_dict()["downgrades"]] == [False, True]


def test_late_by_two_days_no_downgrade_and_on_time_none():
    tl = invoice_timeline(NOV, NOV_END, pay("late", 2), UTC)
    assert tl.invoices[0].paid == d(2026, 12, 30) and tl.invoices[0].late
    assert tl.downgrades == []
    tl = invoice_timeline(NOV, NOV_END, pay("on_time"), UTC)
    assert tl.invoices[0].paid == d(2026, 12, 28) and not tl.invoices[0].late
    assert tl.downgrades == [] and invoice_timeline(NOV, NOV_END, None, UTC).downgrades == []
    # paid at the very instant of the downgrade check (December 28 + 4 days = January 1): in time
    assert invoice_timeline(NOV, NOV_END, pay("late", 4), UTC).downgrades == []
    assert invoice_timeline(NOV, NOV_END, pay("late", 5), UTC).downgrades == [(d(2027, 1, 1), d(2027, 1, 2))]


def test_february_and_a_year_boundary():
    # February (28 days): invoice March 5, due March 28, reminder March 25, downgrade April 1
    feb = invoice_timeline([d(2027, 2, 1)], d(2027, 3, 1), pay("never"), UTC).invoices[0]
    assert (feb.issued, feb.reminder, feb.due, feb.downgrade_at) == (
        d(2027, 3, 5),
        d(2027, 3, 25),
        d(2027, 3, 28),
        d(2027, 4, 1),
    )
    # a leap February ends on the 29th: still the 5th
    assert invoice_timeline([d(2028, 2, 1)], d(2028, 3, 1)).invoices[0].issued == d(2028, 3, 5)
    # January's invoice is due February 28 and downgrades on March 1: two days late is too late
    jan = invoice_timeline([d(2027, 1, 1)], d(2027, 2, 1), pay("late", 2), UTC)
    assert jan.invoices[0].paid == d(2027, 3, 2) and jan.downgrades == [(d(2027, 3, 1), d(2027, 3, 2))]
    # December: invoice January 5 of the next year, downgrade February 1
    dec = invoice_timeline([d(2026, 12, 1)], d(2027, 1, 1), pay("never"), UTC)
    assert dec.invoices[0].issued == d(2027, 1, 5) and dec.downgrades == [(d(2027, 2, 1), None)]


def test_never_over_three_months_one_window_open_to_the_end():
    ms = calendar_months(d(2026, 11, 1), d(2027, 2, 1))
    assert ms == [d(2026, 11, 1), d(2026, 12, 1), d(2027, 1, 1)]
    tl = invoice_timeline(ms, d(2027, 2, 1), pay("never"), UTC)
    assert tl.downgrades == [(d(2027, 1, 1), None)]
    assert all(i.paid is None and i.late for i in tl.invoices)
    assert tl.windows_s() == [(61 * 86400, None)]
    kinds = [e[1] for e in tl.events()]
    assert kinds.count("downgrade") == 1 and "restore" not in kinds and "paid" not in kinds
    assert kinds.count("invoice") == 3


def test_local_time_zone_and_plan_terms():
    tz = ZoneInfo("Europe/Berlin")
    terms = load_plan("flespi-commercial").billing_terms
    tl = invoice_timeline([datetime(2026, 11, 1, tzinfo=tz)], datetime(2026, 12, 1, tzinfo=tz), pay("never"),
                          "Europe/Berlin", terms=terms)  # fmt: skip
    assert tl.invoices[0].issued == datetime(2026, 12, 5, tzinfo=tz)
    assert tl.to_dict()["invoices"][0]["issued"] == "2026-12-05T00:00:00+01:00"
    assert tl.downgrades == [(datetime(2027, 1, 1, tzinfo=tz), None)]
    # a span starting mid-month still bills that calendar month
    mid = invoice_timeline([d(2026, 11, 15)], d(2026, 12, 1)).invoices[0]
    assert mid.month == "2026-11" and mid.start == d(2026, 11, 1) and mid.issued == d(2026, 12, 5)


@pytest.mark.parametrize(
    "args",
    [
        ([], NOV_END, None),
        ([datetime(2026, 11, 1)], NOV_END, None),  # naive
        ([d(2026, 11, 1), d(2026, 11, 20)], NOV_END, None),  # the same month twice
        (NOV, NOV_END, pay("sometimes")),
        (NOV, NOV_END, pay("late", -1)),
        (NOV, d(2026, 10, 1), None),
    ],
)
def test_bad_input_is_a_value_error(args):
    with pytest.raises(ValueError):
        invoice_timeline(*args)
