"""Pricing: usage + plan -> Bill. A pure function: no SimPy, no I/O.

The steps, each in its own module (Lago/OpenMeter's split):

1. metering (``sim/metering.py``): each metric's quantity, with derivations and rounding;
2. rating (``sim/rating.py``): included quantity first, then the charge model on the rest;
3. invoice adjustments (here): base fee, add-ons, then the minimum-commitment true-up line;
4. hard limits -> violations, thresholds -> notifications (reported; the bill is still computed).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sim.bill import Bill, BillLine, Notification, Violation, cents, quantity_text
from sim.errors import InputError
from sim.metering import Measurement, measure
from sim.plan import Plan
from sim.rating import rate
from sim.usage import Usage


def price(usage: Usage, plan: Plan, addons: Iterable[str] = (), apply_minimum: bool = True) -> Bill:
    """Price ``usage`` under ``plan`` with the named add-ons; ``apply_minimum`` False omits the true-up."""
    addons = tuple(addons)
    for name in addons:
        if name not in plan.addons:
            offered = ", ".join(plan.addons) or "none"
            raise InputError(plan.path or plan.name, "--addon", f"unknown add-on {name!r}; this plan offers: {offered}")
    measured = measure(plan, usage)
    lines: list[BillLine] = []
    if plan.base_fee:
        lines.append(_fixed("base", plan.base_fee, "base fee", f"monthly base fee {plan.base_fee}"))
    lines += [_charge_line(plan, charge, measured[charge.metric]) for charge in plan.charges]
    for name in addons:
        addon = plan.addons[name]
        lines.append(_fixed(name, addon.fee, addon.description or f"add-on {name}", f"add-on fee {addon.fee}"))
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if apply_minimum and plan.minimum_commitment > subtotal:
        true_up = plan.minimum_commitment - subtotal
        lines.append(_fixed("minimum_commitment", true_up, "minimum commitment true-up",
                            f"charges {subtotal} are below the minimum commitment {plan.minimum_commitment}"))
    used = plan.meters()
    return Bill(
        plan=plan.name,
        plan_file=plan.path,
        currency=plan.currency,
        period_start=usage.period.start,
        period_end=usage.period.end,
        lines=tuple(lines),
        violations=tuple(_violations(plan, measured, usage)),
        notifications=tuple(_notifications(plan, measured, usage)),
        unknown_meters=tuple(sorted(set(usage.meters) - used)),
        missing_meters=tuple(sorted(m for m in used if m not in usage.meters)),
        addons=addons,
        notes=() if apply_minimum or not plan.minimum_commitment else ("minimum commitment not applied",),
        schedule=billing_schedule(plan, usage),
    )


def billing_schedule(plan: Plan, usage: Usage) -> dict[str, str]:
    """Dates that follow from the plan's billing terms for this period (IoT seed, "Billing terms").

    For November: invoice by December 5, due December 28, reminder December 25; if still unpaid when
    the next invoice is issued on January 1, the account is downgraded to the free plan.
    """
    terms = plan.billing_terms
    if terms is None:
        return {}
    from datetime import timedelta

    end = usage.period.end.astimezone(usage.period.tz)
    last_day = (end - timedelta(microseconds=1)).date()         # the period's last calendar day
    first_after = last_day + timedelta(days=1)
    due = first_after.replace(day=terms.due_day)
    if due < first_after:                                      # period ends mid-month after the due day
        due = (due + timedelta(days=32)).replace(day=terms.due_day)
    next_period = (due.replace(day=1) + timedelta(days=32)).replace(day=1)
    out = {
        "invoice_by": (last_day + timedelta(days=terms.invoice_within_days)).isoformat(),
        "due": due.isoformat(),
        "reminder": (due - timedelta(days=terms.reminder_days_before)).isoformat(),
    }
    if terms.unpaid_downgrade_to:
        out["downgrade_if_unpaid"] = next_period.isoformat()
        out["downgrade_to"] = terms.unpaid_downgrade_to
    return out


def _fixed(item: str, amount: Decimal, description: str, explanation: str) -> BillLine:
    return BillLine(item=item, amount=cents(amount), amount_unrounded=amount, description=description,
                    explanation=explanation)


def _charge_line(plan: Plan, charge, m: Measurement) -> BillLine:
    metric = m.metric
    billable = max(Decimal(0), m.quantity - charge.included)
    rated = rate(charge, billable)
    unit = metric.unit
    why = [f"{metric.aggregation} of {metric.meter} = {quantity_text(m.aggregated)}"
           + (f" {metric.meter_unit}" if metric.meter_unit and metric.meter_unit != unit else "")]
    if metric.meter_unit and metric.meter_unit != unit:
        why.append(f"= {quantity_text(m.converted)} {unit}")
    if not m.present:
        why = [f"{metric.meter} not in the usage: counted as 0"]
    if m.derived_from:
        why.append(f"billed as {m.derived_from}")
    if metric.round is not None:
        why.append(f"rounded {metric.round.mode} to {quantity_text(m.quantity)}")
    if charge.included:
        why.append(f"minus {quantity_text(charge.included)} included = {quantity_text(billable)} {unit}")
    price_text = {
        "per_unit": f"x {charge.unit_price} per {unit}",
        "package": f"at {charge.package_price} per {quantity_text(charge.package_size or Decimal(0))} {unit}",
        "graduated": "graduated tiers",
        "volume": "volume tiers",
    }[charge.model]
    why.append(f"{price_text} = {cents(rated.amount)}")
    return BillLine(
        item=plan.item_of(charge),
        amount=cents(rated.amount),
        amount_unrounded=rated.amount,
        description=charge.description or metric.description,
        meter=metric.meter,
        aggregation=metric.aggregation,
        measured=m.aggregated,
        quantity=m.quantity,
        included=charge.included,
        billable=billable,
        unit=unit,
        unit_price=rated.unit_price,
        model=charge.model,
        explanation="; ".join(why),
        detail=tuple(rated.detail),
    )


def _violations(plan: Plan, measured: dict[str, Measurement], usage: Usage) -> list[Violation]:
    out = []
    for lim in plan.limits:
        m = measured[lim.metric]
        if lim.max is not None:
            limit, what = lim.max, lim.description
        else:
            rel = lim.max_fraction_of
            limit = measured[rel.metric].converted * rel.fraction   # of the measured, not the derived, quantity
            what = lim.description or f"{rel.fraction} x {rel.metric}"
        if m.quantity > limit:
            at = None
            if lim.max is not None and m.progress is not None:
                at = _first_above(m, usage, float(limit))
            out.append(Violation(meter=m.metric.meter, metric=lim.metric, measured=m.quantity, limit=limit,
                                 unit=m.metric.unit, at=at, description=what))
    return out


def _first_above(m: Measurement, usage: Usage, limit: float):
    import numpy as np

    above = np.flatnonzero(m.progress > limit)
    return usage.period.interval_start(m.interval, int(above[0])) if above.size else None


def _notifications(plan: Plan, measured: dict[str, Measurement], usage: Usage) -> list[Notification]:
    if plan.notifications is None:
        return []
    bases: list[tuple[str, Decimal]] = []
    if plan.notifications.of == "limits":
        bases = [(lim.metric, lim.max) for lim in plan.limits if lim.max is not None]
    else:
        bases = [(c.metric, c.included) for c in plan.charges if c.included > 0]
    out = []
    for metric_name, base in bases:
        m = measured[metric_name]
        for threshold in sorted(plan.notifications.thresholds):
            level = base * Decimal(repr(threshold))
            if m.converted < level:
                continue
            out.append(Notification(meter=m.metric.meter, metric=metric_name, threshold=threshold,
                                    of=plan.notifications.of, level=level, unit=m.metric.unit,
                                    at=m.time_reaching(usage.period, float(level))))
    return sorted(out, key=lambda n: (n.at is None, n.at or usage.period.start, n.meter, n.threshold))
