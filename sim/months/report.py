"""months.csv and the months table: one row per month and plan.

Columns: the month (``month`` as YYYY-MM, ``start``, ``end``), the ``plan`` named in the scenario and the plan
``billed_under`` (a switch changes it), ``users`` (the users present at the month's start by the growth rule, or
``population.users``), each usage meter as the month measured it (``mau``, ``peak_ccu``, ``outbound_gb``,
``stored_gb`` (monthly average), ``turn_gb``, IoT elements as monthly averages of daily counts), the bill
(``total``, ``cumulative``, one ``line.<item>`` column per bill line), the account (``credits_before``,
``top_ups``, ``deducted``, ``credits_after``, ``credit_notifications`` with their times, ``exhausted_at``,
``throttled_from``), free limits (``notifications``, ``limits_exceeded``, ``first_exceeded``), what the limits did
(``rejected``, ``throttled_messages``), the switch (``switched_at``) and the invoice timeline (``invoice_issued``,
``invoice_due``, ``reminder``, ``paid``, ``downgraded``, ``downgraded_from``, ``restored_at``) with what a
downgrade did to an IoT fleet (``downgrade_refused_attempts``, ``downgrade_devices_affected``,
``restore_storm_per_minute``).
Money columns are exact decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

GB = 1e9
ELEMENTS = ("channels", "devices", "streams", "mqtt_sessions")


def users_at(sc, m: int) -> int:
    """Users present at the start of month ``m`` by the scenario's growth rule (``population.users`` without)."""
    if sc.growth is None:
        return int(sc.population.users)
    from sim.world import growth

    return int(round(float(growth.target(sc.growth, sc.population.users, float(m)))))


def meters_row(usage: dict) -> dict[str, Any]:
    """A month's usage meters as numbers (what the month measured, before any plan's rules)."""
    me = usage["meters"]

    def vals(name):
        v = me.get(name)
        return None if v is None else np.asarray(v["values"] if isinstance(v, dict) else [v], dtype=np.float64)

    row: dict[str, Any] = {}
    for name, key, fn in (("mau", "mau", np.sum), ("peak_ccu", "peak_ccu", np.max),
                          ("outbound_bytes", "outbound_gb", lambda a: a.sum() / GB),
                          ("stored_bytes", "stored_gb", lambda a: a.mean() / GB),
                          ("turn_bytes", "turn_gb", lambda a: a.sum() / GB)):
        a = vals(name)
        row[key] = None if a is None or a.size == 0 else _num(fn(a))
    for name in ELEMENTS:
        a = vals(name)
        if a is not None and a.size:
            row[name] = _num(a.mean())
    return row


def rows(mr, sc) -> list[dict[str, Any]]:
    """months.csv: one row per month and plan (see the module docstring)."""
    out = []
    for pm in mr.plans:
        cumulative = Decimal("0.00")
        ledger = {c.start: c for c in pm.ledger}
        for m, (bill, usage) in enumerate(zip(pm.bills, pm.result.months, strict=True)):
            a, b = mr.bounds[m], mr.bounds[m + 1]
            cumulative += bill.total
            row: dict[str, Any] = {"month": a.strftime("%Y-%m"), "start": a.isoformat(), "end": b.isoformat(),
                                   "plan": pm.plan, "billed_under": pm.in_force[m], "users": users_at(sc, m)}
            row |= meters_row(usage)
            row |= {"total": str(bill.total), "cumulative": str(cumulative)}
            for line in bill.lines:
                row[f"line.{line.item}"] = str(line.amount)
            row |= _account(ledger.get(a))
            row |= _limits(bill)
            enf = pm.enforcement[m] if m < len(pm.enforcement) else {}
            row["rejected"] = sum((enf.get("rejected") or {}).values())
            row["throttled_messages"] = (enf.get("rejected_messages") or {}).get("throttled", 0)
            if row.get("throttled_from") is None:
                row["throttled_from"] = enf.get("throttled_from")
            row["switched_at"] = _iso(pm.switch.at) if pm.switch is not None and pm.switch.cycle == m else None
            row |= _timeline(pm.timeline, m, a, b)
            row |= _downgrade_effects(pm.result.usage, a, b)
            out.append(row)
    lines = sorted({k for r in out for k in r if k.startswith("line.")})
    fixed = [k for k in out[0] if not k.startswith("line.")] if out else []
    order = fixed[:fixed.index("cumulative") + 1] + lines + fixed[fixed.index("cumulative") + 1:] if out else []
    return [{k: r.get(k) for k in order} for r in out]


