"""An account over the months: what it costs (the ledger) and what it does to the world while it runs.

Two views of the same rules (sim/pricing/ledger.py, sim/pricing/account.py):

* **during the run** (:class:`AccountWatch`, the :class:`sim.months.enforcer.Monthly` ``on_day`` hook): at the
  end of every simulated day it prices the month so far (what the platform knows then) and plays the ledger
  forward. When credits ran out and nothing was done, the app is throttled from then on; when a free
  account's trigger happens (a free limit notified or exceeded), the world switches to the PAYG plan's limits
  at that midnight, for good;
* **after the run** (:func:`settle`): the same ledger on the final monthly usages, day by day: the figures
  reported. The switch is the one the world made (a decision cannot be taken back after the fact).

Accrued charges at an instant are the bill of the month so far, without the minimum (a true-up is charged at
the cycle's end, not accrued): the platform's "usage exceeds 50 % of available credits".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from sim.pricing.account import Account
from sim.pricing.ledger import Cycle, CycleLedger, SwitchPoint, credit_ledger
from sim.pricing.plan import Plan
from sim.pricing.pricing import price
from sim.pricing.usage import usage_from_dict

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def plan_grace(plan: Plan) -> timedelta:
    """The plan's throttling grace (24 h when it states none)."""
    from sim.pricing.period import Interval

    if plan.throttling is None:
        return timedelta(hours=24)
    return timedelta(seconds=Interval.parse(plan.throttling.grace).seconds)


