"""The PAYG credit ledger and the Free -> PAYG switch, against ledgers worked out by hand.

Seed 000, "PAYG Credits": usage charges (minimum US$ 49) are deducted from the credit balance at the end
of each monthly cycle and the rest is carried forward; top-ups "as low as US$ 50"; FAQ: notices at 50 % and
75 % of the available credit, throttling only if no action follows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from helpers import D, amounts, bill

from sim.errors import InputError
from sim.pricing.account import Account, accounts_from_dict
from sim.pricing.ledger import (
    Cycle,
    FreeCycleState,
    credit_ledger,
    plan_per_cycle,
    switch_cycle,
    switch_point,
    throttled_periods,
)

NOV, DEC, JAN, FEB, MAR = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                           datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC),
                           datetime(2027, 3, 1, tzinfo=UTC))


def end_of(month: datetime, day: int) -> datetime:
    """The end of the month's ``day`` (1-based): the instant the day's accrual is known."""
    return month + timedelta(days=day)


def cycle(start: datetime, end: datetime, steps: dict[int, str], total: str) -> Cycle:
    """A cycle with one instant per day's end; ``steps`` gives the accrued charges from that day on."""
    times, accrued, value = [], [], D(0)
    for day in range(1, (end - start).days + 1):
        value = D(steps.get(day, value))
        times.append(end_of(start, day))
        accrued.append(value)
    return Cycle(start, end, tuple(times), tuple(accrued), D(total))


def account(**doc) -> Account:
    return accounts_from_dict({"mesibo-cloud": doc})["mesibo-cloud"]


# --- accounts -------------------------------------------------------------------------------------------


def test_a_top_up_below_50_dollars_is_an_input_error_naming_the_field():
    with pytest.raises(InputError) as err:
        account(top_up={"when": "notified", "amount": 40})
    assert err.value.field == "accounts.mesibo-cloud.top_up.amount"
    assert "50" in err.value.problem
    assert account(top_up={"when": "notified", "amount": "50"}).top_up.amount == D(50)   # "as low as US$ 50"


@pytest.mark.parametrize("doc, field, words", [
    ({"switch": {"to": "mesibo-cloud", "credit": "49.99"}}, "switch.credit", "50"),
    ({"switch": {"to": "mesibo-cloud"}}, "switch", "credit is required"),
    ({"opening_balance": -1}, "opening_balance", "at least 0"),
    ({"opening_balance": "10.005"}, "opening_balance", "cents"),
    ({"opening_balance": True}, "opening_balance", "expected a number"),
    ({"top_up": {"when": "below", "amount": 50}}, "top_up", "below is required"),
    ({"top_up": {"when": "notified"}}, "top_up", "amount is required"),
    ({"top_up": {"when": "never", "below": 20}}, "top_up", "only read"),
    ({"top_up": {"when": "sometimes", "amount": 50}}, "top_up.when", "never"),
    ({"payment": {"policy": "late"}}, "payment", "late_days"),
    ({"payment": {"policy": "on_time", "late_days": 3}}, "payment", "only read"),
    ({"grace": "a day"}, "grace", "24h"),
    ({"opening_balance": 60, "switch": {"to": "mesibo-cloud", "credit": 50}}, "", "free account holds no credit"),
    ({"top_up": {"when": "never", "amont": 50}}, "top_up.amont", "unknown key"),
])
def test_account_input_errors_are_one_line_and_name_the_field(doc, field, words):
    with pytest.raises(InputError) as err:
        account(**doc)
    assert err.value.field == "accounts.mesibo-cloud" + (f".{field}" if field else "")
    assert words in err.value.problem
    assert "\n" not in str(err.value)


def test_account_defaults_and_grace():
    acc = account()
    assert (acc.opening_balance, acc.top_up.when, acc.switch, acc.payment, acc.grace) == (0, "never", None, None, None)
    assert acc.grace_delta(timedelta(hours=24)) == timedelta(hours=24)          # the plan's grace
    assert account(grace="2d").grace_delta(timedelta(hours=24)) == timedelta(days=2)
    assert account(payment={"policy": "late", "late_days": 5}).payment.late_days == 5
    assert account(switch={"to": "x", "credit": 50}).switch.when == "exceeded"


# --- deduction and carry-forward ------------------------------------------------------------------------


