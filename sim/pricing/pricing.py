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

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sim.errors import InputError
from sim.pricing.bill import Bill, BillLine, Notification, Violation, cents, quantity_text
from sim.pricing.metering import Measurement, daily_quantities, measure
from sim.pricing.plan import Charge, Discount, Fee, Plan
from sim.pricing.rating import rate
from sim.pricing.usage import Usage


def price(usage: Usage, plan: Plan, addons: Iterable[str] = (), apply_minimum: bool = True) -> Bill:
    """Price ``usage`` under ``plan`` with the named add-ons; ``apply_minimum`` False omits the true-up.

    Reads ``usage.period`` and ``usage.meters`` only (never ``usage.extra``)."""
    return _bill(plan, measure(plan, usage), usage, tuple(addons), apply_minimum)


def price_entities(usages: Mapping[str, Usage], plan: Plan, addons: Iterable[str] = (),
                   apply_minimum: bool = True) -> Bill:
    """One bill over several entities (apps, regions) on one account (sim/pricing/entities.py): each metric is
    measured on every entity and combined by its ``across_entities`` rule, then rated once, so the account's
    allowances, tiers, fees and minimum apply once to the whole."""
    from sim.pricing.entities import combine

    measured, period_usage, notes = combine(plan, usages)
    return _bill(plan, measured, period_usage, tuple(addons), apply_minimum, entity_notes=notes,
                 daily=lambda name: _entity_days(plan, name, usages))


def _entity_days(plan: Plan, name: str, usages: Mapping[str, Usage]) -> list[Decimal]:
    per = [daily_quantities(plan, name, u) for u in usages.values()]
    return [sum(day, Decimal(0)) for day in zip(*per, strict=True)]


def _bill(plan: Plan, measured: dict[str, Measurement], usage: Usage, addons: tuple[str, ...], apply_minimum: bool,
          entity_notes: Iterable[str] = (), daily=None) -> Bill:
    for name in addons:
        if name not in plan.addons:
            offered = ", ".join(plan.addons) or "none"
            raise InputError(plan.path or plan.name, "--addon", f"unknown add-on {name!r}; this plan offers: {offered}")
    days_of = daily or (lambda name: daily_quantities(plan, name, usage))
    share = prorated_share(plan, usage)
    lines: list[BillLine] = []
    if plan.base_fee:
        fee = plan.base_fee * share
        why = f"monthly base fee {plan.base_fee}" + ("" if share == 1 else f" x {quantity_text(share)} of the month")
        lines.append(_fixed("base", fee, "base fee", why))
    lines += [_charge_line(plan, charge, measured, usage, days_of) for charge in plan.charges]
    lines += [_fee_line(fee, measured, usage, share) for fee in plan.fees]
    for name in addons:
        addon = plan.addons[name]
        lines.append(_fixed(name, addon.fee, addon.description or f"add-on {name}", f"add-on fee {addon.fee}"))
    lines += [_discount_line(d, lines) for d in plan.discounts]
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if plan.spend_limit is not None and subtotal > plan.spend_limit.amount:
        cap = plan.spend_limit.amount
        lines.append(_fixed("spend_limit", cap - subtotal, "spend limit reached: service stopped",
                            f"charges {subtotal} passed the spend limit {cap}: the service stops there and usage "
                            f"beyond it is not billed"))
        subtotal = cap
    if apply_minimum and plan.minimum_commitment > subtotal:
        true_up = plan.minimum_commitment - subtotal
        lines.append(_fixed("minimum_commitment", true_up, "minimum commitment true-up",
                            f"charges {subtotal} are below the minimum commitment {plan.minimum_commitment}"))
    used = plan.meters()
    notes = [] if apply_minimum or not plan.minimum_commitment else ["minimum commitment not applied"]
    period_text = period_note(usage, plan)
    if period_text:
        notes.append(period_text)
    notes += list(entity_notes)
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


def prorated_share(plan: Plan, usage: Usage) -> Decimal:
    """The share of a month the base fee and monthly fees are charged for: 1, unless the plan prorates daily and
    the period is not one calendar month; then the period's days over the days of the month it starts in."""
    if plan.prorate == "none" or is_one_month(usage):
        return Decimal(1)
    import calendar

    p = usage.period
    start = p.start.astimezone(p.tz)
    in_month = calendar.monthrange(start.year, start.month)[1]
    return Decimal(repr(p.seconds)) / Decimal(86400 * in_month)


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


