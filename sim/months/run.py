"""A multi-month scenario under each of its plans, month by month.

The pipeline is the one-period one, per month: the world (one continuous run per plan) -> one usage per month
(sim/months/split.py) -> one bill per month under the plan in force that month -> the account's ledger
(sim/months/accounts.py) and, for invoiced plans, the invoice timeline (sim/pricing/invoices.py).

Each plan gets its own run with its runtime limits renewed each month (:class:`sim.months.enforcer.Monthly`)
and its account acting on the world (credits running out, the Free -> PAYG switch, an unpaid invoice's
downgrade). A plan with nothing that can act on the world reuses the unrestricted run (same seed: identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sim.pricing.bill import Bill
from sim.pricing.ledger import CycleLedger
from sim.simulate import RunResult


@dataclass
class PlanMonths:
    """One plan's months: what was billed, what the account did, and what the limits did."""

    plan: str
    result: RunResult
    in_force: list[str]                      # the plan each month is billed under (a switch changes it)
    bills: list[Bill]
    own_run: bool
    ledger: list[CycleLedger] = field(default_factory=list)   # PAYG months (from the switch, for a free account)
    switch: Any = None                       # sim.pricing.ledger.SwitchPoint
    timeline: Any = None                     # sim.pricing.invoices.Timeline (invoiced plans with a payment policy)
    enforcement: list[dict] = field(default_factory=list)     # per month
    first_exceeded: dict[str, int] = field(default_factory=dict)  # free limit -> first month it is exceeded

    @property
    def total(self) -> Decimal:
        """The run's cost under this plan: every month's bill."""
        return sum((b.total for b in self.bills), Decimal("0.00"))


@dataclass
class MonthsRun:
    base: RunResult               # the unrestricted run (usage.json)
    bounds: list[datetime]        # month starts and the end
    plans: list[PlanMonths]

    @property
    def ok(self) -> bool:
        return self.base.ok and all(p.result.ok for p in self.plans)

    @property
    def error(self) -> str | None:
        return next((r.error for r in [self.base] + [p.result for p in self.plans] if not r.ok), None)


def run_months(sc, plans: list, *, seed: int | None = None, progress: bool = True) -> MonthsRun:
    """Simulate ``sc`` (``simulation.months`` set) under each plan, bill it month by month, settle its account."""
    from sim.months.accounts import AccountWatch, settle
    from sim.months.enforcer import Monthly
    from sim.pricing.pricing import price
    from sim.pricing.usage import usage_from_dict
    from sim.simulate import simulate
    from sim.world.clock import month_bounds

    bounds = month_bounds(sc.simulation.start, sc.simulation.months, sc.simulation.tz)
    switch_plans = switch_targets(sc, plans)  # bad input ends here, before anything is simulated
    base = simulate(sc, seed=seed, progress=progress)
    out = MonthsRun(base, bounds, [])
    if not base.ok:
        return out
    for plan in plans:
        account = account_for(sc, plan)
        switch_to = switch_plans.get(plan.name)
        # prepaid credits (the messaging seed) unless the account is invoiced (the IoT seed's `payment`)
        watch = AccountWatch(plan, account, bounds, switch_to) if account is not None and account.payment is None \
            else None
        timeline, iot = _iot_limits(sc, plan, account, bounds)
        monthly = Monthly(_factory(sc, plan, switch_to), bounds, watch.on_day if watch else None, plan.name)
        if _acts(monthly, iot, watch):
            result = simulate(sc, seed=seed, progress=progress, enforcer=monthly, iot_enforcer=iot)
            own = True
        else:
            result, own = base, False
        pm = PlanMonths(plan.name, result, [], [], own, timeline=timeline)
        out.plans.append(pm)
        if not result.ok:
            return out
        pm.switch = watch.switch if watch is not None else None
        for m, usage in enumerate(result.months):
            billed = watch.in_force(m) if watch is not None else plan
            pm.in_force.append(billed.name)
            pm.bills.append(price(usage_from_dict(usage, f"<month {m + 1} under {billed.name}>"), billed))
            pm.enforcement.append(usage.get("enforcement") or {})
        if watch is not None:
            pm.ledger = settle(watch, result.months)
        if plan.limits:  # when the app outgrows each free limit (on the unrestricted usage: the app's own growth)
            for m, usage in enumerate(base.months):
                bill = price(usage_from_dict(usage, f"<month {m + 1}>"), plan)
                for v in bill.violations:
                    pm.first_exceeded.setdefault(v.metric, m)
    return out


def switch_targets(sc, plans: list) -> dict:
    """Each plan's switch-to plan (``accounts.<plan>.switch.to``), loaded: an unknown one is an input error naming
    the field, raised before anything is simulated."""
    from sim.errors import InputError
    from sim.pricing.plan import load_plan

    out = {}
    for plan in plans:
        account = account_for(sc, plan)
        if account is None or account.switch is None:
            continue
        key = next(k for k, a in sc.accounts.items() if a is account)
        try:
            out[plan.name] = load_plan(account.switch.to)
        except InputError as exc:
            raise InputError(None, f"accounts.{key}.switch.to", f"{account.switch.to!r}: {exc.problem}") from None
    return out


def account_for(sc, plan):
    """The scenario's account for ``plan``: keyed by the plan's name, or by the plan file the scenario lists."""
    from pathlib import Path

    for key, account in sc.accounts.items():
        if key == plan.name or (plan.path and Path(key).resolve() == Path(plan.path).resolve()):
            return account
    return None


def _factory(sc, plan, switch_to):
    """Month enforcers: the plan's runtime limits (the switched-to plan's after a switch)."""
    from sim.comparison import mobile_enforcer

    def make(key: str, start: datetime, minutes: int):
        return mobile_enforcer(switch_to if key == "switched" else plan, sc, False)
    return make


def _acts(monthly, iot, watch) -> bool:
    """Whether anything can act on the world: limits, notifications, an account, IoT limits."""
    probe = monthly.make("plan", monthly.bounds[0], 1)
    mobile = bool(getattr(probe, "rate_cap", None) or getattr(probe, "notify", ()) or getattr(probe, "free_limits", ()))
    return mobile or watch is not None or iot is not None


def _iot_limits(sc, plan, account, bounds):
    """The IoT fleet's limits for ``plan``, with the downgrade windows of its invoice timeline (an unpaid
    invoice on the 1st puts the fleet under the free plan's limits until paid)."""
    from sim.comparison import iot_enforcer

    limits = iot_enforcer(plan, sc, False)
    terms = getattr(plan, "billing_terms", None)
    if account is None or account.payment is None or terms is None:
        return None, limits
    from sim.pricing.invoices import invoice_timeline

    timeline = invoice_timeline(bounds[:-1], bounds[-1], account.payment, bounds[0].tzinfo, terms)
    if limits is not None and timeline.downgrades and terms.unpaid_downgrade_to:
        from sim.pricing.plan import load_plan

        limits = limits.with_downgrades(timeline.windows_s(bounds[0]), load_plan(terms.unpaid_downgrade_to))
    return timeline, limits