def test_the_minimum_is_deducted_and_the_rest_carried_forward_over_three_cycles():
    # November: 2,230 MAU -> 1,230 beyond the free 1,000 -> $12.30, raised to the $49 minimum.
    nov_bill = bill("mesibo-cloud", {"mau": 2230})
    assert amounts(nov_bill)["mau"] == D("12.30") and nov_bill.total == D("49.00")
    # December: the seed's worked example, $80.90 (above the minimum, so deducted as it is).
    dec_bill = bill("mesibo-cloud-example", {"mau": 100_000, "outbound_bytes": 120_000_000 * 50})
    assert dec_bill.total == D("80.90")
    cycles = [
        cycle(NOV, DEC, {30: "12.30"}, str(nov_bill.total)),
        cycle(DEC, JAN, {10: "20.00", 20: "50.00", 31: "80.90"}, str(dec_bill.total)),
        cycle(JAN, FEB, {31: "60.00"}, "60.00"),
    ]
    led = credit_ledger(cycles, account(opening_balance=100))
    assert [c.opening for c in led] == [D("100"), D("51.00"), D("-29.90")]
    assert [c.deducted for c in led] == [D("49.00"), D("80.90"), D("60.00")]
    assert [c.closing for c in led] == [D("51.00"), D("-29.90"), D("-89.90")]   # negative: owed
    assert all(c.top_ups == () for c in led)
    assert led[0].exhausted_at is None                       # $12.30 of $100: the $49 minimum is only deducted
    assert led[0].notifications == ()                        # at the end, so no 50 % notice in November
    assert led[1].exhausted_at == end_of(DEC, 31)            # 80.90 >= 51 on December 31


def test_thresholds_fire_at_the_first_instant_they_are_reached_and_once_per_level():
    # $100 of credit, no top-ups: 50 % reached exactly on day 10, 75 % exactly on day 20.
    c = cycle(NOV, DEC, {9: "49.99", 10: "50.00", 11: "51.00", 19: "74.99", 20: "75.00", 25: "90"}, "90")
    [led] = credit_ledger([c], account(opening_balance=100))
    assert led.notifications == (
        (D("0.5"), end_of(NOV, 10), D(100), D("50.00")),
        (D("0.75"), end_of(NOV, 20), D(100), D("75.00")),
    )
    assert led.exhausted_at is None and led.throttling == () and led.closing == D("10")


def test_notified_top_ups_happen_at_the_notices_and_re_arm_the_thresholds():
    # opening 100, +50 at each instant a notice fires.
    # day 10: 50/100 = 50 %   -> notice, top-up -> 150 (re-armed, measured from 50)
    # day 20: 75/150 = 50 %   -> notice again at the new level, top-up -> 200 (from 75)
    # day 25: 150/200 = 75 %  -> 50 % and 75 % both, one top-up -> 250 (from 150)
    # day 30: 160/250 = 64 %  -> nothing: 50 % of 250 = 125 was already passed at the top-up
    c = cycle(NOV, DEC, {10: "50", 20: "75", 25: "150", 30: "160"}, "160")
    [led] = credit_ledger([c], account(opening_balance=100, top_up={"when": "notified", "amount": 50}))
    assert led.notifications == (
        (D("0.5"), end_of(NOV, 10), D(100), D(50)),
        (D("0.5"), end_of(NOV, 20), D(150), D(75)),
        (D("0.5"), end_of(NOV, 25), D(200), D(150)),
        (D("0.75"), end_of(NOV, 25), D(200), D(150)),
    )
    assert led.top_ups == (
        (end_of(NOV, 10), D(50), "notified"),
        (end_of(NOV, 20), D(50), "notified"),
        (end_of(NOV, 25), D(50), "notified"),
    )
    assert led.available == D(250) and led.closing == D(90)


def test_a_threshold_already_passed_at_a_top_up_waits_for_the_next_level():
    # day 5: 90/100 crosses both -> top-up -> 150, measured from 90 (60 %: past 50 %);
    # day 6: 100/150 = 66.7 %: 50 % does not fire again; day 7: 113/150 = 75.3 % -> 75 % fires, top-up -> 200.
    c = cycle(NOV, DEC, {5: "90", 6: "100", 7: "113"}, "113")
    [led] = credit_ledger([c], account(opening_balance=100, top_up={"when": "notified", "amount": 50}))
    assert [(n.threshold, n.at) for n in led.notifications] == [
        (D("0.5"), end_of(NOV, 5)), (D("0.75"), end_of(NOV, 5)), (D("0.75"), end_of(NOV, 7))]
    assert [t.at for t in led.top_ups] == [end_of(NOV, 5), end_of(NOV, 7)]
    assert led.closing == D(200) - D(113)