def _account(c) -> dict[str, Any]:
    keys = ("credits_before", "top_ups", "deducted", "credits_after", "credit_notifications", "exhausted_at",
            "throttled_from")
    if c is None:
        return dict.fromkeys(keys)
    notes = "; ".join(f"{float(n.threshold):.0%} at {_iso(n.at)}" for n in c.notifications)
    return {"credits_before": str(c.opening), "top_ups": str(sum((t.amount for t in c.top_ups), Decimal(0))),
            "deducted": str(c.deducted), "credits_after": str(c.closing), "credit_notifications": notes or None,
            "exhausted_at": _iso(c.exhausted_at), "throttled_from": _iso(c.throttled_from)}


def _limits(bill) -> dict[str, Any]:
    first = min((v.at for v in bill.violations if v.at is not None), default=None)
    return {"notifications": len(bill.notifications),
            "limits_exceeded": "; ".join(sorted({v.metric for v in bill.violations})) or None,
            "first_exceeded": _iso(first)}


def _timeline(tl, m: int, a: datetime, b: datetime) -> dict[str, Any]:
    keys = ("invoice_issued", "invoice_due", "reminder", "paid", "downgraded", "downgraded_from", "restored_at")
    if tl is None:
        return dict.fromkeys(keys)
    inv = tl.invoices[m] if m < len(tl.invoices) else None
    down = [(x, y) for x, y in tl.downgrades if x < b and (y is None or y > a)]
    return {"invoice_issued": _iso(getattr(inv, "issued", None)), "invoice_due": _iso(getattr(inv, "due", None)),
            "reminder": _iso(getattr(inv, "reminder", None)), "paid": _iso(getattr(inv, "paid", None)),
            "downgraded": bool(down), "downgraded_from": _iso(down[0][0]) if down else None,
            "restored_at": _iso(down[0][1]) if down else None}


def _downgrade_effects(usage: dict, a: datetime, b: datetime) -> dict[str, Any]:
    """What a downgrade window starting in ``[a, b)`` did to the IoT fleet (its refused reconnection attempts,
    the devices cut off, the storm when restored)."""
    rep = ((usage.get("enforcement") or {}).get("iot") or {}).get("downgrades") or {}
    wins = [w for w in rep.get("windows", []) if a.isoformat() <= w["start"] < b.isoformat()]
    if not rep:
        return {}
    return {"downgrade_refused_attempts": sum(w["refused_attempts"] for w in wins),
            "downgrade_devices_affected": rep.get("devices_affected", 0) if wins else 0,
            "restore_storm_per_minute": max((w.get("storm_peak_per_minute") or 0 for w in wins), default=0)}


def table(mr, sc) -> str:
    """The months at a glance: per month, each plan's bill (and the cheapest); then each account's balance."""
    from tabulate import tabulate

    rs = rows(mr, sc)
    plans = [pm.plan for pm in mr.plans]
    months = sorted({r["month"] for r in rs})
    by = {(r["month"], r["plan"]): r for r in rs}
    body = []
    for mo in months:
        first = by[(mo, plans[0])]
        cells = []
        for p in plans:
            r = by[(mo, p)]
            mark = "" if r["billed_under"] == p else f" ({r['billed_under']})"
            flag = " !" if r["limits_exceeded"] else ""
            cells.append(f"{Decimal(r['total']):,.2f}{mark}{flag}")
        body.append([mo, f"{first['users']:,}", f"{first['mau']:,}"] + cells)
    totals = ["total", "", ""] + [f"{sum(Decimal(by[(mo, p)]['total']) for mo in months):,.2f}" for p in plans]
    body.append(totals)
    return tabulate(body, headers=["month", "users", "MAU"] + plans, tablefmt="github", disable_numparse=True,
                    colalign=["left", "right", "right"] + ["right"] * len(plans))


def _iso(t) -> str | None:
    return None if t is None else t.isoformat()


def _num(x) -> float | int:
    f = float(x)
    return int(f) if f.is_integer() else round(f, 6)
