"""The PAYG credit ledger over billing cycles, and the Free -> PAYG switch. Pure: no SimPy, no I/O.

A bill says what a month costs; the ledger says what that does to a prepaid balance, and so to the
application: when the customer is told, when they top up, when the credit runs out and when the
platform throttles. The messaging seed (``../shared/seeds/000_13281a036d458080.txt``) gives the rules:

* "Your usage charges (minimum US$ 49) will be deducted from the credit balance at the end of a monthly
  billing cycle and the remaining credit will be carried forward for the next billing period." The
  bill's total (already raised to the $49 minimum by its true-up line) is deducted at the cycle's end;
  the balance may go negative, which is money owed.
* FAQ: "We will send you an email and also inform your backend using webhook when your app usage
  exceeds ... 50% and 75% of available credits in PAYG plan. We will throttle or temporarily disable
  your app only if you do not take any action after these notifications."
* "You can switch to PAYG plan anytime by adding the credit balance ... you cannot switch back to a Free
  plan once switched to PAYG plan", and "you will continue to enjoy your free quota even in PAYG plan".

Readings where the seed is silent (each is tested in ``tests/test_ledger.py``):

* *available credits* in a cycle = the balance at its start + the top-ups so far in it; the charges
  set against them are the month-to-date bill *without* the minimum (the minimum only exists at the end);
* a threshold fires when accrued / available crosses it (previous < t <= current), at the first instant
  it does (billing conventions); with no credit at all (available <= 0) any accrual crosses every
  threshold at once. Each fires once per *level* of available credit: a top-up re-arms them, measured
  from the accrual at the top-up (a threshold the top-up did not bring usage back under does not fire
  again until another top-up);
* the credit is *exhausted* at the first instant accrued > 0 and accrued >= available (before that
  instant's top-up). Throttling then starts at max(exhausted, last credit notification of the cycle +
  grace) -- or exhausted + grace when no notification fired -- unless a top-up that leaves positive
  remaining credit (available - accrued > 0) comes first (at or before that instant). Once started it
  persists, across cycles, until such a top-up, which lifts it; a top-up that leaves the credit still
  exhausted is not the action the FAQ waits for;
* one top-up per instant at most ("notified": one at an instant where any notification fired; "below":
  one at an instant where the remaining credit is below ``below``);
* the "below" check at a cycle's end (closing balance < ``below``) makes a top-up at that instant; it is
  recorded as the first top-up of the *next* cycle (``at`` = its start = this end, reason
  ``below_at_cycle_end``), so that ``closing`` stays "after the deduction" and each cycle's
  opening = the previous closing; after the last cycle none is recorded (outside the horizon);
* a switch is a top-up of ``switch.credit`` at the switch instant (reason ``switch``); the whole cycle
  in which it happens is billed under PAYG (the free quota continues there, so charges accrued before the
  switch are the usage beyond the free quota), and the ledger counts them against the credit from the
  switch instant on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sim.pricing.account import Account, Switch

ZERO = Decimal(0)
THRESHOLDS = (Decimal("0.5"), Decimal("0.75"))


@dataclass(frozen=True)
class Cycle:
    """One monthly billing cycle as the ledger sees it."""

    start: datetime
    end: datetime
    times: tuple[datetime, ...] = ()     # ascending instants within (start, end], e.g. each day's end
    accrued: tuple[Decimal, ...] = ()    # charges accrued by each instant (month-to-date bill WITHOUT the minimum)
    total: Decimal = ZERO                # the cycle's final bill total (WITH the minimum): deducted at `end`

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(self.times))
        object.__setattr__(self, "accrued", tuple(self.accrued))
        if not self.start < self.end:
            raise ValueError(f"cycle start {self.start} is not before its end {self.end}")
        if len(self.times) != len(self.accrued):
            raise ValueError(f"{len(self.times)} times but {len(self.accrued)} accrued amounts")
        previous = self.start
        for t in self.times:
            if not previous < t <= self.end:
                raise ValueError(f"instant {t} is not ascending within ({self.start}, {self.end}]")
            previous = t
        for amount in (*self.accrued, self.total):
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                raise ValueError(f"money must be a finite non-negative Decimal, got {amount!r}")


class TopUpMade(NamedTuple):
    at: datetime
    amount: Decimal
    reason: str          # switch | notified | below | below_at_cycle_end


class CreditNotice(NamedTuple):
    threshold: Decimal
    at: datetime
    available: Decimal   # the available credit the threshold is a share of
    accrued: Decimal     # the charges accrued when it fired


@dataclass(frozen=True)
class CycleLedger:
    """One cycle of the ledger. ``closing`` = opening + top-ups - deducted, and may be negative: money owed,
    carried forward like a credit (the next cycle opens with it).

    ``throttling``: the periods of throttling that overlap this cycle, as (from, until); ``from`` may lie in an
    earlier cycle (throttling persists), ``until`` is None while it continues past this cycle's end.
    ``throttle_due``: at the end, the credit is exhausted and throttling will start at this instant unless a
    top-up comes first (it can lie after the end)."""

    start: datetime
    end: datetime
    opening: Decimal
    top_ups: tuple[TopUpMade, ...]
    notifications: tuple[CreditNotice, ...]
    exhausted_at: datetime | None
    throttling: tuple[tuple[datetime, datetime | None], ...]
    throttle_due: datetime | None
    deducted: Decimal
    closing: Decimal

    @property
    def available(self) -> Decimal:
        """Opening balance + every top-up of the cycle: the credit the cycle's charges were set against."""
        return self.opening + sum((t.amount for t in self.top_ups), ZERO)

    @property
    def throttled_from(self) -> datetime | None:
        """When the (first) throttling overlapping this cycle began, or None."""
        return self.throttling[0][0] if self.throttling else None

    @property
    def throttle_lifted(self) -> datetime | None:
        """When that throttling was lifted by a top-up inside this cycle (None: never, or not in this cycle)."""
        return self.throttling[0][1] if self.throttling else None

    def to_dict(self) -> dict:
        """Plain JSON: money as strings of the exact Decimal, times ISO 8601."""
        iso = _iso
        return {
            "start": iso(self.start), "end": iso(self.end),
            "opening": str(self.opening),
            "top_ups": [{"at": iso(t.at), "amount": str(t.amount), "reason": t.reason} for t in self.top_ups],
            "available": str(self.available),
            "notifications": [{"threshold": str(n.threshold), "at": iso(n.at), "available": str(n.available),
                               "accrued": str(n.accrued)} for n in self.notifications],
            "exhausted_at": iso(self.exhausted_at),
            "throttled_from": iso(self.throttled_from),
            "throttle_lifted": iso(self.throttle_lifted),
            "throttling": [{"from": iso(a), "until": iso(b)} for a, b in self.throttling],
            "throttle_due": iso(self.throttle_due),
            "deducted": str(self.deducted),
            "closing": str(self.closing),
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass
class _State:
    """What carries across instants and cycles."""

    balance: Decimal
    grace: timedelta
    thresholds: list[Decimal]
    throttled_since: datetime | None = None
    deadline: datetime | None = None          # exhausted, not yet throttled: throttling starts here
    # per cycle
    level: Decimal = ZERO                     # available credit
    prev_accrued: Decimal = ZERO              # accrual the next crossing is measured from
    armed: list[Decimal] = field(default_factory=list)
    last_note: datetime | None = None
    closed: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    top_ups: list[TopUpMade] = field(default_factory=list)

    def new_cycle(self) -> None:
        self.level, self.prev_accrued, self.armed, self.last_note = self.balance, ZERO, list(self.thresholds), None
        self.closed, self.top_ups = [], []

    def top_up(self, at: datetime, amount: Decimal, reason: str, accrued: Decimal) -> None:
        """Add credit: a new level of available credit, so the thresholds are re-armed (measured from
        ``accrued``); positive remaining credit ends an exhaustion and lifts throttling."""
        self.top_ups.append(TopUpMade(at, amount, reason))
        self.level += amount
        self.armed, self.prev_accrued = list(self.thresholds), accrued
        if self.level - accrued > 0:
            self.deadline = None
            if self.throttled_since is not None:
                self.closed.append((self.throttled_since, at))
                self.throttled_since = None

    def due(self, now: datetime, inclusive: bool) -> None:
        """Throttling starts if its instant has come (strictly before ``now``, or also at ``now``)."""
        d = self.deadline
        if d is not None and (d < now or (inclusive and d <= now)):
            self.throttled_since, self.deadline = d, None


def credit_ledger(cycles: Sequence[Cycle], account: Account, thresholds: Sequence[Decimal] = THRESHOLDS,
                  grace: timedelta = timedelta(hours=24), throttled_at_start: bool = False,
                  switched_at: datetime | None = None) -> list[CycleLedger]:
    """Play ``account`` (balance, top-up policy) out over consecutive billing ``cycles``.

    ``grace``: the plan's throttling grace, used unless ``account.grace`` is set. ``throttled_at_start``: the
    account enters the first cycle already throttled (lifted by a top-up leaving positive credit).
    ``switched_at``: the account switched from Free during the first cycle (:func:`switch_point`):
    ``account.switch.credit`` is added then, and instants before it are not checked against the credit.
    """
    if not cycles:
        return []
    for a, b in zip(cycles, cycles[1:], strict=False):
        if a.end != b.start:
            raise ValueError(f"billing cycles must be consecutive: one ends {a.end}, the next starts {b.start}")
    ths = sorted(Decimal(str(t)) for t in thresholds)
    if any(not t.is_finite() or t <= 0 for t in ths):
        raise ValueError(f"thresholds must be positive shares of the available credit, got {list(thresholds)}")
    switch_credit = ZERO
    if switched_at is not None:
        if account.switch is None or account.switch.credit is None:
            raise ValueError("switched_at needs an account with a switch and its credit")
        if not cycles[0].start <= switched_at <= cycles[0].end:
            raise ValueError(f"switched_at {switched_at} is not within the first cycle")
        switch_credit = account.switch.credit
    policy = account.top_up
    st = _State(balance=account.opening_balance, grace=account.grace_delta(grace), thresholds=ths)
    if throttled_at_start:
        st.throttled_since = cycles[0].start
    out: list[CycleLedger] = []
    end_top_up: Decimal | None = None

    for k, cycle in enumerate(cycles):
        last = k == len(cycles) - 1
        opening = st.balance
        st.new_cycle()
        notes: list[CreditNotice] = []
        exhausted_at: datetime | None = None

        if end_top_up is not None:                                 # the previous cycle's "below" at its end
            st.top_up(cycle.start, end_top_up, "below_at_cycle_end", ZERO)
            end_top_up = None
        st.due(cycle.start, inclusive=True)
        pending_switch = k == 0 and switched_at is not None

        for t, accrued in zip(cycle.times, cycle.accrued, strict=True):
            if pending_switch:
                if t < switched_at:
                    continue                                       # still on Free: its own notices apply
                st.due(switched_at, inclusive=False)
                st.top_up(switched_at, switch_credit, "switch", ZERO)
                pending_switch = False
            st.due(t, inclusive=False)
            fired = _crossed(st.armed, st.prev_accrued, accrued, st.level)
            for th in fired:
                st.armed.remove(th)
                notes.append(CreditNotice(th, t, st.level, accrued))
                st.last_note = t
            if accrued > 0 and accrued >= st.level:
                exhausted_at = exhausted_at or t
                if st.throttled_since is None and st.deadline is None:
                    st.deadline = max(t, (st.last_note or t) + st.grace)
            made = None
            if policy.when == "notified" and fired:
                made = "notified"
            elif policy.when == "below" and st.level - accrued < policy.below:
                made = "below"
            if made:
                st.top_up(t, policy.amount, made, accrued)
            else:
                st.prev_accrued = accrued
            st.due(t, inclusive=t < cycle.end or last)   # at the end, a "below" top-up may still come

        if pending_switch:                                         # switched after the last instant
            st.top_up(switched_at, switch_credit, "switch", ZERO)
        st.due(cycle.end, inclusive=last)
        closing = st.level - cycle.total
        st.balance = closing
        if not last and policy.when == "below" and closing < policy.below:
            end_top_up = policy.amount
        throttling = list(st.closed)
        if st.throttled_since is not None:
            throttling.append((st.throttled_since, None))
        out.append(CycleLedger(
            start=cycle.start, end=cycle.end, opening=opening, top_ups=tuple(st.top_ups), notifications=tuple(notes),
            exhausted_at=exhausted_at, throttling=tuple(throttling), throttle_due=st.deadline,
            deducted=cycle.total, closing=closing,
        ))
    return out


def _crossed(armed: list[Decimal], previous: Decimal, accrued: Decimal, available: Decimal) -> list[Decimal]:
    """The armed thresholds that accrued / available crosses going from ``previous`` to ``accrued``
    (previous < t <= current, compared as products so nothing is rounded). No credit: any accrual crosses all."""
    if available <= 0:
        return list(armed) if previous <= 0 < accrued else []
    return [t for t in armed if previous < t * available <= accrued]


def throttled_periods(ledgers: Sequence[CycleLedger]) -> list[tuple[datetime, datetime | None]]:
    """Every period of throttling over the ledgers, once each (a period spanning cycles is listed in each)."""
    seen: dict[datetime, datetime | None] = {}
    for cycle in ledgers:
        for since, until in cycle.throttling:
            if seen.get(since) is None:
                seen[since] = until
    return sorted(seen.items())


# --- the switch -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeCycleState:
    """What the world saw of a free plan's limits in one billing cycle."""

    first_notification: datetime | None = None   # the first 50 % / 75 % free-limit notification
    first_exceeded: datetime | None = None       # the first instant a free limit was exceeded


@dataclass(frozen=True)
class SwitchPoint:
    """Where a free account moves to PAYG: the first cycle billed under PAYG, and the instant (enforcement
    switches then; the credit is added then)."""

    cycle: int
    at: datetime
    to: str
    credit: Decimal
    trigger: str     # notified | exceeded


def switch_point(free_cycles: Sequence[FreeCycleState], switch: Switch | None) -> SwitchPoint | None:
    """The first cycle whose trigger happens, with its instant; None when the account never switches.

    ``notified``: the cycle's first free-limit notification (or, in a cycle without any, its first
    exceeding: a plan without notices still shows the customer the limit); ``exceeded``: the first exceeding.
    That whole cycle is billed under PAYG: "you will continue to enjoy your free quota even in PAYG plan",
    so PAYG charges only the usage beyond the free quota, and the $49 minimum applies from that cycle."""
    if switch is None or switch.when == "never":
        return None
    for i, state in enumerate(free_cycles):
        at = state.first_exceeded if switch.when == "exceeded" else (state.first_notification or state.first_exceeded)
        if at is not None:
            return SwitchPoint(cycle=i, at=at, to=switch.to, credit=switch.credit or ZERO, trigger=switch.when)
    return None


def switch_cycle(free_cycles: Sequence[FreeCycleState], switch: Switch | None) -> int | None:
    """The index of the first cycle billed under PAYG, or None (see :func:`switch_point`)."""
    point = switch_point(free_cycles, switch)
    return None if point is None else point.cycle


def plan_per_cycle(n: int, switch_index: int | None, free_name: str, payg_name: str) -> list[str]:
    """The plan each of ``n`` cycles is billed under. Irreversible: "you cannot switch back to a Free plan
    once switched to PAYG plan" -- every cycle from the switch on is PAYG, even one whose usage is back
    under the free limits (it then pays the $49 minimum)."""
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    if switch_index is None:
        return [free_name] * n
    if not 0 <= switch_index < n:
        raise ValueError(f"switch index {switch_index} is not a cycle of 0..{n - 1}")
    return [free_name] * switch_index + [payg_name] * (n - switch_index)