def test_below_policy_tops_up_during_the_cycle_and_at_its_end():
    acc = account(opening_balance=100, top_up={"when": "below", "amount": 50, "below": 30})
    cycles = [
        # remaining 100-60 = 40 (not below 30), then 100-75 = 25 < 30 -> +50 on day 20; closing 150-90 = 60
        cycle(NOV, DEC, {10: "60", 20: "75", 30: "90"}, "90"),
        # remaining 60-12.30 = 47.70 all month; the $49 minimum leaves 11 < 30 -> +50 at December's end
        cycle(DEC, JAN, {31: "12.30"}, "49"),
        # opens with 11, the end-of-December top-up recorded here at January 1; closing 61-49 = 12
        cycle(JAN, FEB, {}, "49"),
    ]
    led = credit_ledger(cycles, acc)
    assert led[0].top_ups == ((end_of(NOV, 20), D(50), "below"),)
    assert [c.closing for c in led] == [D(60), D(11), D(12)]
    assert led[1].top_ups == ()
    assert led[2].opening == D(11)
    assert led[2].top_ups == ((JAN, D(50), "below_at_cycle_end"),)
    assert led[2].available == D(61)
    # the last closing (12 < 30) would top up after the horizon: nothing recorded
    assert all(c.throttling == () for c in led)


def test_one_below_top_up_per_instant_and_a_top_up_in_time_prevents_throttling():
    # day 5: 130 accrued of 100: exhausted (before the top-up); +50 -> remaining 20, still below 30;
    # day 6: +50 again -> remaining 70. The credit was restored at once: no throttling.
    acc = account(opening_balance=100, top_up={"when": "below", "amount": 50, "below": 30})
    [led] = credit_ledger([cycle(NOV, DEC, {5: "130"}, "130")], acc)
    assert led.top_ups == ((end_of(NOV, 5), D(50), "below"), (end_of(NOV, 6), D(50), "below"))
    assert led.exhausted_at == end_of(NOV, 5)
    assert led.throttling == () and led.throttle_due is None
    assert led.closing == D(70)


# --- exhaustion and throttling --------------------------------------------------------------------------


def test_throttled_from_is_the_exhaustion_when_the_grace_has_already_passed():
    # 50 % on day 10, 75 % on day 12; exhausted on day 20 (100 >= 100), 8 days after the last notice.
    c = cycle(NOV, DEC, {10: "50", 12: "80", 20: "100", 30: "130"}, "130")
    [led] = credit_ledger([c], account(opening_balance=100))
    assert [n.at for n in led.notifications] == [end_of(NOV, 10), end_of(NOV, 12)]
    assert led.exhausted_at == end_of(NOV, 20)
    assert led.throttled_from == end_of(NOV, 20)           # max(day 20, day 12 + 24 h)
    assert led.throttling == ((end_of(NOV, 20), None),)    # still throttled at the end
    assert led.closing == D(-30)


def test_throttled_from_waits_the_grace_after_the_last_notice():
    # 50 % on day 10; 75 % and exhaustion together on day 15 (60 -> 120).
    c = cycle(NOV, DEC, {10: "60", 15: "120"}, "120")
    [led] = credit_ledger([c], account(opening_balance=100))
    assert led.exhausted_at == end_of(NOV, 15)
    assert led.throttled_from == end_of(NOV, 15) + timedelta(hours=24)
    [plan_grace] = credit_ledger([c], account(opening_balance=100), grace=timedelta(hours=12))
    assert plan_grace.throttled_from == end_of(NOV, 15) + timedelta(hours=12)
    [own_grace] = credit_ledger([c], account(opening_balance=100, grace="2d"), grace=timedelta(hours=12))
    assert own_grace.throttled_from == end_of(NOV, 17)     # the account's grace wins over the plan's


def test_throttling_persists_into_the_next_cycle_with_a_negative_balance():
    cycles = [cycle(NOV, DEC, {10: "50", 12: "80", 20: "100", 30: "130"}, "130"),
              cycle(DEC, JAN, {1: "5"}, "49"),
              cycle(JAN, FEB, {}, "49")]
    led = credit_ledger(cycles, account(opening_balance=100))
    dec = led[1]
    assert dec.opening == D(-30) and dec.closing == D(-79)
    assert dec.throttled_from == end_of(NOV, 20) and dec.throttle_lifted is None
    # no credit at all: the first accrual is both notices and the exhaustion at once
    assert dec.notifications == ((D("0.5"), end_of(DEC, 1), D(-30), D(5)), (D("0.75"), end_of(DEC, 1), D(-30), D(5)))
    assert dec.exhausted_at == end_of(DEC, 1)
    # January: nothing accrues (no exhaustion of its own) but the throttling from November goes on
    assert led[2].exhausted_at is None and led[2].throttled_from == end_of(NOV, 20)
    assert led[2].closing == D(-128)
    assert throttled_periods(led) == [(end_of(NOV, 20), None)]


