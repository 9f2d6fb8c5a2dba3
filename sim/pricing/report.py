"""Bills as text: plans side by side, then each bill line by line with its explanation."""

from __future__ import annotations

from decimal import Decimal

from tabulate import tabulate

from sim.pricing.bill import Bill, quantity_text


def lowest(totals: list[tuple[str, Decimal]]) -> tuple[str | None, list[str]]:
    """``(cheapest, tie)`` of (plan, total) pairs: the one plan with the lowest total and ``[]``; or, when several
    plans share the lowest total, ``None`` and those plans in the order given. ``(None, [])`` for no plans."""
    if not totals:
        return None, []
    low = min(total for _, total in totals)
    at_low = list(dict.fromkeys(name for name, total in totals if total == low))   # a plan listed twice is one
    return (at_low[0], []) if len(at_low) == 1 else (None, at_low)


def main_currency(bills: list[Bill]) -> str | None:
    """The currency most of the bills are in (the first bill's among equally common ones): totals in different
    currencies are never compared, so the cheapest plan is chosen among the bills in this one."""
    counts: dict[str, int] = {}
    for b in bills:
        counts[b.currency] = counts.get(b.currency, 0) + 1
    return max(counts, key=lambda c: counts[c]) if counts else None


def cheapest(bills: list[Bill]) -> tuple[str | None, list[str]]:
    """The cheapest plan among those whose hard limits hold (a free plan that is exceeded is no option; when
    every plan is exceeded, all are compared), as ``(plan, [])``, or ``(None, [tied plans])`` on a tie. Only
    bills in the :func:`main_currency` are compared."""
    currency = main_currency(bills)
    bills = [b for b in bills if b.currency == currency]
    eligible = [b for b in bills if not b.violations] or bills
    return lowest([(b.plan, b.total) for b in eligible])


def cheapest_plan(bills: list[Bill]) -> str | None:
    """The cheapest plan's name, or None when there is none or several plans tie (see :func:`cheapest`)."""
    return cheapest(bills)[0]


def cheapest_document(bills: list[Bill]) -> dict:
    """``{"cheapest": plan or None, "tie": [plans]}``: the keys `sim price --format json` and bills.json share."""
    name, tie = cheapest(bills)
    return {"cheapest": name, "tie": tie}


def cheapest_mark(plan: str, name: str | None, tie: list[str], n_plans: int) -> str:
    """`` <- cheapest`` for the cheapest plan, `` <- cheapest (tie)`` for every tied plan, else ''."""
    if n_plans < 2:
        return ""
    if plan == name:
        return " <- cheapest"
    return " <- cheapest (tie)" if plan in tie else ""


def comparison(bills: list[Bill]) -> str:
    """Items down, plans across; the cheapest plan's total is marked (every tied plan's, on a tie)."""
    items: list[str] = []
    for bill in bills:
        items += [line.item for line in bill.lines if line.item not in items]
    name, tie = cheapest(bills)
    rows = []
    for item in items:
        row = [item]
        for bill in bills:
            amount = next((line.amount for line in bill.lines if line.item == item), None)
            row.append("" if amount is None else f"{amount:,.2f}")
        rows.append(row)
    rows.append(["TOTAL"] + [f"{b.currency} {b.total:,.2f}"
                             + (" (limits exceeded)" if b.violations else "")
                             + cheapest_mark(b.plan, name, tie, len(bills))
                             for b in bills])
    table = tabulate(rows, headers=["item"] + [b.plan for b in bills], tablefmt="github",
                     colalign=["left"] + ["right"] * len(bills), disable_numparse=True)
    others = sorted({b.currency for b in bills} - {main_currency(bills)})
    if others:
        table += (f"\n(the cheapest is chosen among the {main_currency(bills)} plans; plans in "
                  f"{', '.join(others)} are not compared with them)")
    return table


def bill_table(bill: Bill) -> str:
    """One bill, a line per item, then how each line was computed, violations, notifications and notes.

    Every quantity of a row is in the row's unit (a meter read in bytes and charged per GB shows GB; the bytes are
    in the line's explanation); quantities are clean (:func:`sim.pricing.bill.clean`)."""
    rows = [[line.item, quantity_text(line.measured, line.unit), line.aggregation or "",
             quantity_text(line.quantity, line.unit), quantity_text(line.included, line.unit),
             quantity_text(line.billable, line.unit), line.unit or "",
             "" if line.unit_price is None else str(line.unit_price), f"{line.amount:,.2f}"]
            for line in bill.lines]
    rows.append(["TOTAL", "", "", "", "", "", "", "", f"{bill.total:,.2f}"])
    out = [f"== {bill.plan} ({bill.currency}, {bill.period_start:%Y-%m-%d} to {bill.period_end:%Y-%m-%d}) ==",
           tabulate(rows, headers=["item", "measured", "aggregation", "quantity", "included", "billable", "unit",
                                   "unit price", "amount"], tablefmt="github", disable_numparse=True,
                    colalign=("left", "right", "left", "right", "right", "right", "left", "right", "right"))]
    out.append("how each line was computed:")
    for line in bill.lines:
        out.append(f"  {line.item}: {line.explanation}")
        out += [f"      {d}" for d in line.detail]
    for v in bill.violations:
        when = f" (first at {v.at.isoformat()})" if v.at else ""
        out.append(f"LIMIT EXCEEDED {v.meter}: {quantity_text(v.measured, v.unit)} {v.unit} > limit {quantity_text(v.limit, v.unit)}{when}"
                   + (f" [{v.description}]" if v.description else ""))
    for n in bill.notifications:
        when = n.at.isoformat() if n.at else "time unknown (aggregated number)"
        of = "free limit" if n.of == "limits" else "included quantity"
        out.append(f"notification: {n.meter} reached {n.threshold:.0%} of its {of} ({quantity_text(n.level, n.unit)} {n.unit}) at {when}")
    if bill.unknown_meters:
        out.append(f"note: meters not priced by this plan: {', '.join(bill.unknown_meters)}")
    if bill.missing_meters:
        out.append(f"note: meters absent from the usage, counted as 0: {', '.join(bill.missing_meters)}")
    out += [f"note: {n}" for n in bill.notes]
    if bill.schedule:
        s = bill.schedule
        text = f"billing: invoice by {s['invoice_by']}, due {s['due']}, reminder {s['reminder']}"
        if "downgrade_to" in s:
            text += f"; if unpaid on {s['downgrade_if_unpaid']}, downgraded to {s['downgrade_to']}"
        out.append(text)
    return "\n".join(out)
