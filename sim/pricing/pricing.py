"""Pricing: usage + plan -> Bill. A pure function: no SimPy, no I/O.

The steps, each in its own module (Lago/OpenMeter's split):

1. metering (``sim/pricing/metering.py``): each metric's quantity, with derivations and rounding;
2. rating (``sim/pricing/rating.py``): included quantity first, then the charge model on the rest;
3. invoice adjustments (here): base fee, add-ons, then the minimum-commitment true-up line;
4. hard limits -> violations, thresholds -> notifications (reported; the bill is still computed).

Only ``usage.period`` and ``usage.meters`` are priced. Every other section of a usage document (the
simulator's ``breakdown``, ``counts``, ``enforcement``, ``run``, or informational figures such as daily
active users kept outside ``meters``) is carried along and never read here, so it can neither change a
bill nor appear in its ``unknown_meters``.

The period, whatever its length, is billed as **one monthly billing period** (README, "Billing period"):
the plan's included quantities, base fee, add-on fees and minimum commitment are its monthly ones, in full,
neither prorated for a shorter period nor multiplied for a longer one. A bill whose period is not one
calendar month says so in a note (:func:`period_note`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sim.errors import InputError
from sim.pricing.bill import Bill, BillLine, Notification, Violation, cents, quantity_text
from sim.pricing.metering import Measurement, measure
from sim.pricing.plan import Plan
from sim.pricing.rating import rate
from sim.pricing.usage import Usage


def price(usage: Usage, plan: Plan, addons: Iterable[str] = (), apply_minimum: bool = True) -> Bill:
    """Price ``usage`` under ``plan`` with the named add-ons; ``apply_minimum`` False omits the true-up.

    Reads ``usage.period`` and ``usage.meters`` only (never ``usage.extra``)."""
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
    notes = [] if apply_minimum or not plan.minimum_commitment else ["minimum commitment not applied"]
    period_text = period_note(usage)
    if period_text:
        notes.append(period_text)
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
        notes=tuple(notes),
        schedule=billing_schedule(plan, usage),
    )


def _next_month(t: datetime) -> datetime:
    """The same day and wall-clock time one calendar month later (the 31st -> the last day of a shorter month)."""
    import calendar

    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def is_one_month(usage: Usage) -> bool:
    """True when the period runs from a local time to the same day and time one calendar month later
    (2026-11-01 to 2026-12-01, 2026-11-15 to 2026-12-15), in the period's time zone."""
    start, end = (t.astimezone(usage.period.tz).replace(tzinfo=None) for t in (usage.period.start, usage.period.end))
    return _next_month(start) == end


def period_note(usage: Usage) -> str | None:
    """The bill note for a period that is not one calendar month: it is billed as one month, and how."""
    if is_one_month(usage):
        return None
    p = usage.period
    days = (Decimal(repr(p.seconds)) / 86400).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    start, end = (t.astimezone(p.tz) for t in (p.start, p.end))
    month_end = _next_month(start.replace(tzinfo=None)).replace(tzinfo=p.tz)
    what, scaled = ("shorter", "prorated") if end < month_end else ("longer", "multiplied")
    fmt = "%Y-%m-%d" if all(t.time() == datetime.min.time() for t in (start, end)) else "%Y-%m-%d %H:%M"
    return (f"period {start:{fmt}} to {end:{fmt}} is {quantity_text(days)} day{'' if days == 1 else 's'}, {what} "
            f"than a month: billed as one monthly period (the plan's monthly included quantities, base fee and "
            f"minimum commitment apply in full, not {scaled})")


def billing_schedule(plan: Plan, usage: Usage) -> dict[str, str]:
    """Dates that follow from the plan's billing terms for this period (IoT seed, "Billing terms").

    For November: invoice by December 5, due December 28, reminder December 25; if still unpaid when
    the next invoice is issued on January 1, the account is downgraded to the free plan.
    """
    terms = plan.billing_terms
    if terms is None:
        return {}
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
    """One charge's line. Every quantity of the row is in the metric's unit; the meter's own reading (e.g. bytes,
    for a line charged per GB) is kept in ``metered`` and told in the explanation."""
    metric = m.metric
    billable = max(Decimal(0), m.quantity - charge.included)
    rated = rate(charge, billable)
    unit = metric.unit
    converts = bool(metric.meter_unit and metric.meter_unit != unit)
    if not m.present:
        why = [f"{metric.meter} not in the usage: counted as 0"]
    elif converts:
        why = [f"{metric.aggregation} of {metric.meter} = {quantity_text(m.aggregated, metric.meter_unit)} "
               f"{metric.meter_unit} = {quantity_text(m.converted, unit)} {unit}"]
    else:
        why = [f"{metric.aggregation} of {metric.meter} = {quantity_text(m.aggregated, unit)}"]
    if m.derived_from:
        why.append(f"billed as {m.derived_from}")
    if metric.round is not None:
        why.append(f"rounded {metric.round.mode} to {quantity_text(m.quantity, unit)}")
    if charge.included:
        why.append(f"minus {quantity_text(charge.included, unit)} included = {quantity_text(billable, unit)} {unit}")
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
        measured=m.converted,
        quantity=m.quantity,
        included=charge.included,
        billable=billable,
        unit=unit,
        unit_price=rated.unit_price,
        model=charge.model,
        explanation="; ".join(why),
        detail=tuple(rated.detail),
        metered=m.aggregated if converts else None,
        meter_unit=metric.meter_unit if converts else None,
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