def period_note(usage: Usage, plan: Plan | None = None) -> str | None:
    """The bill note for a period that is not one calendar month: it is billed as one month, and how."""
    if is_one_month(usage):
        return None
    if plan is not None and plan.prorate == "daily":
        share = prorated_share(plan, usage)
        return (f"period is {quantity_text(share)} of a month: the base fee and monthly fees are prorated daily; "
                "included quantities and the minimum commitment apply in full")
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


def _included(charge: Charge, measured: dict[str, Measurement]) -> tuple[Decimal, str]:
    """The charge's allowance: ``included`` plus ``included_per`` (multiplier x another metric), and why."""
    if charge.included_per is None:
        return charge.included, ""
    rule = charge.included_per
    other = measured[rule.metric]
    extra = rule.multiplier * other.quantity
    base = f"{quantity_text(charge.included)} + " if charge.included else ""
    return charge.included + extra, (f"{base}{quantity_text(rule.multiplier)} per {rule.metric} x "
                                     f"{quantity_text(other.quantity, other.metric.unit)}")


def _charge_line(plan: Plan, charge: Charge, measured: dict[str, Measurement], usage: Usage, days_of) -> BillLine:
    """One charge's line. Every quantity of the row is in the metric's unit; the meter's own reading (e.g. bytes,
    for a line charged per GB) is kept in ``metered`` and told in the explanation."""
    m = measured[charge.metric]
    metric = m.metric
    included, included_why = _included(charge, measured)
    unit = metric.unit
    converts = bool(metric.meter_unit and metric.meter_unit != unit and metric.each is None)
    if metric.sum_of is not None:
        why = [f"sum of {m.derived_from}"]
    elif not m.present:
        why = [f"{metric.meter} not in the usage: counted as 0"]
    elif metric.each is not None:
        step = f"{quantity_text(metric.each.step)} {metric.each.step_unit or metric.meter_unit or ''}".rstrip()
        least = f", at least {metric.each.minimum}" if metric.each.minimum else ""
        why = [f"each item of {metric.meter} rounded up to whole {step}{least} = {quantity_text(m.aggregated, unit)} {unit}"]
    elif converts:
        why = [f"{metric.aggregation} of {metric.meter} = {quantity_text(m.aggregated, metric.meter_unit)} "
               f"{metric.meter_unit} = {quantity_text(m.converted, unit)} {unit}"]
    else:
        why = [f"{metric.aggregation} of {metric.meter} = {quantity_text(m.aggregated, unit)}"]
    if m.derived_from and metric.sum_of is None:
        why.append(f"billed as {m.derived_from}")
    if metric.round is not None and charge.cadence != "daily":
        why.append(f"rounded {metric.round.mode} to {quantity_text(m.quantity, unit)}")
    detail: list[str] = []
    if charge.cadence == "daily":
        quantity, billable, amount, unit_price, detail, day_why = _daily(charge, days_of(charge.metric), included,
                                                                         usage, unit)
        why += day_why
    else:
        quantity = m.quantity
        billable = max(Decimal(0), quantity - included)
        if included:
            why.append(f"minus {quantity_text(included, unit)} included"
                       + (f" ({included_why})" if included_why else "") + f" = {quantity_text(billable, unit)} {unit}")
        rated = rate(charge, billable)
        amount, unit_price, detail = rated.amount, rated.unit_price, list(rated.detail)
    price_text = {
        "per_unit": f"x {charge.unit_price} per {unit}",
        "package": f"at {charge.package_price} per {quantity_text(charge.package_size or Decimal(0))} {unit}",
        "graduated": "graduated tiers",
        "volume": "volume tiers",
    }[charge.model]
    why.append(f"{price_text}{' per day' if charge.cadence == 'daily' else ''} = {cents(amount)}")
    return BillLine(
        item=plan.item_of(charge),
        amount=cents(amount),
        amount_unrounded=amount,
        description=charge.description or metric.description,
        meter=metric.meter,
        aggregation=metric.aggregation if metric.sum_of is None else "sum_of",
        measured=m.converted,
        quantity=quantity,
        included=included,
        billable=billable,
        unit=unit,
        unit_price=unit_price,
        model=charge.model,
        explanation="; ".join(why),
        detail=tuple(detail),
        metered=m.aggregated if converts else None,
        meter_unit=metric.meter_unit if converts else None,
    )


