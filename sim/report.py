"""Bills as text: plans side by side, then each bill line by line with its explanation."""

from __future__ import annotations

from tabulate import tabulate

from sim.bill import Bill, quantity_text


def cheapest_plan(bills: list[Bill]) -> str:
    """The cheapest plan among those whose hard limits hold (a free plan that is exceeded is no option)."""
    eligible = [b for b in bills if not b.violations] or bills
    return min(eligible, key=lambda b: b.total).plan


def comparison(bills: list[Bill]) -> str:
    """Items down, plans across; the cheapest plan's total is marked."""
    items: list[str] = []
    for bill in bills:
        items += [line.item for line in bill.lines if line.item not in items]
    cheapest = cheapest_plan(bills)
    rows = []
    for item in items:
        row = [item]
        for bill in bills:
            amount = next((line.amount for line in bill.lines if line.item == item), None)
            row.append("" if amount is None else f"{amount:,.2f}")
        rows.append(row)
    rows.append(["TOTAL"] + [f"{b.currency} {b.total:,.2f}"
                             + (" (limits exceeded)" if b.violations else "")
                             + (" <- cheapest" if len(bills) > 1 and b.plan == cheapest else "")
                             for b in bills])
    return tabulate(rows, headers=["item"] + [b.plan for b in bills], tablefmt="github",
                    colalign=["left"] + ["right"] * len(bills), disable_numparse=True)


def bill_table(bill: Bill) -> str:
    """One bill, a line per item, then how each line was computed, violations and notifications."""
    rows = [[line.item, quantity_text(line.measured), line.aggregation or "", quantity_text(line.included), quantity_text(line.billable),
             line.unit or "", "" if line.unit_price is None else str(line.unit_price), f"{line.amount:,.2f}"]
            for line in bill.lines]
    rows.append(["TOTAL", "", "", "", "", "", "", f"{bill.total:,.2f}"])
    out = [f"== {bill.plan} ({bill.currency}, {bill.period_start:%Y-%m-%d} to {bill.period_end:%Y-%m-%d}) ==",
           tabulate(rows, headers=["item", "measured", "aggregation", "included", "billable", "unit", "unit price",
                                   "amount"], tablefmt="github", disable_numparse=True,
                    colalign=("left", "right", "left", "right", "right", "left", "right", "right"))]
    out.append("how each line was computed:")
    for line in bill.lines:
        out.append(f"  {line.item}: {line.explanation}")
        out += [f"      {d}" for d in line.detail]
    for v in bill.violations:
        when = f" (first at {v.at.isoformat()})" if v.at else ""
        out.append(f"LIMIT EXCEEDED {v.meter}: {quantity_text(v.measured)} {v.unit} > limit {quantity_text(v.limit)}{when}"
                   + (f" [{v.description}]" if v.description else ""))
    for n in bill.notifications:
        when = n.at.isoformat() if n.at else "time unknown (aggregated number)"
        of = "free limit" if n.of == "limits" else "included quantity"
        out.append(f"notification: {n.meter} reached {n.threshold:.0%} of its {of} ({quantity_text(n.level)} {n.unit}) at {when}")
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