def month_to_date(meters: dict[str, np.ndarray], start: datetime, minutes: int) -> dict:
    """A usage document of per-minute meters over the month's first ``minutes`` (what is known at that time)."""
    return {"period": {"start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat()},
            "meters": {k: {"interval": "1min", "values": np.asarray(v[:minutes], dtype=np.float64).tolist()}
                       for k, v in meters.items()}}


def truncated(usage: dict, days: int) -> dict:
    """A month's usage document over its first ``days`` days (series of whole days or minutes, cut)."""
    from sim.months.split import month_usages

    p = usage["period"]
    start = datetime.fromisoformat(p["start"])
    end = start + timedelta(days=days)
    if end >= datetime.fromisoformat(p["end"]):
        return usage
    return month_usages({"period": p, "meters": usage["meters"]}, [start, end], None)[0]


def accrued(plan: Plan, usage: dict) -> Decimal:
    """Charges accrued on ``usage``: its bill under ``plan`` without the minimum commitment."""
    return price(usage_from_dict(usage, f"<month to date under {plan.name}>"), plan, apply_minimum=False).total


@dataclass
class AccountWatch:
    """The account's decisions during the run (the ``on_day`` hook of :class:`sim.months.enforcer.Monthly`)."""

    plan: Plan                      # the plan the account starts on
    account: Account
    bounds: list[datetime]
    switch_to: Plan | None = None   # account.switch's plan
    switch: SwitchPoint | None = None
    # per month: day-end instants, accrued charges, and the month's total (with the minimum) once it is over
    times: list[list[datetime]] = field(default_factory=list)
    accruals: list[list[Decimal]] = field(default_factory=list)
    totals: list[Decimal | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.bounds) - 1
        self.times, self.accruals, self.totals = [[] for _ in range(n)], [[] for _ in range(n)], [None] * n

    @property
    def _absolute(self) -> set[str]:
        """Metrics of the plan's limits with an absolute maximum (watched day by day, as the platform does)."""
        return {lim.metric for lim in self.plan.limits if lim.max is not None}

    def in_force(self, m: int) -> Plan:
        """The plan month ``m`` is billed under: the switched-to plan from the switch's month on."""
        return self.switch_to if self.switch is not None and m >= self.switch.cycle else self.plan

    def payg(self, m: int) -> bool:
        """Month ``m`` runs on credits (a PAYG account, or a free one from its switch)."""
        return self.account.switch is None or (self.switch is not None and m >= self.switch.cycle)

    def on_day(self, monthly, m: int, day_end_ms: int, usage_so_far) -> None:
        start = self.bounds[m]
        now = self.bounds[0] + timedelta(milliseconds=day_end_ms)
        minutes = int((now - start).total_seconds() // 60)
        doc = month_to_date(usage_so_far(), start, minutes)
        if not self.payg(m):
            self._watch_free(monthly, m, doc, now)
            if not self.payg(m):
                return
        plan = self.in_force(m)
        self.times[m].append(now)
        self.accruals[m].append(accrued(plan, doc))
        if now >= self.bounds[m + 1]:
            self.totals[m] = price(usage_from_dict(doc, "<month>"), plan).total
        ledger = self.ledger(upto=m)
        if not ledger:
            return
        last = ledger[-1]
        periods = [p for c in ledger for p in c.throttling]
        due = last.throttle_due
        active = next((a for a, b in reversed(periods) if b is None or b > now), None)
        t = active or (due if due is not None and due < now + timedelta(days=1) else None)
        if t is not None and monthly.throttled_from_ms is None:
            monthly.throttle(max(0, int((t - self.bounds[0]).total_seconds() * 1000)))
        elif t is None and monthly.throttled_from_ms is not None:
            monthly.throttle(None)  # a top-up lifted it

    def _watch_free(self, monthly, m: int, doc: dict, now: datetime) -> None:
        """A free month: has the switch's trigger happened? Then switch the world at this midnight."""
        sw = self.account.switch
        if sw is None or sw.when == "never":
            return
        bill = price(usage_from_dict(doc, "<month to date>"), self.plan)
        # a limit relative to another metric (peak CCU <= 10 % of MAU) is judged on the whole month: early in a
        # month, MAU so far is small beside any peak, and that artefact must not switch the account
        over = self._absolute if now < self.bounds[m + 1] else None
        violations = [v for v in bill.violations if over is None or v.metric in over]
        exceeded = min((v.at for v in violations if v.at is not None), default=None)
        if violations and exceeded is None:
            exceeded = now
        noted = min((n.at for n in bill.notifications if n.at is not None), default=None)
        at = exceeded if sw.when == "exceeded" else (noted or exceeded)
        if at is None:
            return
        self.switch = SwitchPoint(cycle=m, at=at, to=sw.to, credit=sw.credit or Decimal(0), trigger=sw.when)
        monthly.switch(int((now - self.bounds[0]).total_seconds() * 1000))
        # the month so far is billed on PAYG from the switch: accrue it from the month's start
        self.times[m], self.accruals[m] = [], []

    def ledger(self, upto: int | None = None) -> list[CycleLedger]:
        """The credit ledger over the PAYG months so far (up to month ``upto``), from what the watch recorded."""
        first = 0 if self.account.switch is None else (None if self.switch is None else self.switch.cycle)
        if first is None:
            return []
        last = len(self.bounds) - 2 if upto is None else upto
        cycles = []
        for k in range(first, last + 1):
            times, acc = self.times[k], self.accruals[k]
            total = self.totals[k] if self.totals[k] is not None else (acc[-1] if acc else Decimal(0))
            cycles.append(Cycle(self.bounds[k], self.bounds[k + 1], tuple(times), tuple(acc), total))
        return credit_ledger(cycles, self.account, grace=plan_grace(self.in_force(first)),
                             switched_at=None if self.switch is None else self.switch.at)


def settle(watch: AccountWatch, months: list[dict]) -> list[CycleLedger]:
    """The ledger on the final monthly usages: each day's accrued charges, each month's bill as the deduction."""
    first = 0 if watch.account.switch is None else (None if watch.switch is None else watch.switch.cycle)
    if first is None:
        return []
    cycles = []
    for k in range(first, len(months)):
        plan = watch.in_force(k)
        usage = months[k]
        start, end = watch.bounds[k], watch.bounds[k + 1]
        days = round((end - start).total_seconds() / 86_400)
        times = tuple(start + timedelta(days=i + 1) for i in range(days))
        acc = tuple(accrued(plan, truncated(usage, i + 1)) for i in range(days))
        total = price(usage_from_dict(usage, "<month>"), plan).total
        cycles.append(Cycle(start, end, times, acc, total))
    return credit_ledger(cycles, watch.account, grace=plan_grace(watch.in_force(first)),
                         switched_at=None if watch.switch is None else watch.switch.at)