def test_exhaustion_at_the_end_of_a_cycle_throttles_in_the_next_one():
    # $20 of credit, $20 accrued on November 30: both notices and the exhaustion at December 1 00:00, so
    # throttling is due 24 h later, in December; the $49 minimum leaves -29.
    cycles = [cycle(NOV, DEC, {30: "20"}, "49"), cycle(DEC, JAN, {}, "49")]
    led = credit_ledger(cycles, account(opening_balance=20))
    assert led[0].exhausted_at == DEC and [n.at for n in led[0].notifications] == [DEC, DEC]
    assert led[0].throttling == () and led[0].throttle_due == DEC + timedelta(hours=24)
    assert led[0].closing == D(-29)
    assert led[1].throttled_from == DEC + timedelta(hours=24)
    # below 0: no top-up while the remaining credit is exactly 0, but the closing -29 is below it, and the
    # top-up at November's end (recorded on December 1) restores the credit before the throttling is due
    below = credit_ledger(cycles, account(opening_balance=20, top_up={"when": "below", "amount": 50, "below": 0}))
    assert below[0].top_ups == () and below[0].throttle_due == DEC + timedelta(hours=24)
    assert below[1].top_ups == ((DEC, D(50), "below_at_cycle_end"),)
    assert below[1].opening == D(-29) and below[1].available == D(21)
    assert all(c.throttling == () for c in below) and below[1].throttle_due is None


def test_a_top_up_at_the_instant_throttling_is_due_is_in_time():
    # exhausted (and both notices) at November 30 00:00: due 24 h later, exactly at the cycle's end
    cycles = [cycle(NOV, DEC, {29: "20"}, "49"), cycle(DEC, JAN, {}, "49")]
    never = credit_ledger(cycles, account(opening_balance=20))
    assert never[0].throttle_due == DEC and never[0].throttling == ()
    assert never[1].throttled_from == DEC
    below = credit_ledger(cycles, account(opening_balance=20, top_up={"when": "below", "amount": 50, "below": 0}))
    assert below[1].top_ups == ((DEC, D(50), "below_at_cycle_end"),)
    assert all(c.throttling == () for c in below)


def test_a_top_up_that_restores_positive_credit_lifts_throttling_and_a_smaller_one_does_not():
    acc = account(top_up={"when": "notified", "amount": 50})
    # enters throttled with no credit; day 3: 10 accrued of 0 -> both notices -> +50 -> 40 left: lifted
    [lifted] = credit_ledger([cycle(NOV, DEC, {3: "10"}, "49")], acc, throttled_at_start=True)
    assert lifted.top_ups == ((end_of(NOV, 3), D(50), "notified"),)
    assert lifted.throttling == ((NOV, end_of(NOV, 3)),)
    assert lifted.closing == D(1)
    # day 3: 60 accrued of 0 -> +50 leaves -10: still exhausted, still throttled
    [kept] = credit_ledger([cycle(NOV, DEC, {3: "60"}, "60")], acc, throttled_at_start=True)
    assert kept.throttling == ((NOV, None),) and kept.closing == D(-10)


# --- the switch -----------------------------------------------------------------------------------------