def _daily(charge: Charge, days: list[Decimal], included: Decimal, usage: Usage, unit: str):
    """Rate each calendar day on its own: its rounded quantity, minus ``included_per_day``, minus what is left of
    the monthly ``included`` allowance (used up day by day, in order), then the charge model on the rest."""
    left = included
    total_q = total_b = amount = Decimal(0)
    detail: list[str] = []
    used_up: str | None = None
    unit_price = None
    for i, q in enumerate(days):
        day = usage.period.day_starts[i].astimezone(usage.period.tz).date().isoformat()
        free = min(q, charge.included_per_day)
        rest = q - free
        take = min(rest, left)
        left -= take
        rest -= take
        if included and left == 0 and used_up is None and take > 0:
            used_up = day
        rated = rate(charge, rest)
        unit_price = rated.unit_price
        total_q, total_b, amount = total_q + q, total_b + rest, amount + rated.amount
        if rest > 0:
            free_text = "".join([f" - {quantity_text(free, unit)} free that day" if free else "",
                                 f" - {quantity_text(take, unit)} of the monthly allowance" if take else ""])
            rest_text = f" = {quantity_text(rest, unit)} {unit}" if free_text else ""
            detail.append(f"{day}: {quantity_text(q, unit)} {unit}{free_text}{rest_text}: {cents(rated.amount)}")
    why = [f"rated day by day over {len(days)} days: {quantity_text(total_q, unit)} {unit} in all"]
    if charge.included_per_day:
        why.append(f"{quantity_text(charge.included_per_day, unit)} {unit} free each day")
    if included:
        why.append(f"monthly allowance {quantity_text(included, unit)} {unit} used day by day"
                   + (f", used up on {used_up}" if used_up else f", {quantity_text(left, unit)} left at the end"))
    why.append(f"{quantity_text(total_b, unit)} {unit} billable on {len(detail)} day{'' if len(detail) == 1 else 's'}")
    return total_q, total_b, amount, unit_price, detail, why


def _fee_line(fee: Fee, measured: dict[str, Measurement], usage: Usage, share: Decimal) -> BillLine:
    """A fixed or provisioned fee: units x unit price x the period's months (prorated share), days or hours."""
    if fee.metric is not None:
        m = measured[fee.metric]
        units = max(m.quantity, fee.minimum_quantity)
        what = f"{quantity_text(units)} {m.metric.unit} ({fee.metric})"
    else:
        units = Decimal(1) if fee.quantity is None else fee.quantity
        what = f"{quantity_text(units)} unit{'' if units == 1 else 's'}"
    seconds = Decimal(repr(usage.period.seconds))
    span = {"month": share, "day": seconds / 86400, "hour": seconds / 3600}[fee.per]
    amount = units * fee.unit_price * span
    span_text = {"month": "" if share == 1 else f" x {quantity_text(share)} of the month",
                 "day": f" x {quantity_text(span)} days", "hour": f" x {quantity_text(span)} hours"}[fee.per]
    return BillLine(item=fee.item, amount=cents(amount), amount_unrounded=amount,
                    description=fee.description or fee.item, quantity=units, billable=units,
                    unit_price=fee.unit_price, model=f"per_{fee.per}",
                    explanation=f"{what} at {fee.unit_price} per {fee.per}{span_text} = {cents(amount)}")


def _discount_line(d: Discount, lines: list[BillLine]) -> BillLine:
    """``fraction`` off the (rounded) amounts of the lines it applies to, as a negative line."""
    targets = [ln for ln in lines if d.applies_to == "all" or ln.item in d.applies_to]
    base = sum((ln.amount for ln in targets), Decimal(0))
    amount = -(base * d.fraction)
    names = "all charges" if d.applies_to == "all" else ", ".join(d.applies_to)
    term = f" ({d.term})" if d.term else ""
    return BillLine(item=d.item, amount=cents(amount), amount_unrounded=amount,
                    description=d.description or f"discount{term}", model="discount",
                    explanation=f"{quantity_text(d.fraction * 100)} % off {names}{term}: {base} x {d.fraction} = "
                                f"{cents(amount)}")


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
            out.append(Violation(meter=m.metric.meter or lim.metric, metric=lim.metric, measured=m.quantity, limit=limit,
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
            out.append(Notification(meter=m.metric.meter or metric_name, metric=metric_name, threshold=threshold,
                                    of=plan.notifications.of, level=level, unit=m.metric.unit,
                                    at=m.time_reaching(usage.period, float(level))))
    return sorted(out, key=lambda n: (n.at is None, n.at or usage.period.start, n.meter, n.threshold))