def test_the_switch_is_irreversible_and_the_minimum_applies_after_it():
    free = [FreeCycleState(first_notification=datetime(2026, 11, 20, tzinfo=UTC)),
            FreeCycleState(first_notification=datetime(2026, 12, 5, tzinfo=UTC),
                           first_exceeded=datetime(2026, 12, 12, 14, tzinfo=UTC)),
            FreeCycleState(first_exceeded=datetime(2027, 1, 3, tzinfo=UTC)),
            FreeCycleState()]                                   # February: back under the free limits
    sw = account(switch={"to": "mesibo-cloud", "when": "exceeded", "credit": 100}).switch
    point = switch_point(free, sw)
    assert (point.cycle, point.at, point.to, point.credit) == (1, datetime(2026, 12, 12, 14, tzinfo=UTC),
                                                              "mesibo-cloud", D(100))
    assert switch_cycle(free, sw) == 1
    plans = plan_per_cycle(4, point.cycle, "mesibo-free", "mesibo-cloud")
    assert plans == ["mesibo-free", "mesibo-cloud", "mesibo-cloud", "mesibo-cloud"]
    feb_bill = bill(plans[3], {"mau": 800})                     # under the free 1,000 MAU, yet PAYG:
    assert feb_bill.total == D("49.00") and amounts(feb_bill)["minimum_commitment"] == D("49.00")
    acc = account(switch={"to": "mesibo-cloud", "credit": 100})
    led = credit_ledger([cycle(DEC, JAN, {13: "5", 31: "60"}, "60"),
                         cycle(JAN, FEB, {31: "20"}, "49"),
                         cycle(FEB, MAR, {}, str(feb_bill.total))], acc, switched_at=point.at)
    assert led[0].opening == D(0)
    assert led[0].top_ups == ((point.at, D(100), "switch"),)
    assert [c.closing for c in led] == [D(40), D(-9), D(-58)]
    assert led[0].exhausted_at is None                          # the 100 credit came before the first charge
    assert led[2].exhausted_at is None and led[2].notifications == ()


def test_instants_before_the_switch_are_not_checked_against_the_credit():
    # $30 accrued by December 5, before the switch on the 12th at 14:00 with $50: the 50 % notice is sent at
    # the first instant after the switch (December 13 00:00), not before; 75 % (37.50) on December 31.
    acc = account(switch={"to": "mesibo-cloud", "credit": 50})
    at = datetime(2026, 12, 12, 14, tzinfo=UTC)
    c = cycle(DEC, JAN, {5: "30", 31: "40"}, "49")
    [led] = credit_ledger([c], acc, switched_at=at)
    assert led.notifications == ((D("0.5"), end_of(DEC, 12), D(50), D(30)),
                                 (D("0.75"), end_of(DEC, 31), D(50), D(40)))
    assert led.exhausted_at is None and led.closing == D(1)
    [never_switched] = credit_ledger([c], account())
    assert never_switched.exhausted_at == end_of(DEC, 5)       # the same series with no credit


def test_switch_triggers_and_never():
    free = [FreeCycleState(), FreeCycleState(first_notification=DEC + timedelta(days=3)),
            FreeCycleState(first_exceeded=JAN + timedelta(days=9))]
    notified = account(switch={"to": "mesibo-cloud", "when": "notified", "credit": 50}).switch
    assert switch_cycle(free, notified) == 1
    assert switch_point(free, notified).at == DEC + timedelta(days=3)
    # a cycle with an exceeding but no notification: "notified" switches at the exceeding
    assert switch_point(free[2:], notified).at == JAN + timedelta(days=9)
    exceeded = account(switch={"to": "mesibo-cloud", "credit": 50}).switch
    assert switch_cycle(free, exceeded) == 2
    never = account(switch={"to": "mesibo-cloud", "when": "never"}).switch
    assert switch_cycle(free, never) is None and switch_cycle(free, None) is None
    assert switch_cycle([FreeCycleState()] * 3, exceeded) is None
    assert plan_per_cycle(3, None, "mesibo-free", "mesibo-cloud") == ["mesibo-free"] * 3
    with pytest.raises(ValueError):
        plan_per_cycle(3, 3, "mesibo-free", "mesibo-cloud")


# --- shapes ---------------------------------------------------------------------------------------------


def test_ledger_to_dict_is_plain_json():
    led = credit_ledger([cycle(NOV, DEC, {10: "60", 15: "120"}, "120")], account(opening_balance="100.00"))
    doc = json.loads(json.dumps(led[0].to_dict()))
    assert doc["opening"] == "100.00" and doc["closing"] == "-20.00" and doc["deducted"] == "120"
    assert doc["available"] == "100.00"
    assert doc["notifications"][0] == {"threshold": "0.5", "at": "2026-11-11T00:00:00+00:00",
                                       "available": "100.00", "accrued": "60"}
    assert doc["throttled_from"] == "2026-11-17T00:00:00+00:00" and doc["throttle_lifted"] is None


def test_bad_cycles_are_refused():
    with pytest.raises(ValueError, match="ascending"):
        Cycle(NOV, DEC, (end_of(NOV, 2), end_of(NOV, 1)), (D(0), D(0)), D(49))
    with pytest.raises(ValueError, match="Decimal"):
        Cycle(NOV, DEC, (end_of(NOV, 1),), (0.5,), D(49))
    with pytest.raises(ValueError, match="consecutive"):
        credit_ledger([cycle(NOV, DEC, {}, "49"), cycle(JAN, FEB, {}, "49")], account())
